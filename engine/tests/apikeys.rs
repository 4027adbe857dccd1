//! API keys on routes over real sockets: every extractor crossed with every kind of bad key
//! (unknown, wrong secret, disabled, expired, other route) plus the good one, with the
//! answers of docs/oauth2.md "Answers"; credentials wiped before forwarding (headers, query parameters,
//! cookies) unless `wipe_credentials = false`; Basic secrets holding `:`, `%3A` and `+`; and a
//! refused request with a body never lets that body reach a backend as a request; a key sent
//! where a bearer-only route does not read one is told what the route reads.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::time::Duration;

use common::auth::*;
use common::recorder::{recorder, Received};
use common::seen::seen;
use common::*;

/// What a request presents: (id, secret) for key extractors, or a token for bearer ones.
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    IdOnly,
    IdSecret,
    Token,
}

/// One extractor: its shape, how it puts the credential on a request, and the carrier name
/// the backend must not see (header name, `?param`, or `cookie=`).
struct Extractor {
    name: &'static str,
    shape: Shape,
    render: fn(&str, &str) -> String,
    carrier: &'static str,
}

fn req(query: &str, headers: &str) -> String {
    format!("GET /things{query} HTTP/1.1\r\nHost: {API}\r\nX-Keep: yes\r\n{headers}\r\n")
}

fn extractors() -> Vec<Extractor> {
    vec![
        Extractor {
            name: "x-api-key header",
            shape: Shape::IdOnly,
            carrier: "x-api-key",
            render: |id, _| req("", &format!("x-api-key: {id}\r\n")),
        },
        Extractor {
            name: "x-api-key query",
            shape: Shape::IdOnly,
            carrier: "?x-api-key",
            render: |id, _| req(&format!("?keep=1&x-api-key={}", form_encode(id)), ""),
        },
        Extractor {
            name: "x-api-key cookie",
            shape: Shape::IdOnly,
            carrier: "cookie=x-api-key",
            render: |id, _| req("", &format!("Cookie: keep=1; x-api-key={id}\r\n")),
        },
        Extractor {
            name: "Otoroshi-Client-Id/Secret",
            shape: Shape::IdSecret,
            carrier: "otoroshi-client-secret",
            render: |id, s| {
                req(
                    "",
                    &format!("Otoroshi-Client-Id: {id}\r\nOtoroshi-Client-Secret: {s}\r\n"),
                )
            },
        },
        Extractor {
            name: "Otoroshi-Token",
            shape: Shape::Token,
            carrier: "otoroshi-token",
            render: |t, _| req("", &format!("Otoroshi-Token: {t}\r\n")),
        },
        Extractor {
            name: "Authorization: Bearer",
            shape: Shape::Token,
            carrier: "authorization",
            render: |t, _| req("", &format!("Authorization: Bearer {t}\r\n")),
        },
        Extractor {
            name: "bearer_auth query",
            shape: Shape::Token,
            carrier: "?bearer_auth",
            render: |t, _| req(&format!("?bearer_auth={t}&keep=1"), ""),
        },
        Extractor {
            name: "access_token cookie",
            shape: Shape::Token,
            carrier: "cookie=access_token",
            render: |t, _| req("", &format!("Cookie: access_token={t}; keep=1\r\n")),
        },
        Extractor {
            name: "Authorization: Basic",
            shape: Shape::IdSecret,
            carrier: "authorization",
            render: |id, s| req("", &format!("Authorization: {}\r\n", basic(id, s))),
        },
        Extractor {
            name: "Otoroshi-Authorization",
            shape: Shape::IdSecret,
            carrier: "otoroshi-authorization",
            render: |id, s| req("", &format!("Otoroshi-Authorization: {}\r\n", basic(id, s))),
        },
        Extractor {
            name: "basic_auth query",
            shape: Shape::IdSecret,
            carrier: "?basic_auth",
            render: |id, s| {
                let b64 = basic(id, s).trim_start_matches("Basic ").to_owned();
                req(&format!("?basic_auth={}&keep=1", form_encode(&b64)), "")
            },
        },
        Extractor {
            name: "custom headers",
            shape: Shape::IdSecret,
            carrier: "x-secret",
            render: |id, s| req("", &format!("X-Client: {id}\r\nX-Secret: {s}\r\n")),
        },
    ]
}

const BAD: &str = r#"{"Otoroshi-Error":"Bad API key"}"#;
const FORBIDDEN: &str = r#"{"Otoroshi-Error":"API key not authorized on this route"}"#;

