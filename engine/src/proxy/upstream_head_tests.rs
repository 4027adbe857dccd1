//! Table tests of the upstream head rewrite: what the backend receives for a client head.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use super::*;
use crate::config::MapEnv;
use crate::http1::{canonicalize_path, parse_request_head, HeadLimits};
use crate::snapshot::Snapshot;

const SECRET: &str = "0123456789abcdef0123456789abcdef-secret";

fn snapshot() -> Snapshot {
    let text = format!(
        r#"
[gateway]
http = ["127.0.0.1:8080"]

[[routes]]
id = "plain"
domains = ["plain.test"]
targets = ["http://127.0.0.1:9001"]

[[routes]]
id = "raw"
domains = ["raw.test"]
path_normalization = "forward_raw"
targets = ["http://127.0.0.1:9002"]

[[routes]]
id = "secured"
domains = ["secured.test"]
targets = ["http://backend.internal:9003"]
[routes.challenge]
version = "v1"
request_header = "X-State"
response_header = "X-State-Resp"
[routes.info_token]
header = "X-Claim"
secret = "{SECRET}"

[[routes]]
id = "keyed"
domains = ["keyed.test"]
targets = ["http://127.0.0.1:9004"]
[routes.apikeys]

[[apikeys]]
client_id = "key-id"
client_secret = "key-secret"
allow_client_id_only = true
routes = ["keyed"]
"#
    );
    let config = crate::config::load_str_with_env(
        &text,
        Path::new("."),
        &MapEnv::default().with_host("backend.internal", [127, 0, 0, 3].into()),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    Snapshot::build(config, 1).unwrap_or_else(|e| panic!("{e}"))
}

/// Renders the head the backend of route `route` receives for `raw` (a client head).
fn forwarded(snap: &Snapshot, route: usize, raw: &str, allow_underscores: bool) -> String {
    render(snap, route, raw, allow_underscores, false)
}

/// [`forwarded`], with a WebSocket upgrade admitted or not (phase 4b's decision).
fn render(
    snap: &Snapshot,
    route: usize,
    raw: &str,
    allow_underscores: bool,
    websocket: bool,
) -> String {
    render_admitted(snap, route, raw, allow_underscores, websocket, |_, _, _| {
        Admitted::default()
    })
}

/// [`render`], with the request admitted by `admit` (given the client's buffer, its headers
/// and its parsed head), as phase 3 admits an API key.
fn render_admitted<'s>(
    snap: &'s Snapshot,
    route: usize,
    raw: &str,
    allow_underscores: bool,
    websocket: bool,
    admit: impl FnOnce(&[u8], &[HeaderField], &RequestHead) -> Admitted<'s>,
) -> String {
    let buf = raw.as_bytes();
    let mut headers = Vec::new();
    let head = parse_request_head(buf, &HeadLimits::default(), &mut headers)
        .unwrap()
        .unwrap();
    let mut canonical = Vec::new();
    let rewritten = canonicalize_path(head.path.get(buf), true, &mut canonical).unwrap();
    let route = &snap.routes[route];
    let security = SecurityDraw {
        state: [b'S'; torii_protocol::challenge::STATE_LEN],
        info_jti: *b"11111111-1111-4111-8111-111111111111",
        challenge_sent: route.challenge.is_some(),
        ..SecurityDraw::default()
    };
    let admitted = admit(buf, &headers, &head);
    let input = UpstreamHead {
        data: buf,
        head: &head,
        headers: &headers,
        canonical_path: rewritten.then_some(&canonical[..]),
        rule_path: None,
        vars: crate::rules::Vars::default(),
        allow_underscores,
        route,
        target: &route.targets[0],
        admitted: &admitted,
        keyed: None,
        jwt_extra: None,
        security: &security,
        now: 1_700_000_000,
        request_id: b"00000000-0000-4000-8000-000000000000",
        xff_line: b"x-forwarded-for: 10.0.0.7\r\n",
        proto: b"https",
        websocket,
        body: None,
    };
    let mut out = Vec::new();
    input.render(&mut out, &mut Vec::new()).unwrap();
    String::from_utf8(out).unwrap()
}

