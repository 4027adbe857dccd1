//! Shared checks for the fuzz targets: independent re-statements of the HTTP/1.1 framing rules
//! (written without the engine's parser code, so a parser bug is not mirrored in its own oracle),
//! the JSON uniqueness rule, and the key fixtures the token targets sign and verify with.
//!
//! Everything here panics on a violated property: that is how a libFuzzer target reports a
//! finding. It must not be used outside the fuzz targets.

pub mod framing;
pub mod json;
pub mod keys;

/// Splits fuzz input into a selector byte and the rest (`0` and everything when empty).
pub fn split_selector(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((&b, rest)) => (b, rest),
        None => (0, data),
    }
}