/// Asserts that the backend (the mirror) saw none of the carrier, and the rest untouched.
fn assert_wiped(r: &Response, carrier: &str, what: &str) {
    let seen = seen(r);
    let query = seen["query"].as_str().unwrap();
    let cookies = seen.values("cookie");
    assert_eq!(seen.one("x-keep"), Some("yes"), "{what}: {seen}");
    if let Some(param) = carrier.strip_prefix('?') {
        assert!(!query.contains(param), "{what}: {seen}");
        assert_eq!(query, "keep=1", "{what}: {seen}");
    } else if let Some(name) = carrier.strip_prefix("cookie=") {
        assert_eq!(
            cookies,
            ["keep=1"],
            "{what}: {name} wiped, the rest kept: {seen}"
        );
    } else {
        assert!(!seen.has(carrier), "{what}: {seen}");
    }
    for h in [
        "authorization",
        "otoroshi-client-id",
        "otoroshi-client-secret",
        "x-client",
        "x-secret",
    ] {
        assert!(!seen.has(h), "{what}: {h} forwarded: {seen}");
    }
}

#[test]
fn every_extractor_crossed_with_every_bad_key() {
    let g = start("apikeys-table", false);
    let kid = "otoroshi-jwt-signing";
    let foreign =
        torii_engine::auth::keygen::generate_pem(torii_engine::auth::keygen::KeyKind::EcP256)
            .unwrap();
    let tok = |pem: &str, cid: &str| mint(pem, kid, cid, 600);
    let mut checked = 0;
    for ex in extractors() {
        // (kind, id-or-token, secret, status, body)
        let rows: Vec<(&str, String, &str, u16, &str)> = match ex.shape {
            Shape::IdOnly => vec![
                ("unknown", "nobody".into(), "", 401, BAD),
                (
                    "wrong secret (id alone not allowed)",
                    "my-client".into(),
                    "",
                    401,
                    BAD,
                ),
                ("disabled", "disabled".into(), "", 401, BAD),
                ("expired", "expired".into(), "", 401, BAD),
                ("other route", "other-client".into(), "", 403, FORBIDDEN),
                ("good", "idonly".into(), "", 200, ""),
            ],
            Shape::IdSecret => vec![
                ("unknown", "nobody".into(), "x", 401, BAD),
                (
                    "wrong secret",
                    "my-client".into(),
                    "s3cr:et+x:y-0123456789",
                    401,
                    BAD,
                ),
                ("disabled", "disabled".into(), "disabled-secret", 401, BAD),
                ("expired", "expired".into(), "expired-secret", 401, BAD),
                (
                    "other route",
                    "other-client".into(),
                    "other-secret",
                    403,
                    FORBIDDEN,
                ),
                ("good", "my-client".into(), SECRET, 200, ""),
            ],
            Shape::Token => vec![
                ("unknown", tok(&g.ec_pem, "nobody"), "", 401, BAD),
                ("wrong signature", tok(&foreign, "my-client"), "", 401, BAD),
                (
                    "expired token",
                    mint(&g.ec_pem, kid, "my-client", -60),
                    "",
                    401,
                    BAD,
                ),
                ("disabled", tok(&g.ec_pem, "disabled"), "", 401, BAD),
                ("expired", tok(&g.ec_pem, "expired"), "", 401, BAD),
                (
                    "other route",
                    tok(&g.ec_pem, "other-client"),
                    "",
                    403,
                    FORBIDDEN,
                ),
                ("good", tok(&g.ec_pem, "my-client"), "", 200, ""),
            ],
        };
        for (kind, cred, secret, status, body) in rows {
            let what = format!("{} / {kind}", ex.name);
            let r = request(g.addr, &(ex.render)(&cred, secret));
            assert_eq!(r.status, status, "{what}: {}", r.text());
            if status == 200 {
                assert_wiped(&r, ex.carrier, &what);
            } else {
                assert_eq!(r.text(), body, "{what}");
                assert_eq!(r.header("otoroshi-error"), Some("true"), "{what}");
                assert_eq!(
                    r.header("www-authenticate").is_some(),
                    status == 401,
                    "{what}"
                );
            }
            checked += 1;
        }
    }
    // 12 extractors × 6 kinds, plus 4 token extractors × 1 (expired token).
    assert_eq!(checked, 12 * 6 + 4);
    // Every refusal is counted by reason in the route's metrics (recorded before the answer
    // is written, so the counts are final here).
    use torii_engine::metrics::RejectReason as R;
    let snap = g.gw.shared.snapshot.load();
    let api = snap.routes.iter().find(|r| r.id == "api").unwrap();
    let t = api.metrics.totals();
    let count = |r: R| t.apikey[R::ALL.iter().position(|x| *x == r).unwrap()];
    assert_eq!(count(R::NotAuthorized), 12, "403 other route");
    assert_eq!(count(R::Disabled), 12);
    assert_eq!(count(R::Expired), 12 + 4, "expired keys and expired tokens");
    assert_eq!(count(R::UnknownKey), 12);
    let refusals: u64 = t.apikey.iter().sum();
    assert_eq!(refusals, 12 * 5 + 4);
}

