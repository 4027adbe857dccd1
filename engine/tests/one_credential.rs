//! One credential, one meaning, end to end over HTTP/1.1 and HTTP/2 (h2c, `curl
//! --http2-prior-knowledge`): a request that carries the credential a route checks more than
//! once — two header lines, a query name twice after percent-decoding, a cookie twice in one
//! `Cookie` line or across lines — is refused with 400 before any backend is contacted,
//! whichever copy is the valid one, for `[routes.jwt]` (header, query and cookie sources) and
//! for every API-key extractor; a second `Cookie` line is seen by the extractors and wiped.
//!
//! The backend reads duplicated fields the way web frameworks do — the first value (Flask, Go)
//! and the last (Django, PHP, Python's `SimpleCookie`) — so an accepted request proves that
//! both readings give the one credential Torii checked.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Mutex;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::*;
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::json;
use torii_protocol::apikey::percent_decode;

const HS_SECRET: &str = "one-credential-test-secret-0123456789abcdef";
const KEY_SECRET: &str = "alice-secret-0123456789";

/// A valid low-privilege token of the routes' issuer.
fn valid_token() -> String {
    let now = torii_engine::secure::unix_now();
    let claims = json!({"sub": "alice", "role": "reader", "iat": now, "exp": now + 300});
    encode(
        &Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(HS_SECRET.as_bytes()),
    )
    .unwrap()
}

/// An unsigned token claiming to be `admin` (a backend that decodes claims without checking
/// the signature, trusting the gateway, would act on it).
fn forged_token() -> String {
    let now = torii_engine::secure::unix_now();
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"k1"}"#),
        URL_SAFE_NO_PAD.encode(json!({"sub": "admin", "exp": now + 300}).to_string())
    )
}

/// A backend that answers `200 ok` to every request and keeps every byte it received.
fn backend() -> RawBackend {
    raw_backend(|_, mut s, log: &Mutex<Vec<u8>>| {
        use std::io::Write;
        let mut buf = Vec::new();
        while read_request(&mut s, &mut buf, log).is_some() {
            if s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .is_err()
            {
                return;
            }
        }
    })
}

/// The gateway: `jwth.test` (token in `Authorization: Bearer`), `jwtq.test` (query `token`),
/// `jwtc.test` (cookie `jwt`), and `keys.test` (API keys, every extractor) — all to `to`.
fn setup(to: SocketAddr, h2c: bool) -> torii_engine::control::Gateway {
    let jwt = |id: &str, source: &str| {
        format!(
            "{}[routes.jwt]\nalgorithms = [\"HS256\"]\nsecret = \"{HS_SECRET}\"\n{source}\n",
            route(id, &format!("{id}.test"), "/", &[to])
        )
    };
    let mut header = gateway_header("");
    if h2c {
        header = header.replace(
            "drain_timeout = \"2s\"\n",
            "drain_timeout = \"2s\"\nh2c = true\n",
        );
    }
    let cfg = format!(
        "{header}{}{}{}{}[routes.apikeys]\n\n\
         [[apikeys]]\nclient_id = \"alice\"\nclient_secret = \"{KEY_SECRET}\"\nroutes = [\"keys\"]\n",
        jwt("jwth", ""),
        jwt("jwtq", "[routes.jwt.source]\nquery = \"token\""),
        jwt("jwtc", "[routes.jwt.source]\ncookie = \"jwt\""),
        route("keys", "keys.test", "/", &[to]),
    );
    gateway(&cfg)
}

/// One request as the backend received it.
struct Received(String);

impl Received {
    /// The single request the backend got since `before` bytes.
    fn since(b: &RawBackend, before: usize) -> Received {
        let all = b.received.lock().unwrap();
        Received(String::from_utf8_lossy(&all[before..]).into_owned())
    }

    fn fields(&self, name: &str) -> Vec<String> {
        self.0
            .split("\r\n")
            .skip(1)
            .take_while(|l| !l.is_empty())
            .filter_map(|l| l.split_once(':'))
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }

    /// Query values of `name` (names compared after percent-decoding, as frameworks do).
    fn query(&self, name: &str) -> Vec<String> {
        let target = self.0.split(' ').nth(1).unwrap_or_default();
        let Some((_, q)) = target.split_once('?') else {
            return Vec::new();
        };
        q.split('&')
            .filter_map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (percent_decode(k.as_bytes(), true).as_ref() == name.as_bytes())
                    .then(|| String::from_utf8_lossy(&percent_decode(v.as_bytes(), true)).into())
            })
            .collect()
    }

    /// Cookie values of `name` over every `Cookie` line.
    fn cookies(&self, name: &str) -> Vec<String> {
        self.fields("cookie")
            .iter()
            .flat_map(|line| {
                line.split(';')
                    .map(|c| c.trim().to_owned())
                    .collect::<Vec<_>>()
            })
            .filter_map(|c| {
                let (k, v) = c.split_once('=')?;
                (k.trim() == name).then(|| v.trim().to_owned())
            })
            .collect()
    }
}