/// The header names of a rendered head, lower-cased, in order.
fn names(head: &str) -> Vec<String> {
    head.split("\r\n")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| l.split(':').next().unwrap().to_ascii_lowercase())
        .collect()
}

fn value<'a>(head: &'a str, name: &str) -> Vec<&'a str> {
    head.split("\r\n")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .collect()
}

#[test]
fn every_hop_by_hop_name_is_dropped_in_any_case() {
    let snap = snapshot();
    for name in [
        "Connection",
        "KEEP-ALIVE",
        "proxy-connection",
        "Te",
        "TRAILER",
        "Upgrade",
        "Proxy-Authorization",
        "proxy-AUTHENTICATE",
    ] {
        let value = if name.eq_ignore_ascii_case("connection") {
            "keep-alive"
        } else {
            "x"
        };
        let out = forwarded(
            &snap,
            0,
            &format!("GET / HTTP/1.1\r\nHost: plain.test\r\n{name}: {value}\r\nX-Kept: 1\r\n\r\n"),
            false,
        );
        let n = names(&out);
        assert!(!n.contains(&name.to_ascii_lowercase()), "{name}: {out}");
        assert!(n.contains(&"x-kept".to_owned()), "{out}");
    }
    let out = forwarded(
        &snap,
        0,
        "POST / HTTP/1.1\r\nHost: plain.test\r\nTransfer-Encoding: chunked\r\n\r\n",
        false,
    );
    // The client's framing line is replaced by Torii's own, exactly once.
    assert_eq!(value(&out, "transfer-encoding"), ["chunked"], "{out}");
    assert!(out.contains("\r\ntransfer-encoding: chunked\r\n"), "{out}");
}

#[test]
fn every_spoofable_name_is_dropped_in_any_letter_case() {
    let snap = snapshot();
    for name in [
        "oToRoShI-sTaTe",
        "OTOROSHI-CLAIM",
        "otoroshi-request-id",
        "Otoroshi-Client-Id",
        "Otoroshi-Client-Secret",
        "Otoroshi-Authorization",
        "Otoroshi-Try-It-Request-Id",
        "X-Forwarded-Protocol",
        "Raw-Request-Uri",
        "Remote-Address",
        "Timeout-Access",
        "Tls-Session-Info",
        "x-FORWARDED-for",
        "X-Forwarded-Proto",
        "X-Forwarded-Host",
        "Forwarded",
        "X-Real-IP",
        "True-Client-IP",
        "X-Client-IP",
        "X-Forwarded-Port",
        "X-Forwarded-Ssl",
        "X-Forwarded-Scheme",
        "X-Forwarded-Prefix",
        "X-Original-URL",
        "X-Rewrite-URL",
        "Otoroshi_Claim",
        "X_Forwarded_For",
    ] {
        let out = forwarded(
            &snap,
            0,
            &format!("GET / HTTP/1.1\r\nHost: plain.test\r\n{name}: forged\r\n\r\n"),
            true,
        );
        assert!(
            !out.contains("forged"),
            "{name} reached the backend:\n{out}"
        );
    }
}

#[test]
fn torii_writes_its_own_forwarding_lines_once() {
    let snap = snapshot();
    let out = forwarded(
        &snap,
        0,
        "GET /a?q=1 HTTP/1.1\r\nHost: Plain.Test:8080\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 7.7.7.7\r\n\r\n",
        false,
    );
    assert!(out.starts_with("GET /a?q=1 HTTP/1.1\r\n"), "{out}");
    assert_eq!(value(&out, "x-forwarded-for"), ["10.0.0.7"]);
    assert_eq!(value(&out, "x-forwarded-proto"), ["https"]);
    assert_eq!(value(&out, "x-forwarded-host"), ["Plain.Test:8080"]);
    assert_eq!(value(&out, "host"), ["127.0.0.1:9001"], "the target's Host");
    assert_eq!(
        value(&out, "otoroshi-request-id"),
        ["00000000-0000-4000-8000-000000000000"]
    );
    assert!(out.ends_with("\r\n\r\n"), "{out}");
}

