//! The WebSocket opening handshake of RFC 6455 §4, as far as a proxy needs it: the grammar of
//! `Sec-WebSocket-Key`, the `Sec-WebSocket-Accept` value a server must answer with, and the
//! token lists of `Upgrade` and `Connection`; and in [`frames`], the frame boundaries of one
//! direction and the close frame a server sends.
//!
//! A gateway uses it to check that a backend really switched protocols before it tunnels a
//! byte (a `101` without the accept value the key implies is refused); a backend written in
//! Rust can use [`accept_for`] to answer. Pure functions over byte slices: no IO, no
//! allocation, no panic on any input.

pub mod frames;

pub use frames::{
    close_frame, FrameBoundary, CLOSE_GOING_AWAY, CLOSE_POLICY_VIOLATION, MAX_CLOSE_REASON,
};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// The GUID RFC 6455 §1.3 appends to the key before hashing.
pub const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// Length of a valid `Sec-WebSocket-Key`: 16 random bytes in base64 (RFC 6455 §4.1, item 7).
pub const KEY_LEN: usize = 24;
/// Length of `Sec-WebSocket-Accept`: a SHA-1 digest (20 bytes) in base64.
pub const ACCEPT_LEN: usize = 28;

/// True when `key` is a valid `Sec-WebSocket-Key`: the base64 (standard alphabet, padded) of
/// exactly 16 bytes (RFC 6455 §4.1 item 7, §4.2.1 item 5).
pub fn is_valid_key(key: &[u8]) -> bool {
    if key.len() != KEY_LEN {
        return false;
    }
    let mut out = [0u8; 18];
    matches!(STANDARD.decode_slice(key, &mut out), Ok(16))
}

/// The `Sec-WebSocket-Accept` value for `key` (RFC 6455 §4.2.2 item 5.4): the base64 of the
/// SHA-1 of the key (as sent, without surrounding whitespace) followed by [`GUID`].
pub fn accept_for(key: &[u8]) -> [u8; ACCEPT_LEN] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(key);
    ctx.update(GUID);
    let digest = ctx.finish();
    let mut out = [0u8; ACCEPT_LEN];
    // 20 bytes always encode to exactly 28 characters, so this cannot fail; on the impossible
    // error the all-zero value matches no accept header.
    let _ = STANDARD.encode_slice(digest.as_ref(), &mut out);
    out
}

/// True when a backend's `Sec-WebSocket-Accept` value is the one `key` implies (the value
/// compared exactly, after trimming optional whitespace, as a client must: RFC 6455 §4.1).
pub fn accept_matches(key: &[u8], accept: &[u8]) -> bool {
    trim(accept) == accept_for(key)
}

/// True when the comma-separated list `value` (an `Upgrade` or `Connection` header value)
/// holds `token`, ASCII case-insensitively. For `Upgrade`, a protocol with a version
/// (`websocket/13`) is not the token `websocket`.
pub fn list_has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| trim(t).eq_ignore_ascii_case(token))
}

/// `value` without leading and trailing spaces and tabs.
fn trim(mut value: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = value {
        value = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = value {
        value = rest;
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_example() {
        // RFC 6455 §1.3.
        let key = b"dGhlIHNhbXBsZSBub25jZQ==";
        assert!(is_valid_key(key));
        assert_eq!(&accept_for(key), b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert!(accept_matches(key, b" s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\t"));
        assert!(!accept_matches(key, b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo"));
        assert!(!accept_matches(key, b"S3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
        assert!(!accept_matches(key, b""));
        assert!(!accept_matches(
            b"AAAAAAAAAAAAAAAAAAAAAA==",
            b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        ));
    }

    #[test]
    fn keys_are_16_bytes_of_padded_base64() {
        assert!(is_valid_key(b"AAAAAAAAAAAAAAAAAAAAAA=="));
        for bad in [
            &b""[..],
            b"dGhlIHNhbXBsZSBub25jZQ",    // no padding
            b"dGhlIHNhbXBsZSBub25jZQ===", // too long
            b"dGhlIHNhbXBsZSBub25jZQ=!",  // not base64
            b"dGhlIHNhbXBsZSBub25jZ-==",  // URL alphabet
            b"dGhlIHNhbXBsZSBub25jZXh4",  // 18 bytes
            b" dGhlIHNhbXBsZSBub25jZQ==", // whitespace
            b"dGhlIHNhbXBsZSBub25jZR==",  // non-canonical trailing bits
        ] {
            assert!(!is_valid_key(bad), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn token_lists() {
        assert!(list_has_token(b"websocket", b"websocket"));
        assert!(list_has_token(b"h2c, WebSocket", b"websocket"));
        assert!(list_has_token(b"keep-alive, Upgrade", b"upgrade"));
        assert!(list_has_token(b" ,upgrade ,", b"upgrade"));
        assert!(!list_has_token(b"websocket/13", b"websocket"));
        assert!(!list_has_token(b"h2c", b"websocket"));
        assert!(!list_has_token(b"", b"websocket"));
        assert!(!list_has_token(b"websockets", b"websocket"));
    }
}
