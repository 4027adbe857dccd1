//! The exchange protocol and the security headers at their edges, against scripted raw
//! backends that record what they receive (per upstream connection) and answer exactly the
//! bytes a case needs:
//! * the answer header (`Otoroshi-State-Resp`) never reaches a client: not on a route without a
//!   challenge, and not under its default name when the route configures another one (the
//!   configured name is removed too; Otoroshi removes only the default;
//!   docs/compatibility.md §7);
//! * a client cannot plant the route's custom state or info-token header (nor the default
//!   names) beside Torii's own;
//! * two answer lines from the backend: what Torii guarantees (below);
//! * a failed challenge whose backend body was not entirely read (chunked, or larger than what
//!   was buffered) closes that upstream connection instead of pooling it (the next request
//!   arrives on a new connection); a small body already buffered lets it be pooled.
//!
//! Interim (1xx), HEAD and 204 answers on a challenged route are in
//! `exchange_bodiless.rs`.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::net::SocketAddr;

use common::scripted::{scripted as backend, wait_until, Request};
use common::*;

const SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// The state Torii sent in `name` (exactly one line), to echo back (V1).
fn state(req: &Request, name: &str) -> String {
    match req.values(name).as_slice() {
        [one] => one.to_string(),
        other => panic!(
            "{name}: {} lines reached the backend: {other:?}",
            other.len()
        ),
    }
}

/// A gateway with one route `sec.test` to `target`, with `security` appended to the route.
fn gw(target: SocketAddr, security: &str) -> torii_engine::control::Gateway {
    gateway(&format!(
        "{}{}{security}",
        gateway_header(""),
        route("sec", "sec.test", "/", &[target])
    ))
}

/// A V1 challenge section with extra keys.
fn v1(extra: &str) -> String {
    format!("[routes.challenge]\nversion = \"v1\"\n{extra}\n")
}

fn assert_no_answer_header(r: &Response, names: &[&str]) {
    for name in names {
        assert!(
            r.header(name).is_none(),
            "{name} reached the client: {:?}",
            r.headers
        );
    }
}

#[test]
fn state_resp_from_a_backend_never_reaches_the_client_on_a_route_without_challenge() {
    let (b, _) = backend(|_| {
        b"HTTP/1.1 200 OK\r\nOtoroshi-State-Resp: from-backend\r\nX-Other: kept\r\n\
          OTOROSHI-STATE-RESP: again\r\nContent-Length: 2\r\n\r\nok"
            .to_vec()
    });
    let g = gw(b.addr, "");
    let r = get(g.addrs[0], "sec.test", "/");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "ok");
    assert_eq!(r.header("x-other"), Some("kept"));
    assert_no_answer_header(&r, &["otoroshi-state-resp"]);
}

#[test]
fn the_default_answer_name_is_removed_when_the_route_configures_another() {
    // The backend answers correctly under the configured name and also sends the default one.
    let (b, _) = backend(|req| {
        let st = state(req, "otoroshi-state");
        format!(
            "HTTP/1.1 200 OK\r\nX-State-Resp: {st}\r\nOtoroshi-State-Resp: {st}\r\n\
             Content-Length: 2\r\n\r\nok"
        )
        .into_bytes()
    });
    let g = gw(b.addr, &v1("response_header = \"X-State-Resp\""));
    let r = get(g.addrs[0], "sec.test", "/");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "ok");
    assert_no_answer_header(&r, &["x-state-resp", "otoroshi-state-resp"]);
}

#[test]
fn custom_state_and_info_token_headers_cannot_be_planted_by_a_client() {
    let (b, log) = backend(|req| {
        let st = state(req, "x-state");
        format!("HTTP/1.1 200 OK\r\nX-State-Resp: {st}\r\nContent-Length: 2\r\n\r\nok").into_bytes()
    });
    let security = format!(
        "{}[routes.info_token]\nheader = \"X-Claim\"\nsecret = \"{SECRET}\"\n",
        v1("request_header = \"X-State\"\nresponse_header = \"X-State-Resp\"")
    );
    let g = gw(b.addr, &security);
    let r = request(
        g.addrs[0],
        "GET / HTTP/1.1\r\nHost: sec.test\r\nX-State: forged-state\r\nX-Claim: forged.claim.x\r\n\
         x-claim: forged-again\r\nx-STATE: forged-twice\r\nOtoroshi-State: forged\r\n\
         Otoroshi-Claim: forged\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let log = log.lock().unwrap();
    let [req] = log.requests.as_slice() else {
        panic!("{} requests", log.requests.len())
    };
    let st = state(req, "x-state");
    assert_eq!(
        st.chars().count(),
        128,
        "Torii's V1 state, not the client's: {st}"
    );
    let claims = req.values("x-claim");
    assert_eq!(claims.len(), 1, "one X-Claim, Torii's: {claims:?}");
    // Torii's info token, verified independently (HS512, issuer Otoroshi, audience the route).
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS512);
    v.set_issuer(&["Otoroshi"]);
    v.set_audience(&["sec"]);
    jsonwebtoken::decode::<serde_json::Value>(
        claims[0],
        &jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes()),
        &v,
    )
    .unwrap_or_else(|e| panic!("X-Claim is not Torii's token ({e}): {}", claims[0]));
    for name in ["otoroshi-state", "otoroshi-claim"] {
        assert!(req.values(name).is_empty(), "{name} forwarded: {req:?}");
    }
    assert!(
        !req.lines.iter().any(|(_, v)| v.contains("forged")),
        "a forged line survived: {req:?}"
    );
}