#[test]
fn connection_tokens_drop_the_headers_they_name_but_never_framing_or_host() {
    let snap = snapshot();
    let out = forwarded(
        &snap,
        0,
        "GET / HTTP/1.1\r\nHost: plain.test\r\nConnection: X-Secret, x-other, host, content-length\r\nX-Secret: s\r\nX-OTHER: o\r\nContent-Length: 0\r\nX-Kept: k\r\n\r\n",
        false,
    );
    let n = names(&out);
    assert!(
        !n.contains(&"x-secret".to_owned()) && !n.contains(&"x-other".to_owned()),
        "{out}"
    );
    assert_eq!(value(&out, "content-length"), ["0"], "{out}");
    assert_eq!(value(&out, "x-kept"), ["k"]);
}

#[test]
fn duplicates_are_copied_verbatim_and_in_order() {
    let snap = snapshot();
    let out = forwarded(
        &snap,
        0,
        "GET / HTTP/1.1\r\nHost: plain.test\r\nX-Dup: one\r\nx-dup:  two \r\nCookie: a=1\r\nCookie: b=2\r\n\r\n",
        false,
    );
    assert!(
        out.contains("X-Dup: one\r\nx-dup:  two \r\nCookie: a=1\r\nCookie: b=2\r\n"),
        "{out}"
    );
}

#[test]
fn obs_fold_never_reaches_the_rewrite() {
    let mut headers = Vec::new();
    let folded = b"GET / HTTP/1.1\r\nHost: plain.test\r\nX-A: 1\r\n  folded\r\n\r\n";
    assert!(parse_request_head(folded, &HeadLimits::default(), &mut headers).is_err());
}

#[test]
fn the_path_sent_is_the_canonical_one_unless_the_route_forwards_raw() {
    let snap = snapshot();
    let out = forwarded(
        &snap,
        0,
        "GET /x/../%7Ea//b?q=/../ HTTP/1.1\r\nHost: plain.test\r\n\r\n",
        false,
    );
    assert!(out.starts_with("GET /~a/b?q=/../ HTTP/1.1\r\n"), "{out}");
    let out = forwarded(
        &snap,
        1,
        "GET /x/../%7Ea//b?q=/../ HTTP/1.1\r\nHost: raw.test\r\n\r\n",
        false,
    );
    assert!(
        out.starts_with("GET /x/../%7Ea//b?q=/../ HTTP/1.1\r\n"),
        "{out}"
    );
    // Absolute-form targets go out in origin-form.
    let out = forwarded(
        &snap,
        0,
        "GET http://plain.test/p HTTP/1.1\r\nHost: plain.test\r\n\r\n",
        false,
    );
    assert!(out.starts_with("GET /p HTTP/1.1\r\n"), "{out}");
}

#[test]
fn a_secured_route_sends_its_own_tokens_under_its_own_names_only() {
    let snap = snapshot();
    let out = forwarded(
        &snap,
        2,
        "GET / HTTP/1.1\r\nHost: secured.test\r\nx-state: forged\r\nX_State: forged\r\nX-CLAIM: forged\r\nOtoroshi-State: forged\r\n\r\n",
        true,
    );
    assert!(!out.contains("forged"), "{out}");
    assert_eq!(value(&out, "x-state"), ["S".repeat(128).as_str()], "{out}");
    let claims = value(&out, "x-claim");
    assert_eq!(claims.len(), 1, "{out}");
    assert!(claims[0].starts_with("eyJ"), "{out}");
    assert_eq!(value(&out, "host"), ["backend.internal:9003"]);
}

#[test]
fn underscore_names_follow_the_listener() {
    let snap = snapshot();
    let raw = "GET / HTTP/1.1\r\nHost: plain.test\r\nX_Custom: u\r\n\r\n";
    assert!(!forwarded(&snap, 0, raw, false).contains("X_Custom"));
    assert!(forwarded(&snap, 0, raw, true).contains("X_Custom: u\r\n"));
}

