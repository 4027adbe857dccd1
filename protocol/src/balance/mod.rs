//! Upstream endpoint selection, passive outlier ejection and retries: the pure arithmetic
//! (work in progress: the stable key hash, the three pickers, Maglev, outlier ejection, retries).

pub mod hash;
pub mod least_request;
pub mod maglev;
pub mod outlier;
pub mod random;
pub mod retry;
pub mod smooth_rr;

pub use hash::{key_hash, xxhash64};
pub use least_request::pick_least_request;
pub use maglev::{Maglev, DEFAULT_TABLE_SIZE, MAX_TABLE_SIZE};
pub use outlier::{
    counts_5xx, counts_gateway, panic_mode, CallOutcome, Consecutive, OutlierPolicy,
};
pub use random::pick_weighted_random;
pub use retry::{
    budget_allows, is_idempotent, safe_to_repeat, Backoff, RetryOn, RetryReason,
    DEFAULT_BUDGET_PERCENT, DEFAULT_MIN_RETRY_CONCURRENCY,
};
pub use smooth_rr::SmoothRoundRobin;

/// splitmix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators",
/// 2014): the deterministic random words of this module's tests.
#[cfg(test)]
pub(crate) struct SplitMix(pub(crate) u64);

#[cfg(test)]
impl SplitMix {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
