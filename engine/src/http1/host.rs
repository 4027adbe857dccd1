//! The canonical host: the one form of a request's host that every host match in Torii uses —
//! route matching, the token service's `domain`, and the certificate chosen by SNI — so that
//! `Host: oauth.test.` (trailing dot), `OAUTH.test` or `oauth.test:80` can never match one rule
//! and slip past another. (A review found the token service matching `oauth.test.` differently
//! from routing: the request fell through to a wildcard route whose backend received the
//! `client_secret`.)
//!
//! Rules: surrounding spaces and tabs ignored; an optional `:port` (digits) removed (`[v6]:port`
//! keeps the brackets); one trailing dot removed (`a.test.` is `a.test`, `a.test..` matches
//! nothing, nor does any other empty label); ASCII lower case; at most [`MAX_HOST_BYTES`] bytes; only letters, digits, `-`, `_`
//! and `.` (hex digits, `:` and `.` inside brackets); empty or leading-dot hosts are refused.
//! Pure and allocation-free: the result is written into a caller's stack buffer.

/// Longest host name matched, in bytes (RFC 1035's limit on a name's text form).
pub const MAX_HOST_BYTES: usize = 255;

/// Strips the port and one trailing dot, lowercases into `buf`, and checks the bytes.
/// Returns `None` for hosts that can match no route.
pub fn canonical_host<'b>(raw: &[u8], buf: &'b mut [u8; MAX_HOST_BYTES]) -> Option<&'b [u8]> {
    let raw = trim_ows(raw);
    let (host, port) = if raw.first() == Some(&b'[') {
        let close = raw.iter().position(|&b| b == b']')?;
        (&raw[..=close], &raw[close + 1..])
    } else {
        match raw.iter().position(|&b| b == b':') {
            Some(colon) => (&raw[..colon], &raw[colon..]),
            None => (raw, &raw[raw.len()..]),
        }
    };
    if let Some(digits) = port.strip_prefix(b":") {
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
    } else if !port.is_empty() {
        return None;
    }
    let bracketed = host.first() == Some(&b'[');
    let host = match host.strip_suffix(b".") {
        Some(h) if !bracketed => h,
        _ => host,
    };
    if host.is_empty() || host.len() > MAX_HOST_BYTES || host.first() == Some(&b'.') {
        return None;
    }
    // An empty label (`a..b`, or a second trailing dot) names nothing.
    if !bracketed && (host.last() == Some(&b'.') || host.windows(2).any(|w| w == b"..")) {
        return None;
    }
    let out = buf.get_mut(..host.len())?;
    for (o, &b) in out.iter_mut().zip(host) {
        let ok = if bracketed {
            b.is_ascii_hexdigit() || matches!(b, b':' | b'.' | b'[' | b']')
        } else {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
        };
        if !ok {
            return None;
        }
        *o = b.to_ascii_lowercase();
    }
    Some(out)
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn canon(raw: &str) -> Option<String> {
        let mut buf = [0u8; MAX_HOST_BYTES];
        canonical_host(raw.as_bytes(), &mut buf).map(|h| String::from_utf8(h.to_vec()).unwrap())
    }

    #[test]
    fn one_form_for_every_spelling() {
        for raw in [
            "oauth.test",
            "OAUTH.Test",
            "oauth.test.",
            "oauth.test:8443",
            "oauth.test.:80",
            " oauth.test\t",
        ] {
            assert_eq!(
                canon(&raw.replace("\\t", "\t")).as_deref(),
                Some("oauth.test"),
                "{raw:?}"
            );
        }
        assert_eq!(canon("[::1]:80").as_deref(), Some("[::1]"));
        assert_eq!(canon("[::1]."), None);
        assert_eq!(canon("[::1]x"), None);
    }

    #[test]
    fn refused_hosts() {
        for raw in [
            "",
            ":80",
            "a.test..",
            ".a.test",
            "a b",
            "a/b",
            "a.test:8x",
            "a..test",
            "a:1:2",
            "[::1",
            "é.test",
            "a\0",
        ] {
            assert_eq!(canon(&raw.replace("\\0", "\0")), None, "{raw:?}");
        }
        assert_eq!(canon(&"a".repeat(256)), None);
        assert!(canon(&"a".repeat(255)).is_some());
    }
}
