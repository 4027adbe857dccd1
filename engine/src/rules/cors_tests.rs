//! Tests of the CORS decisions against the Fetch standard: origin matching (exact, wildcard
//! subdomains, `*`), preflight answers and refusals (methods, safelisted methods, requested
//! headers, `*` not covering `Authorization`), the headers of actual responses, `Vary`.

use super::*;
use crate::rules::tests::rules;

fn policy(body: &str) -> CorsPolicy {
    rules(&format!("[routes.cors]\n{body}")).cors.unwrap()
}

fn lines(write: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut out = Vec::new();
    write(&mut out);
    String::from_utf8(out).unwrap()
}

const APP: &str = "allow_origins = [\"https://app.example.com\", \"https://*.example.org\", \"http://localhost:3000\"]\nallow_methods = [\"GET\", \"PUT\"]\nallow_headers = [\"Authorization\", \"X-Trace\"]\nexpose_headers = [\"X-Total\"]\nallow_credentials = true\nmax_age = \"10m\"";

#[test]
fn origins() {
    let p = policy(APP);
    for (o, ok) in [
        ("https://app.example.com", true),
        ("HTTPS://APP.EXAMPLE.COM", true),
        ("https://app.example.com:8443", false),
        ("http://app.example.com", false),
        ("https://a.example.org", true),
        ("https://x.y.example.org", true),
        ("https://example.org", false),
        ("https://.example.org", false),
        ("https://a..example.org", false),
        ("https://evilexample.org", false),
        ("https://a.example.org:444", false),
        ("https://a.example.org/x", false),
        ("http://a.example.org", false),
        ("http://localhost:3000", true),
        ("null", false),
        ("", false),
    ] {
        assert_eq!(p.origin_allowed(o.as_bytes()), ok, "{o}");
    }
    let ported = policy("allow_origins = [\"https://*.example.org:444\"]");
    assert!(ported.origin_allowed(b"https://a.example.org:444"));
    assert!(!ported.origin_allowed(b"https://a.example.org"));
    assert!(policy("allow_origins = [\"*\"]").origin_allowed(b"null"));
}

#[test]
fn preflight_answers() {
    let p = policy(APP);
    let o: &[u8] = b"https://a.example.org";
    let Preflight::Allowed(a) = p.preflight(o, b"PUT", Some(b"authorization, X-TRACE")) else {
        panic!("refused");
    };
    assert_eq!(
        lines(|out| a.write_lines(out)),
        "access-control-allow-origin: https://a.example.org\r\naccess-control-allow-credentials: true\r\naccess-control-allow-methods: GET, PUT\r\naccess-control-allow-headers: authorization, x-trace\r\naccess-control-max-age: 600\r\nvary: Origin\r\n"
    );
    // Safelisted methods need no listing; others do.
    assert!(matches!(
        p.preflight(o, b"POST", None),
        Preflight::Allowed(_)
    ));
    assert_eq!(
        p.preflight(o, b"DELETE", None),
        Preflight::Refused(PreflightRefusal::Method)
    );
    assert_eq!(
        p.preflight(o, b"put", None),
        Preflight::Refused(PreflightRefusal::Method)
    );
    assert_eq!(
        p.preflight(o, b"GET", Some(b"x-other")),
        Preflight::Refused(PreflightRefusal::Header)
    );
    assert!(matches!(
        p.preflight(o, b"GET", Some(b" , ")),
        Preflight::Allowed(_)
    ));
    assert_eq!(
        p.preflight(b"https://evil.test", b"GET", None),
        Preflight::Refused(PreflightRefusal::Origin)
    );
}

#[test]
fn wildcards_without_credentials() {
    let p = policy("allow_origins = [\"*\"]\nallow_methods = [\"*\"]\nallow_headers = [\"*\"]");
    assert!(!p.varies());
    let Preflight::Allowed(a) = p.preflight(b"https://x.test", b"PATCH", Some(b"x-a, x-b")) else {
        panic!("refused");
    };
    assert_eq!(
        lines(|out| a.write_lines(out)),
        "access-control-allow-origin: *\r\naccess-control-allow-methods: *\r\naccess-control-allow-headers: *\r\n"
    );
    // The Fetch standard: `*` never covers Authorization.
    assert_eq!(
        p.preflight(b"https://x.test", b"GET", Some(b"Authorization")),
        Preflight::Refused(PreflightRefusal::Header)
    );
}

#[test]
fn actual_responses() {
    let p = policy(APP);
    let a = p.actual_response_headers(Some(b"https://app.example.com"));
    assert_eq!(
        lines(|out| a.write_lines(out)),
        "access-control-allow-origin: https://app.example.com\r\naccess-control-allow-credentials: true\r\naccess-control-expose-headers: x-total\r\nvary: Origin\r\n"
    );
    // Not allowed, or no Origin: only Vary, so caches keep answers per origin.
    for origin in [Some(&b"https://evil.test"[..]), None] {
        let a = p.actual_response_headers(origin);
        assert_eq!(a.allow_origin, None);
        assert_eq!(lines(|out| a.write_lines(out)), "vary: Origin\r\n");
    }
    let star = policy("allow_origins = [\"*\"]");
    let a = star.actual_response_headers(Some(b"https://x.test"));
    assert_eq!(
        lines(|out| a.write_lines(out)),
        "access-control-allow-origin: *\r\n"
    );
    assert_eq!(
        lines(|out| star.actual_response_headers(None).write_lines(out)),
        ""
    );
}