/// Asserts the first and the last reading of `values` are both `expected`, and that there is
/// exactly one.
fn first_and_last_are(values: &[String], expected: &str, what: &str) {
    assert_eq!(
        values.first().map(String::as_str),
        Some(expected),
        "first {what}"
    );
    assert_eq!(
        values.last().map(String::as_str),
        Some(expected),
        "last {what}"
    );
    assert_eq!(values.len(), 1, "{what}: {values:?}");
}

/// What a refused request must look like: 400, the gateway's own answer, the backend
/// untouched.
fn assert_refused(status: u16, body: &str, b: &RawBackend, before: usize, what: &str) {
    assert_eq!(status, 400, "{what}: {body}");
    // `[routes.jwt]` answers in Otoroshi's error-key style, API keys in their own.
    assert!(
        body.contains("error.token.sent.more.than.once")
            || body.contains("Credential sent more than once"),
        "{what}: {body}"
    );
    assert_eq!(
        b.received.lock().unwrap().len(),
        before,
        "{what}: the backend was contacted"
    );
}

fn h1(addr: SocketAddr, host: &str, target: &str, lines: &[String]) -> Response {
    let mut raw = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n");
    for l in lines {
        raw.push_str(l);
        raw.push_str("\r\n");
    }
    raw.push_str("\r\n");
    request(addr, &raw)
}

/// The vectors of the review: (host, target, header lines).
fn vectors(v: &str, f: &str) -> Vec<(&'static str, String, Vec<String>)> {
    vec![
        ("jwtq.test", format!("/x?%74oken={f}&token={v}"), vec![]),
        ("jwtq.test", format!("/x?token={v}&token={f}"), vec![]),
        ("jwtq.test", format!("/x?token={v}&t%6Fken="), vec![]),
        (
            "jwtc.test",
            "/x".into(),
            vec![format!("Cookie: jwt={v}; jwt={f}")],
        ),
        (
            "jwtc.test",
            "/x".into(),
            vec![format!("Cookie: a=1; jwt={v}"), format!("Cookie: jwt={f}")],
        ),
        (
            "jwth.test",
            "/x".into(),
            vec![
                format!("Authorization: Bearer {v}"),
                format!("Authorization: Bearer {f}"),
            ],
        ),
        (
            "keys.test",
            "/x".into(),
            vec![
                "Otoroshi-Client-Id: alice".into(),
                format!("Otoroshi-Client-Secret: {KEY_SECRET}"),
                "Otoroshi-Client-Id: mallory".into(),
            ],
        ),
        (
            "keys.test",
            "/x?x-api-key=alice&x%2Dapi-key=bob".into(),
            vec![],
        ),
        (
            "keys.test",
            "/x".into(),
            vec![
                "Otoroshi-Client-Id: alice".into(),
                format!("Otoroshi-Client-Secret: {KEY_SECRET}"),
                "Cookie: access_token=a".into(),
                "Cookie: access_token=b".into(),
            ],
        ),
    ]
}

#[test]
fn duplicated_credentials_are_refused_before_the_backend_over_http1() {
    let b = backend();
    let gw = setup(b.addr, false);
    let addr = gw.addrs[0];
    let (v, f) = (valid_token(), forged_token());
    for (host, target, lines) in vectors(&v, &f) {
        let before = b.received.lock().unwrap().len();
        let r = h1(addr, host, &target, &lines);
        assert_refused(
            r.status,
            &r.text(),
            &b,
            before,
            &format!("{host} {target} {lines:?}"),
        );
    }
    // Each refusal is counted as `duplicate` on its route.
    use torii_engine::metrics::RejectReason as R;
    let snap = gw.shared.snapshot.load();
    let dup = R::ALL.iter().position(|x| *x == R::Duplicate).unwrap();
    let jwt: u64 = snap.routes[..3]
        .iter()
        .map(|r| r.metrics.totals().jwt[dup])
        .sum();
    let keys = snap.routes[3].metrics.totals().apikey[dup];
    assert_eq!((jwt, keys), (6, 3));
}

