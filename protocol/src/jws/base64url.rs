//! Base64url without padding (RFC 7515 §2, "Base64url Encoding") into caller-owned buffers:
//! the one encoding step shared by the keys (a signature appended to a token) and the encoders
//! (header and payload segments). It sits below both so neither imports the other for it. It
//! owns no key and no JSON; nothing here allocates when the buffer already has room.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn append_and_in_place_agree_with_the_base64_crate() {
        let data: Vec<u8> = (0..=255u8).collect();
        for len in 0..70 {
            let raw = &data[..len];
            let expected = URL_SAFE_NO_PAD.encode(raw);
            assert_eq!(b64_len(len), expected.len(), "length of {len} bytes");
            let mut out = b"prefix.".to_vec();
            b64_append(&mut out, raw);
            assert_eq!(&out[7..], expected.as_bytes());
            let mut out = b"prefix.".to_vec();
            out.extend_from_slice(raw);
            b64_in_place(&mut out, 7);
            assert_eq!(&out[..7], b"prefix.");
            assert_eq!(&out[7..], expected.as_bytes());
        }
    }

    #[test]
    fn aligned_prefixes_concatenate_into_one_valid_encoding() {
        for json in [&b"{"[..], b"{\"a\":1,", b"{\"iss\":\"x\","] {
            let prefix = aligned_b64(json.to_vec());
            assert_eq!(prefix.len() % 4, 0);
            let mut token = prefix.clone();
            b64_append(&mut token, b"\"z\":2}");
            let decoded = URL_SAFE_NO_PAD.decode(&token).unwrap();
            let text = String::from_utf8(decoded).unwrap();
            assert!(text.starts_with(std::str::from_utf8(json).unwrap()));
            assert!(text.ends_with("\"z\":2}"));
            // Only spaces were added between the parts.
            let middle = &text[json.len()..text.len() - 6];
            assert!(middle.bytes().all(|b| b == b' '), "{middle:?}");
        }
    }
}
