//! Compact JWS (RFC 7515) on `ring`: algorithms, keys built once from configuration, a fast
//! hand-written encoder and a strict verifier. This module owns token bytes and keys; it knows
//! nothing of routes, headers or clocks (`now` is always a parameter).

mod alg;
mod base64url;
mod encode;
mod keys;
mod pem_der;
mod verify;

pub use alg::{Algorithm, KeyFamily, UnknownAlgorithm};
pub use base64url::{aligned_b64, b64_append, b64_in_place, b64_len};
pub use encode::{
    encode_claims, encode_into, json_string_into, sign_tail, write_time_claims, write_u64,
};
pub use keys::{KeyError, SignError, Signature, SigningKey, VerifyingKey};
pub use verify::{
    audience_contains, check_times, json_depth_within, peek_header, peek_kid, time_claim, verify,
    JwsHeader, JwtError, Part, PeekedHeader, Validation, VerifiedToken, DEFAULT_LEEWAY_SECS,
    MAX_JSON_DEPTH, MAX_TIME_CLAIM, MAX_TOKEN_LEN,
};
pub(crate) use verify::{time_value, verify_signed};
