//! Compact JWS serialisation: base64url (no padding) into caller-owned buffers, JSON string
//! escaping and integer formatting for hand-written claims, and the generic encoder. Everything
//! appends to a reusable `Vec<u8>`; nothing here allocates when the buffer already has room.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use super::keys::{SignError, SigningKey};

/// Appends the base64url (no padding) encoding of `data` to `out`.
/// Allocation-free when `out` has room for `ceil(4 * len / 3)` more bytes.
pub fn b64_append(out: &mut Vec<u8>, data: &[u8]) {
    let start = out.len();
    let added = b64_len(data.len());
    out.resize(start + added, 0);
    // The slice is exactly the encoded length, so encode_slice cannot run out of room.
    let written = URL_SAFE_NO_PAD
        .encode_slice(data, &mut out[start..])
        .unwrap_or(0);
    out.truncate(start + written);
}

/// Length of the unpadded base64 encoding of `n` bytes.
pub const fn b64_len(n: usize) -> usize {
    (n / 3) * 4
        + match n % 3 {
            0 => 0,
            1 => 2,
            _ => 3,
        }
}

/// Base64url-encodes in place the bytes `out[from..]` (a JSON payload just written there),
/// replacing them with their encoding. Allocation-free when `out` has room for the encoding.
pub fn b64_in_place(out: &mut Vec<u8>, from: usize) {
    let raw_len = out.len() - from;
    let enc_len = b64_len(raw_len);
    let end = out.len();
    out.resize(end + enc_len, 0);
    let (raw, tail) = out.split_at_mut(end);
    let written = URL_SAFE_NO_PAD
        .encode_slice(&raw[from..], tail)
        .unwrap_or(0);
    out.copy_within(end..end + written, from);
    out.truncate(from + written);
}

/// Pads `json` with spaces to a multiple of 3 bytes and base64url-encodes it, so that the result
/// can be followed by the encoding of more bytes and still be one valid base64 string. Used at
/// config time to precompute constant payload prefixes (JSON allows the padding whitespace).
pub fn aligned_b64(mut json: Vec<u8>) -> Vec<u8> {
    while json.len() % 3 != 0 {
        json.push(b' ');
    }
    let mut out = Vec::with_capacity(b64_len(json.len()));
    b64_append(&mut out, &json);
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` as a JSON string literal (with the surrounding quotes) to `out`: `"` and `\`
/// escaped, control characters as `\n`, `\t`… or `\u00XX`; other characters (all of Unicode)
/// copied as UTF-8. Called when preparing claims that embed route names or metadata.
pub fn json_string_into(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut run_start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f | 0x7f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[run_start..i]);
        if escape.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        run_start = i + 1;
    }
    out.extend_from_slice(&bytes[run_start..]);
    out.push(b'"');
}

/// Appends `"iat":now,"nbf":now,"exp":now+ttl` (seconds; `nbf`, not Otoroshi's `nbr`
/// spelling, decisions.md) — the time claims of every token Torii signs. No allocation.
pub fn write_time_claims(out: &mut Vec<u8>, now: u64, ttl_secs: u64) {
    out.extend_from_slice(b"\"iat\":");
    write_u64(out, now);
    out.extend_from_slice(b",\"nbf\":");
    write_u64(out, now);
    out.extend_from_slice(b",\"exp\":");
    write_u64(out, now.saturating_add(ttl_secs));
}

/// Appends the decimal digits of `n` to `out` (no allocation).
pub fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Appends a complete compact JWS for the JSON `payload` (already serialised, any object) to
/// `out`: `b64(header).b64(payload).b64(signature)`. The header is `{"typ":"JWT","alg":…}`
/// (precomputed in the key) or, with `kid`, `{"typ":"JWT","alg":…,"kid":…}`.
/// Cost: one base64 pass over the payload plus one signature.
pub fn encode_into(
    key: &SigningKey,
    kid: Option<&str>,
    payload: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), SignError> {
    let start = out.len();
    match kid {
        None => out.extend_from_slice(key.header_b64().as_bytes()),
        Some(kid) => {
            let header_start = out.len();
            out.extend_from_slice(b"{\"typ\":\"JWT\",\"alg\":\"");
            out.extend_from_slice(key.algorithm().name().as_bytes());
            out.extend_from_slice(b"\",\"kid\":");
            json_string_into(out, kid);
            out.push(b'}');
            b64_in_place(out, header_start);
        }
    }
    out.push(b'.');
    b64_append(out, payload);
    sign_tail(key, start, out)
}

/// Signs `out[start..]` (a complete `header.payload` signing input) and appends
/// `.signature`. The gateway's hand-written encoders (challenge, info token) end with this.
pub fn sign_tail(key: &SigningKey, start: usize, out: &mut Vec<u8>) -> Result<(), SignError> {
    let sig = key.sign(&out[start..])?;
    out.push(b'.');
    b64_append(out, sig.as_ref());
    Ok(())
}

/// Serialises `claims` with `serde_json` and encodes them as [`encode_into`] does. Convenient
/// for tests and the OAuth2 token endpoint; the hot paths write their JSON by hand.
pub fn encode_claims(
    key: &SigningKey,
    kid: Option<&str>,
    claims: &serde_json::Map<String, serde_json::Value>,
    out: &mut Vec<u8>,
) -> Result<(), SignError> {
    let payload = serde_json::to_vec(claims).map_err(|_| SignError)?;
    encode_into(key, kid, &payload, out)
}