/// Two answer lines from the backend. Guaranteed (engine/src/proxy/response.rs): the verdict
/// is that of the *first* line of the configured name (case-insensitive), so a second line
/// can never turn a failing answer into a passing one; and no line of the configured or the
/// default name reaches the client, whatever the verdict. (Only the backend writes these
/// lines, and it alone knows the state: a valid first line is its own answer.)
#[test]
fn duplicate_answer_lines_the_first_decides_and_none_reaches_the_client() {
    // (first line, second line, expected status); "$" is replaced by the state sent.
    let cases = [
        ("Otoroshi-State-Resp: $", "Otoroshi-State-Resp: junk", 200),
        ("Otoroshi-State-Resp: junk", "Otoroshi-State-Resp: $", 502),
        ("otoroshi-state-resp: junk", "OTOROSHI-STATE-RESP: $", 502),
        ("Otoroshi-State-Resp: $", "otoroshi-state-resp: $", 200),
    ];
    for (first, second, status) in cases {
        let (b, _) = backend(move |req| {
            let st = state(req, "otoroshi-state");
            format!(
                "HTTP/1.1 200 OK\r\n{}\r\n{}\r\nContent-Length: 2\r\n\r\nok",
                first.replace('$', &st),
                second.replace('$', &st)
            )
            .into_bytes()
        });
        let g = gw(b.addr, &v1(""));
        let r = get(g.addrs[0], "sec.test", "/");
        assert_eq!(r.status, status, "{first} / {second}: {}", r.text());
        assert_no_answer_header(&r, &["otoroshi-state-resp"]);
    }
}

/// A failed challenge (no answer header) on `/fail` with the response body `body` (raw bytes
/// after the status line: headers and body), then a valid request on `/ok`: the `/ok` request
/// must arrive on a new upstream connection (and the first must be closed by Torii) when
/// `pooled` is false, on the same one when it is true.
fn failed_challenge_then_ok(what: &str, failing_response: &'static [u8], pooled: bool) {
    let (b, log) = backend(move |req| {
        if req.path == "/fail" {
            return failing_response.to_vec();
        }
        let st = state(req, "otoroshi-state");
        format!("HTTP/1.1 200 OK\r\nOtoroshi-State-Resp: {st}\r\nContent-Length: 2\r\n\r\nok")
            .into_bytes()
    });
    let g = gw(b.addr, &v1(""));
    let r = get(g.addrs[0], "sec.test", "/fail");
    assert_eq!(r.status, 502, "{what}: {}", r.text());
    assert!(
        !r.text().contains("backend-body"),
        "{what}: backend body leaked"
    );
    let r = get(g.addrs[0], "sec.test", "/ok");
    assert_eq!(r.status, 200, "{what}: {}", r.text());
    let log = wait_until(&log, |l| {
        l.requests.len() == 2 && (pooled || l.closed.contains(&0))
    });
    let conns: Vec<(usize, &str)> = log
        .requests
        .iter()
        .map(|r| (r.conn, r.path.as_str()))
        .collect();
    if pooled {
        assert_eq!(
            conns,
            [(0, "/fail"), (0, "/ok")],
            "{what}: pooled and reused"
        );
        assert!(log.closed.is_empty(), "{what}: closed {:?}", log.closed);
    } else {
        assert_eq!(
            conns,
            [(0, "/fail"), (1, "/ok")],
            "{what}: the next request must come on a new connection"
        );
        assert!(
            log.closed.contains(&0),
            "{what}: the upstream connection was not closed"
        );
    }
}

#[test]
fn a_failed_challenge_closes_an_upstream_connection_whose_body_was_not_read() {
    // Control: a small body, entirely buffered with the head: the connection stays clean.
    failed_challenge_then_ok(
        "small Content-Length body",
        b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nbackend-body",
        true,
    );
    failed_challenge_then_ok(
        "chunked body",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nc\r\nbackend-body\r\n0\r\n\r\n",
        false,
    );
    const LARGE: usize = 1 << 20;
    static LARGE_RESPONSE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let large = LARGE_RESPONSE.get_or_init(|| {
        let mut v = format!("HTTP/1.1 200 OK\r\nContent-Length: {LARGE}\r\n\r\n").into_bytes();
        v.extend(std::iter::repeat_n(b'z', LARGE));
        v
    });
    failed_challenge_then_ok("1 MiB body, not buffered", large, false);
}

#[test]
fn a_failed_challenge_on_a_pipelined_connection_keeps_the_client_in_step() {
    // The client connection survives a 502 and the next request is answered in order.
    let (b, _) = backend(|req| {
        if req.path == "/fail" {
            return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
                .to_vec();
        }
        let st = state(req, "otoroshi-state");
        format!("HTTP/1.1 200 OK\r\nOtoroshi-State-Resp: {st}\r\nContent-Length: 2\r\n\r\nok")
            .into_bytes()
    });
    let g = gw(b.addr, &v1(""));
    let mut s = connect(g.addrs[0]);
    s.write_all(
        b"GET /fail HTTP/1.1\r\nHost: sec.test\r\n\r\nGET /ok HTTP/1.1\r\nHost: sec.test\r\n\r\n",
    )
    .unwrap();
    let mut buf = Vec::new();
    let r = read_response(&mut s, &mut buf, "GET").unwrap();
    assert_eq!(r.status, 502, "{}", r.text());
    let r = read_response(&mut s, &mut buf, "GET").unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
}
