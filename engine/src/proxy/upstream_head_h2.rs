//! The request head an HTTP/2 upstream receives, as `http::Request` parts: the head
//! `UpstreamHead::render` wrote for the request (so exactly the same rules decide what the
//! backend sees — the security headers, the tokens, the forwarding headers, the hop-by-hop and
//! spoofable names dropped, the wiped credentials) carried over to HTTP/2 fields.
//!
//! Owns the carrying over only, pure (no IO, no clock): the request line becomes `:method` and
//! the path, the rendered `host` line `:authority`, the scheme `:scheme`; the fields HTTP/2
//! forbids (RFC 9113 §8.2.2: `connection`, `keep-alive`, `proxy-connection`,
//! `transfer-encoding`, `upgrade`, `te` other than `trailers`) are left out, and `te: trailers`
//! is sent when the client asked for trailers (gRPC needs it end to end). Reading the head
//! back costs a scan of bytes Torii wrote itself, on the HTTP/2 upstream path only; the
//! HTTP/1.1 path is untouched. It must not add anything the HTTP/1.1 head would not carry.

use http::header::{HeaderName, HeaderValue};
use http::{Method, Request, Uri, Version};

/// Why a rendered head could not be carried over (a value HTTP/2 cannot carry; 502 caller-side).
pub type Refusal = &'static str;

/// The HTTP/2 request for the HTTP/1.1 head at the start of `rendered` (up to its blank line),
/// over TLS when `tls`, with `te: trailers` when `te_trailers`. Returns the request and the
/// head's length in `rendered` (what follows it is a body rendered with the head).
pub fn to_h2_request(
    rendered: &[u8],
    tls: bool,
    te_trailers: bool,
) -> Result<(Request<()>, usize), Refusal> {
    let end = memchr::memmem::find(rendered, b"\r\n\r\n").ok_or("upstream_h2.no_head_end")?;
    let head = &rendered[..end];
    let mut lines = head.split(|&b| b == b'\n').map(trim_cr);
    let request_line = lines.next().ok_or("upstream_h2.no_request_line")?;
    let mut parts = request_line.splitn(3, |&b| b == b' ');
    let method = Method::from_bytes(parts.next().unwrap_or_default())
        .map_err(|_| "upstream_h2.bad_method")?;
    let target = parts.next().ok_or("upstream_h2.no_target")?;
    let mut builder = Request::builder().method(method).version(Version::HTTP_2);
    let mut authority: Option<&[u8]> = None;
    let headers = builder.headers_mut().ok_or("upstream_h2.builder")?;
    for line in lines {
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let name = &line[..colon];
        let value = trim_ows(&line[colon + 1..]);
        if name.eq_ignore_ascii_case(b"host") {
            authority.get_or_insert(value);
            continue;
        }
        if is_connection_specific(name) {
            continue;
        }
        let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) else {
            return Err("upstream_h2.bad_field");
        };
        headers.append(n, v);
    }
    if te_trailers {
        headers.insert(http::header::TE, HeaderValue::from_static("trailers"));
    }
    let authority = authority.ok_or("upstream_h2.no_host")?;
    let uri = Uri::builder()
        .scheme(if tls { "https" } else { "http" })
        .authority(authority)
        .path_and_query(target)
        .build()
        .map_err(|_| "upstream_h2.bad_target")?;
    builder = builder.uri(uri);
    let request = builder.body(()).map_err(|_| "upstream_h2.builder")?;
    Ok((request, end + 4))
}

/// The fields HTTP/2 forbids in a request (RFC 9113 §8.2.2), `te` included (re-added as
/// `te: trailers` when asked).
fn is_connection_specific(name: &[u8]) -> bool {
    const NAMES: [&[u8]; 6] = [
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"transfer-encoding",
        b"upgrade",
        b"te",
    ];
    NAMES.iter().any(|n| name.eq_ignore_ascii_case(n))
}

/// True when the client's `te` field value lists `trailers` (RFC 9110 §10.1.4).
pub fn te_lists_trailers(value: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .map(|t| trim_ows(t.split(|&b| b == b';').next().unwrap_or_default()))
        .any(|t| t.eq_ignore_ascii_case(b"trailers"))
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn trim_ows(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |p| p + 1);
    v.get(start..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rendered_head_becomes_http2_fields() {
        let head = b"POST /svc.Echo/Say?x=1 HTTP/1.1\r\ncontent-type: application/grpc\r\nX-Custom: a\r\nx-custom: b\r\ntransfer-encoding: chunked\r\nhost: backend:50051\r\nx-forwarded-for: 127.0.0.1\r\n\r\nBODY";
        let (req, len) = to_h2_request(head, false, true).unwrap();
        assert_eq!(&head[len..], b"BODY");
        assert_eq!(req.method(), Method::POST);
        assert_eq!(
            req.uri().to_string(),
            "http://backend:50051/svc.Echo/Say?x=1"
        );
        assert_eq!(req.version(), Version::HTTP_2);
        let h = req.headers();
        assert_eq!(h.get_all("x-custom").iter().count(), 2);
        assert_eq!(h["content-type"], "application/grpc");
        assert_eq!(h["te"], "trailers");
        assert_eq!(h["x-forwarded-for"], "127.0.0.1");
        assert!(!h.contains_key("transfer-encoding"));
        assert!(!h.contains_key("host"));
    }

    #[test]
    fn tls_scheme_and_no_te_unless_asked() {
        let head = b"GET / HTTP/1.1\r\nhost: a.test\r\n\r\n";
        let (req, _) = to_h2_request(head, true, false).unwrap();
        assert_eq!(req.uri().scheme_str(), Some("https"));
        assert!(!req.headers().contains_key("te"));
    }

    #[test]
    fn refusals() {
        assert!(to_h2_request(b"GET / HTTP/1.1\r\nhost: a\r\n", false, false).is_err());
        assert!(to_h2_request(b"GET / HTTP/1.1\r\nx: 1\r\n\r\n", false, false).is_err());
        assert!(to_h2_request(
            b"GET / HTTP/1.1\r\nhost: a\r\nx: \x01\r\n\r\n",
            false,
            false
        )
        .is_err());
    }

    #[test]
    fn te_trailers_is_found_among_codings() {
        assert!(te_lists_trailers(b"trailers"));
        assert!(te_lists_trailers(b"gzip;q=0.5, Trailers"));
        assert!(!te_lists_trailers(b"gzip"));
        assert!(!te_lists_trailers(b""));
    }
}