#[test]
fn a_buffered_body_follows_the_head() {
    let snap = snapshot();
    let raw = b"POST / HTTP/1.1\r\nHost: plain.test\r\nContent-Length: 5\r\n\r\nhello";
    let mut headers = Vec::new();
    let head = parse_request_head(raw, &HeadLimits::default(), &mut headers)
        .unwrap()
        .unwrap();
    let route = &snap.routes[0];
    let admitted = Admitted::default();
    let security = SecurityDraw::default();
    let input = UpstreamHead {
        data: raw,
        head: &head,
        headers: &headers,
        canonical_path: None,
        rule_path: None,
        vars: crate::rules::Vars::default(),
        allow_underscores: false,
        route,
        target: &route.targets[0],
        admitted: &admitted,
        keyed: None,
        jwt_extra: None,
        security: &security,
        now: 0,
        request_id: b"id",
        xff_line: b"x-forwarded-for: 1.2.3.4\r\n",
        proto: b"http",
        websocket: false,
        body: raw.get(head.head_len..),
    };
    let mut out = Vec::new();
    let copied = input.render(&mut out, &mut Vec::new()).unwrap();
    assert_eq!(copied.underscore_dropped, 0);
    let text = String::from_utf8(out).unwrap();
    assert!(text.ends_with("\r\n\r\nhello"), "{text}");
    assert!(text.contains("Content-Length: 5\r\n"), "{text}");
}

#[test]
fn an_admitted_websocket_upgrade_carries_only_the_websocket_token() {
    let snap = snapshot();
    let raw = "GET /chat HTTP/1.1\r\nHost: plain.test\r\nUpgrade: h2c, websocket\r\n\
Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, superchat\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
Origin: https://app.test\r\n\r\n";
    // (admitted, what the backend gets for Upgrade and Connection)
    let cases: [(bool, &[&str], &[&str]); 2] = [
        (true, &["websocket"], &["upgrade"]),
        // Not admitted (a route with `websocket = false`): hop-by-hop, dropped.
        (false, &[], &[]),
    ];
    for (admitted, upgrade, connection) in cases {
        let out = render(&snap, 0, raw, false, admitted);
        assert_eq!(value(&out, "upgrade"), upgrade, "{out}");
        assert_eq!(value(&out, "connection"), connection, "{out}");
        assert!(!out.contains("h2c"), "{out}");
        // End-to-end handshake headers reach the backend byte for byte either way.
        for line in [
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
            "Sec-WebSocket-Version: 13\r\n",
            "Sec-WebSocket-Protocol: chat, superchat\r\n",
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n",
            "Origin: https://app.test\r\n",
        ] {
            assert!(out.contains(line), "{line}: {out}");
        }
        assert!(out.ends_with("\r\n\r\n"), "{out}");
    }
}

#[test]
fn h2c_upgrades_never_reach_the_backend() {
    let snap = snapshot();
    for admitted in [false, true] {
        let out = render(
            &snap,
            0,
            "GET / HTTP/1.1\r\nHost: plain.test\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
            false,
            admitted,
        );
        assert!(!out.contains("h2c"), "{out}");
        assert!(
            !out.to_ascii_lowercase().contains("http2-settings"),
            "{out}"
        );
    }
}

/// The request line and the headers the backend receives carry no credential of the key that
/// was admitted (`wipe_credentials`, on by default), through the real rewrite.
#[test]
fn an_admitted_keys_credentials_never_reach_the_backend() {
    use crate::auth::check::{check, HeadView};
    let snap = snapshot();
    let keyed = snap.routes.iter().position(|r| r.id == "keyed").unwrap();
    let route = &snap.routes[keyed];
    let apikeys = route.apikeys.as_ref().unwrap();
    for (raw, kept) in [
        (
            "GET /a?x=1&x-api-key=key-id&y=2 HTTP/1.1\r\nHost: keyed.test\r\n\r\n",
            "GET /a?x=1&y=2 HTTP/1.1\r\n",
        ),
        (
            "GET /a HTTP/1.1\r\nHost: keyed.test\r\nOtoroshi-Client-Id: key-id\r\nOtoroshi-Client-Secret: key-secret\r\n\r\n",
            "GET /a HTTP/1.1\r\n",
        ),
    ] {
        let out = render_admitted(&snap, keyed, raw, false, false, |buf, headers, head| {
            let view = HeadView::new(buf, headers, head);
            match check(&snap.auth, apikeys, &route.id, &view, 0, None) {
                Ok(admitted) => admitted,
                Err(e) => panic!("{raw}: refused: {e:?}"),
            }
        });
        assert!(out.starts_with(kept), "{out}");
        assert!(!out.contains("key-id"), "{out}");
        assert!(!out.contains("key-secret"), "{out}");
    }
}