#[test]
fn wipe_credentials_false_forwards_them() {
    let dir = temp_dir("apikeys-nowipe");
    std::fs::write(
        dir.join("ec.pem"),
        torii_engine::auth::keygen::generate_pem(torii_engine::auth::keygen::KeyKind::EcP256)
            .unwrap(),
    )
    .unwrap();
    let text = config_text(&dir, mirror(), false, "").replace(
        "[routes.apikeys]\ncustom_headers",
        "[routes.apikeys]\nwipe_credentials = false\ncustom_headers",
    );
    let g = gateway(&text);
    let r = request(
        g.addrs[0],
        &req(
            "?x-api-key=idonly&keep=1",
            "X-Client: my-client\r\nCookie: access_token=zz\r\n",
        ),
    );
    let seen = seen(&r);
    assert_eq!(seen["query"], "x-api-key=idonly&keep=1");
    assert_eq!(seen.one("x-client"), Some("my-client"));
    assert_eq!(seen.one("cookie"), Some("access_token=zz"));
}

#[test]
fn basic_secrets_with_colon_percent_and_plus() {
    let g = start("apikeys-basic", false);
    // On a route, Basic is decoded as is: split at the first ':' only, no URL-decoding.
    let r = request(
        g.addr,
        &req(
            "",
            &format!("Authorization: {}\r\n", basic("my-client", SECRET)),
        ),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // URL-safe base64 is accepted too.
    let std_b64 = basic("my-client", SECRET);
    let url_safe = std_b64.replace('+', "-").replace('/', "_");
    let r = request(g.addr, &req("", &format!("Authorization: {url_safe}\r\n")));
    assert_eq!(r.status, 200, "{}", r.text());
    // Sent URL-encoded to a route, it is another secret.
    let r = request(
        g.addr,
        &req(
            "",
            &format!(
                "Authorization: {}\r\n",
                basic("my-client", &form_encode(SECRET))
            ),
        ),
    );
    assert_eq!(r.status, 401);
    // The token endpoint URL-decodes Basic credentials (RFC 6749 §2.3.1): encoded works, and
    // `%3A` in the secret must be sent as `%253A`.
    let auth = format!(
        "Authorization: {}\r\n",
        basic("my-client", &form_encode(SECRET))
    );
    let form = "application/x-www-form-urlencoded";
    let r = post(
        g.addr,
        OAUTH,
        "/.well-known/otoroshi/oauth/token",
        form,
        &auth,
        "grant_type=client_credentials",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let raw = format!("Authorization: {}\r\n", basic("my-client", SECRET));
    let r = post(
        g.addr,
        OAUTH,
        "/.well-known/otoroshi/oauth/token",
        form,
        &raw,
        "grant_type=client_credentials",
    );
    assert_eq!(r.status, 401, "raw '+' decodes to a space: {}", r.text());
}

/// On a bearer-only route, a key sent in a place the route does not read (the id and secret
/// headers, `x-api-key`, Basic) is refused with 401 naming what the route reads, and nothing the
/// client sent is echoed; a request that sent nothing (or only what no extractor reads) still
/// gets Otoroshi's `No ApiKey provided`; a token is admitted.
#[test]
fn a_key_where_the_route_does_not_read_one_is_told_what_it_reads() {
    let dir = temp_dir("apikeys-bearer-only");
    let ec_pem =
        torii_engine::auth::keygen::generate_pem(torii_engine::auth::keygen::KeyKind::EcP256)
            .unwrap();
    std::fs::write(dir.join("ec.pem"), &ec_pem).unwrap();
    let text = config_text(&dir, mirror(), false, "").replace(
        "[routes.apikeys]\ncustom_headers = { client_id = \"X-Client\", client_secret = \"X-Secret\" }",
        "[routes.apikeys]\nextractors = [\"bearer\"]",
    );
    assert!(text.contains("extractors = [\"bearer\"]"));
    let g = gateway(&text);
    const READS: &str = "Credential not read on this route; it accepts: a bearer token in the \
        Otoroshi-Token header, Authorization: Bearer, the bearer_auth query parameter or the \
        access_token cookie";
    let misplaced = [
        (
            "id and secret headers",
            "",
            format!("Otoroshi-Client-Id: my-client\r\nOtoroshi-Client-Secret: {SECRET}\r\n"),
        ),
        ("x-api-key header", "", "x-api-key: idonly\r\n".to_owned()),
        ("x-api-key query", "?x-api-key=idonly", String::new()),
        (
            "Basic",
            "",
            format!("Authorization: {}\r\n", basic("my-client", SECRET)),
        ),
    ];
    for (what, query, headers) in &misplaced {
        let r = request(g.addrs[0], &req(query, headers));
        assert_eq!(r.status, 401, "{what}: {}", r.text());
        assert_eq!(r.header("otoroshi-error-msg"), Some(READS), "{what}");
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["Otoroshi-Error"], READS, "{what}");
        assert!(r.header("www-authenticate").is_some(), "{what}");
        let answer = format!("{:?}{}", r.headers, r.text());
        for sent in [SECRET, "my-client", "idonly"] {
            assert!(!answer.contains(sent), "{what}: {sent} echoed: {answer}");
        }
    }
    for (what, headers) in [
        ("nothing", ""),
        (
            "only what no extractor reads",
            "Authorization: Digest x\r\n",
        ),
    ] {
        let r = request(g.addrs[0], &req("", headers));
        assert_eq!(r.status, 401, "{what}");
        assert_eq!(
            r.text(),
            r#"{"Otoroshi-Error":"No ApiKey provided"}"#,
            "{what}"
        );
    }
    let token = mint(&ec_pem, "otoroshi-jwt-signing", "my-client", 60);
    let r = request(
        g.addrs[0],
        &req("", &format!("Authorization: Bearer {token}\r\n")),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

/// A gateway on [`config_text`] whose routes go to a recording backend.
fn recorded_gateway(name: &str) -> (torii_engine::control::Gateway, common::recorder::Recorder) {
    let dir = temp_dir(name);
    std::fs::write(
        dir.join("ec.pem"),
        torii_engine::auth::keygen::generate_pem(torii_engine::auth::keygen::KeyKind::EcP256)
            .unwrap(),
    )
    .unwrap();
    let rec = recorder();
    let g = gateway(&config_text(&dir, rec.addr, false, ""));
    (g, rec)
}

/// A POST without credentials whose body is a complete request carrying a valid key (plus
/// filler, so the body is not entirely buffered when the 401 is decided), sent in `framing`
/// (`Content-Length` or chunked). The 401 closes the connection; the backend (which parses
/// with its own strict rules) must have received nothing at all. The control request after
/// it shows that the recorder sits behind this gateway and does see what is forwarded.
#[test]
fn refused_request_body_never_reaches_a_backend() {
    for framing in ["content-length", "chunked"] {
        let (g, rec) = recorded_gateway(&format!("apikeys-pipelined-{framing}"));
        let mut s = connect(g.addrs[0]);
        let smuggled =
            format!("GET /smuggled HTTP/1.1\r\nHost: {API}\r\nx-api-key: idonly\r\n\r\n");
        let body = format!("{smuggled}{}", "x".repeat(64 * 1024));
        let raw = match framing {
            "chunked" => format!(
                "POST /upload HTTP/1.1\r\nHost: {API}\r\nTransfer-Encoding: chunked\r\n\r\n\
                 {:x}\r\n{smuggled}\r\n{:x}\r\n{}\r\n0\r\n\r\n",
                smuggled.len(),
                64 * 1024,
                "x".repeat(64 * 1024)
            ),
            _ => format!(
                "POST /upload HTTP/1.1\r\nHost: {API}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
        };
        // A second request with a valid key, pipelined behind the whole body: it may be
        // served on its own (after a drain) or not at all (after a close), never as part
        // of the first. Torii closes, so it is never served.
        let pipelined =
            format!("GET /pipelined HTTP/1.1\r\nHost: {API}\r\nx-api-key: idonly\r\n\r\n");
        // The write may fail once the gateway closes: what matters is the answer.
        let _ = s.write_all(format!("{raw}{pipelined}").as_bytes());
        let mut buf = Vec::new();
        let r = read_response(&mut s, &mut buf, "POST").unwrap();
        assert_eq!(r.status, 401, "{framing}");
        assert_eq!(r.header("connection"), Some("close"), "{framing}");
        let mut rest = std::mem::take(&mut buf);
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        while fill(&mut s, &mut rest) {}
        assert!(
            rest.is_empty(),
            "{framing}: bytes after the 401: {:?}",
            String::from_utf8_lossy(&rest)
        );
        assert_eq!(
            rec.received(Duration::from_secs(1)),
            Received::Nothing,
            "{framing}: the refused request's body reached the backend"
        );
        // Control: a request with the key is forwarded, and the recorder sees exactly it.
        let r = request(g.addrs[0], &pipelined);
        assert_eq!(r.status, 200, "{framing}: {}", r.text());
        assert_eq!(
            rec.received(Duration::from_secs(1)),
            Received::One("/pipelined".into()),
            "{framing}"
        );
    }
}
