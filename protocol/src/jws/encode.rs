//! Compact JWS serialisation: JSON string escaping and integer formatting for hand-written
//! claims, and the generic encoder that signs with a [`SigningKey`]. Everything appends to a
//! reusable `Vec<u8>`; nothing here allocates when the buffer already has room. The base64url
//! primitives live below this module and below the keys, in `base64url`.

use super::base64url::{b64_append, b64_in_place};
use super::keys::{SignError, SigningKey};

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
/// spelling, docs/compatibility.md) — the time claims of every token Torii signs. No allocation.
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
