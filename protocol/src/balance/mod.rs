//! Upstream endpoint selection, passive outlier ejection and retries: the pure arithmetic
//! (work in progress: the stable key hash first).

pub mod hash;

pub use hash::{key_hash, xxhash64};
