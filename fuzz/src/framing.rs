//! Independent oracles for heads the engine accepted: line endings, obs-fold, header counts and
//! the framing the parser reported, re-derived from the raw bytes.

use torii_engine::http1::{eq_ignore_case, HeaderField};

/// The `tchar` set of RFC 9110 §5.6.2: what a field name may contain.
pub fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Checks the line structure of an accepted head `head` (through its final CRLF CRLF): every
/// LF follows a CR and every CR precedes an LF, no NUL, no line after the first starts with a
/// blank (obs-fold). Returns the number of non-empty lines after the start line (the header
/// lines), skipping up to `leading` empty lines before the start line.
pub fn check_lines(head: &[u8]) -> usize {
    assert!(head.ends_with(b"\r\n\r\n"), "head does not end in CRLF CRLF");
    assert!(!head.contains(&0), "NUL accepted in a head");
    for (i, &b) in head.iter().enumerate() {
        match b {
            b'\n' => assert!(
                i > 0 && head.get(i - 1) == Some(&b'\r'),
                "bare LF accepted at {i}"
            ),
            b'\r' => assert_eq!(head.get(i + 1), Some(&b'\n'), "bare CR accepted at {i}"),
            _ => {}
        }
    }
    let body = &head[..head.len() - 4];
    let mut lines = body.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    // leading empty lines, then the start line
    let start = lines.by_ref().find(|l| !l.is_empty()).unwrap_or_default();
    assert!(
        !start.starts_with(b" ") && !start.starts_with(b"\t"),
        "start line begins with a blank"
    );
    let mut n = 0;
    for line in lines {
        assert!(!line.is_empty(), "empty line inside a head");
        assert!(
            !line.starts_with(b" ") && !line.starts_with(b"\t"),
            "obs-fold accepted"
        );
        n += 1;
    }
    n
}

/// Counts of the framing headers in a parsed header list, with their values.
#[derive(Debug, Default)]
pub struct FramingHeaders<'a> {
    /// Values of every `Content-Length` line.
    pub content_length: Vec<&'a [u8]>,
    /// Values of every `Transfer-Encoding` line.
    pub transfer_encoding: Vec<&'a [u8]>,
    /// Values of every `Host` line.
    pub host: Vec<&'a [u8]>,
}

/// Collects the framing headers by name (case-insensitive), checking on the way that every
/// field name is a non-empty token (no blank before the colon) and every value is free of CR,
/// LF and NUL and has no surrounding blanks.
pub fn framing_headers<'a>(buf: &'a [u8], headers: &[HeaderField]) -> FramingHeaders<'a> {
    let mut f = FramingHeaders::default();
    for h in headers {
        let name = h.name.get(buf);
        let value = h.value.get(buf);
        assert!(!name.is_empty(), "empty field name accepted");
        assert!(
            name.iter().all(|&b| is_tchar(b)),
            "field name with a non-token byte accepted: {name:?}"
        );
        assert!(
            !value.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0),
            "CR, LF or NUL inside a value accepted"
        );
        let line = h.line.get(buf);
        assert!(line.ends_with(b"\r\n"), "header line span without its CRLF");
        assert!(line.starts_with(name), "header line span does not start with the name");
        if eq_ignore_case(name, b"content-length") {
            f.content_length.push(value);
        } else if eq_ignore_case(name, b"transfer-encoding") {
            f.transfer_encoding.push(value);
        } else if eq_ignore_case(name, b"host") {
            f.host.push(value);
        }
    }
    f
}

/// `1*DIGIT` as a `u64`, `None` otherwise (overflow included).
pub fn digits(v: &[u8]) -> Option<u64> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// True when `v`, trimmed of SP/HTAB, is `chunked` in any case.
pub fn is_chunked(v: &[u8]) -> bool {
    let t: &[u8] = {
        let s = v.iter().position(|&b| b != b' ' && b != b'\t').unwrap_or(v.len());
        let e = v.iter().rposition(|&b| b != b' ' && b != b'\t').map_or(s, |e| e + 1);
        v.get(s..e).unwrap_or_default()
    };
    eq_ignore_case(t, b"chunked")
}