#[test]
fn one_copy_is_accepted_and_both_readings_see_it_over_http1() {
    let b = backend();
    let gw = setup(b.addr, false);
    let addr = gw.addrs[0];
    let v = valid_token();
    let before = b.received.lock().unwrap().len();
    let r = h1(addr, "jwtq.test", &format!("/x?a=1&token={v}"), &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    first_and_last_are(
        &Received::since(&b, before).query("token"),
        &v,
        "query token",
    );

    let before = b.received.lock().unwrap().len();
    let lines = [format!("Cookie: a=1; jwt={v}"), "Cookie: b=2".into()];
    let r = h1(addr, "jwtc.test", "/x", &lines);
    assert_eq!(r.status, 200, "{}", r.text());
    first_and_last_are(
        &Received::since(&b, before).cookies("jwt"),
        &v,
        "cookie jwt",
    );

    let before = b.received.lock().unwrap().len();
    let r = h1(
        addr,
        "jwth.test",
        "/x",
        &[format!("Authorization: Bearer {v}")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let got = Received::since(&b, before).fields("authorization");
    first_and_last_are(&got, &format!("Bearer {v}"), "authorization");
}

/// The review's low finding: valid `Otoroshi-Client-Id/-Secret` headers, then a second
/// `Cookie` line with another credential. The extractors see the second line: its
/// `x-api-key` wins (Otoroshi's order puts the client id first) and is refused; and an
/// `access_token` in a second line is wiped with the headers, the other cookies kept.
#[test]
fn a_second_cookie_line_is_extracted_and_wiped() {
    let b = backend();
    let gw = setup(b.addr, false);
    let addr = gw.addrs[0];
    let creds = [
        "Otoroshi-Client-Id: alice".to_owned(),
        format!("Otoroshi-Client-Secret: {KEY_SECRET}"),
    ];
    let before = b.received.lock().unwrap().len();
    let mut lines = creds.to_vec();
    lines.extend([
        "Cookie: a=1".into(),
        "Cookie: x-api-key=bob; access_token=forged".into(),
    ]);
    let r = h1(addr, "keys.test", "/x", &lines);
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(
        b.received.lock().unwrap().len(),
        before,
        "bob reached the backend"
    );

    let mut lines = creds.to_vec();
    lines.extend([
        "Cookie: a=1".into(),
        "Cookie: access_token=forged; b=2".into(),
    ]);
    let r = h1(addr, "keys.test", "/x", &lines);
    assert_eq!(r.status, 200, "{}", r.text());
    let got = Received::since(&b, before);
    assert!(got.cookies("access_token").is_empty(), "{}", got.0);
    assert_eq!(got.cookies("a"), ["1"]);
    assert_eq!(got.cookies("b"), ["2"]);
    assert!(got.fields("otoroshi-client-secret").is_empty(), "{}", got.0);
}

/// `curl --http2-prior-knowledge` with `lines` as `-H` arguments: (status, body).
fn h2(addr: SocketAddr, host: &str, target: &str, lines: &[String]) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "--max-time",
        "20",
        "--http2-prior-knowledge",
        "--path-as-is",
    ])
    .args(["-w", "\n@@%{http_version} %{http_code}", "-H"])
    .arg(format!("Host: {host}"));
    for l in lines {
        cmd.arg("-H").arg(l);
    }
    let out = cmd
        .arg(format!("http://{addr}{target}"))
        .output()
        .expect("curl is required (.ci/test installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (body, tail) = text.rsplit_once("\n@@").unwrap();
    let mut it = tail.split_whitespace();
    assert_eq!(it.next(), Some("2"), "not HTTP/2");
    (it.next().unwrap().parse().unwrap(), body.to_owned())
}

#[test]
fn duplicated_credentials_are_refused_before_the_backend_over_http2() {
    let b = backend();
    let gw = setup(b.addr, true);
    let addr = gw.addrs[0];
    let (v, f) = (valid_token(), forged_token());
    for (host, target, lines) in vectors(&v, &f) {
        let before = b.received.lock().unwrap().len();
        let (status, body) = h2(addr, host, &target, &lines);
        assert_refused(
            status,
            &body,
            &b,
            before,
            &format!("h2 {host} {target} {lines:?}"),
        );
    }
    // Over HTTP/2 cookies arrive as separate fields (RFC 9113 §8.2.3): one accepted cookie in
    // the second field is found, and the backend reads one value.
    let before = b.received.lock().unwrap().len();
    let lines = ["Cookie: a=1".to_owned(), format!("Cookie: jwt={v}")];
    let (status, body) = h2(addr, "jwtc.test", "/x", &lines);
    assert_eq!(status, 200, "{body}");
    let got = Received::since(&b, before);
    first_and_last_are(&got.cookies("jwt"), &v, "h2 cookie jwt");
    assert_eq!(got.cookies("a"), ["1"]);
}
