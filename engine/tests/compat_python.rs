//! Wire compatibility of the exchange protocol (`Otoroshi-State` / `Otoroshi-State-Resp`) and of
//! the info token (`Otoroshi-Claim`) against a backend that is not Torii's code:
//! `tests/compat/otoroshi_backend.py`, a Python (standard library + PyJWT) backend written from
//! Otoroshi's documentation and its demo backend `demos/challenge/server.js`.
//!
//! Each test starts that backend as a child process in one mode (well-behaved, or misbehaving on
//! purpose) and an in-process gateway whose route points at it. A well-behaved backend must be
//! reached (200, its body, tokens that PyJWT accepts); every misbehaviour must be answered 502
//! `{"Otoroshi-Error":"Downstream microservice does not seems to be secured. Cancelling request !"}`
//! with `Otoroshi-Error: true`, and Torii's per-route failure counter must show that it was
//! refused for the reason the mode exercises and no other. The client never sees
//! `Otoroshi-State-Resp`.
//!
//! Needs Python with PyJWT (`$TORII_PYTHON`, else `python3`; `.ci/test` installs PyJWT in a
//! virtual environment and sets `TORII_PYTHON`). Without it the tests fail, on purpose, rather
//! than skip.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::channel;
use std::time::Duration;

use common::python::{python, require_pyjwt};
use common::*;
use serde_json::Value;

/// Shared HMAC secret: 64 characters, so `insecure_allow_weak_keys = false` accepts it.
const SECRET: &str = "torii-compat-python-0123456789abcdef0123456789abcdef0123456789ab";
/// Route name: the `aud` of both tokens Torii sends.
const ROUTE_NAME: &str = "compat-service";
const HOST: &str = "compat.test";
const NOT_SECURED: &str =
    "Downstream microservice does not seems to be secured. Cancelling request !";

fn compat_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/compat")
}

/// The Python backend, killed on drop. Its stdin stays open while this value lives (the backend
/// exits when stdin closes, so it cannot outlive a crashed test run either).
struct PyBackend {
    child: Child,
    addr: SocketAddr,
}

impl Drop for PyBackend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn py_backend(mode: &str) -> PyBackend {
    require_pyjwt();
    let script = compat_dir().join("otoroshi_backend.py");
    let mut child = Command::new(python())
        .arg(&script)
        .args(["--port", "0", "--secret", SECRET, "--audience", ROUTE_NAME])
        .args(["--mode", mode])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", script.display()));
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_default();
    let port: u16 = match line.trim().strip_prefix("LISTENING ") {
        Some(p) => p.parse().unwrap(),
        None => {
            let _ = child.kill();
            let status = child.wait();
            panic!("python backend (mode {mode}) did not start: {line:?}, {status:?}");
        }
    };
    PyBackend {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    }
}

/// Gateway config: one route to `target`, the challenge in `challenge` ("v1"/"v2", or none) and
/// the info token in `info_token` ("latest"/"legacy", or none).
fn config(target: SocketAddr, challenge: Option<&str>, info_token: Option<&str>) -> String {
    let mut s = format!(
        "[gateway]\nworkers = 1\nhttp = [\"127.0.0.1:0\"]\ndrain_timeout = \"2s\"\n\
         insecure_allow_weak_keys = false\n\n\
         [[routes]]\nid = \"compat\"\nname = \"{ROUTE_NAME}\"\ndomains = [\"{HOST}\"]\n\
         targets = [\"http://{target}\"]\n"
    );
    if let Some(v) = challenge {
        s.push_str(&format!(
            "\n[routes.challenge]\nversion = \"{v}\"\nttl = \"30s\"\nsecret = \"{SECRET}\"\n"
        ));
    }
    if let Some(v) = info_token {
        s.push_str(&format!(
            "\n[routes.info_token]\nversion = \"{v}\"\nttl = \"30s\"\nsecret = \"{SECRET}\"\n"
        ));
    }
    s
}

/// Backend in `mode`, gateway on `config(...)`; runs `f(gateway address)`.
fn with_setup(
    mode: &str,
    challenge: Option<&str>,
    info_token: Option<&str>,
    f: impl FnOnce(SocketAddr),
) {
    let backend = py_backend(mode);
    let gw = gateway(&config(backend.addr, challenge, info_token));
    f(gw.addrs[0]);
    drop(gw);
    drop(backend);
}

fn assert_no_state_resp(r: &Response) {
    assert_eq!(
        r.header("otoroshi-state-resp"),
        None,
        "Otoroshi-State-Resp leaked to the client: {r:?}"
    );
}

/// The body of a request the backend accepted.
fn passed(r: &Response, version: &str) -> Value {
    assert_eq!(
        r.status,
        200,
        "expected the backend's 200, got: {}",
        r.text()
    );
    assert_no_state_resp(r);
    let b = r.json();
    assert_eq!(b["challengeVersion"], version, "{b}");
    assert!(b.get("error").is_none(), "{b}");
    b
}

/// The backend's view of a header Torii sent (the body's `header_lines`, names
/// case-insensitive). Fails the test when the header arrived more than once: a client's copy
/// beside Torii's must not survive.
fn seen_header<'a>(b: &'a Value, name: &str) -> Option<&'a str> {
    let values: Vec<&str> = b["header_lines"]
        .as_array()
        .unwrap_or_else(|| panic!("no header_lines: {b}"))
        .iter()
        .filter(|l| l[0].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
        .filter_map(|l| l[1].as_str())
        .collect();
    assert!(
        values.len() <= 1,
        "{name} reached the backend {} times: {b}",
        values.len()
    );
    values.first().copied()
}

fn int(v: &Value, k: &str) -> i64 {
    v[k].as_i64()
        .unwrap_or_else(|| panic!("claim {k} missing or not an integer: {v}"))
}

/// The failure reasons Torii counted on the route (label, count), non-zero only.
fn counted_failures(gw: &torii_engine::control::Gateway) -> Vec<(&'static str, u64)> {
    let snap = gw.shared.snapshot.load();
    assert!(snap.routes[0].challenge.is_some(), "route has no challenge");
    let m = &snap.routes[0].metrics;
    torii_engine::metrics::route::CHALLENGE_REASONS
        .iter()
        .map(|r| (r.reason(), m.challenge_failures(*r)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// A misbehaving backend must be refused with Torii's 502, for the reason the mode exercises
/// (`reason`: Torii's metric label), and only that one.
fn assert_refused(challenge: &str, mode: &str, reason: &str) {
    let backend = py_backend(mode);
    let gw = gateway(&config(backend.addr, Some(challenge), None));
    let r = get(gw.addrs[0], HOST, "/refused");
    assert_eq!(
        r.status,
        502,
        "{challenge} backend in mode {mode} was not refused: {} {}",
        r.status,
        r.text()
    );
    assert_eq!(r.header("otoroshi-error"), Some("true"), "{r:?}");
    assert!(r.header("otoroshi-error-msg").is_some(), "{r:?}");
    assert_eq!(
        r.json(),
        serde_json::json!({ "Otoroshi-Error": NOT_SECURED }),
        "{challenge}/{mode}"
    );
    assert_no_state_resp(&r);
    assert_eq!(
        counted_failures(&gw),
        vec![(reason, 1)],
        "{challenge}/{mode}: refused for another reason"
    );
}

#[test]
fn backend_selftest_passes() {
    require_pyjwt();
    let out = Command::new(python())
        .arg(compat_dir().join("selftest.py"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the Python backend's own checks failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn v1_ok_backend_is_reached() {
    with_setup("ok", Some("v1"), None, |gw| {
        // A client-supplied state must not reach the backend; Torii's own does.
        let mut s = connect(gw);
        let body = "hello";
        let req = format!(
            "POST /v1/path?q=1 HTTP/1.1\r\nHost: {HOST}\r\nAccept: application/json\r\n\
             Otoroshi-State: client-forged\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).unwrap();
        let r = read_response(&mut s, &mut Vec::new(), "POST").unwrap();
        let b = passed(&r, "V1");
        assert_eq!(b["method"], "POST");
        assert_eq!(b["path"], "/v1/path?q=1");
        let state = seen_header(&b, "Otoroshi-State").expect("no Otoroshi-State sent");
        assert_ne!(state, "client-forged");
        assert_eq!(state.chars().count(), 128, "V1 state: {state:?}");
        assert!(b.get("token").is_none(), "no info token configured: {b}");
    });
}

#[test]
fn v2_ok_backend_is_reached_and_state_token_is_otoroshi_shaped() {
    with_setup("ok", Some("v2"), None, |gw| {
        // Several requests on one client connection: each gets its own state.
        let mut s = connect(gw);
        let mut buf = Vec::new();
        let mut states = Vec::new();
        for i in 0..3 {
            let req =
                format!("GET /v2/{i} HTTP/1.1\r\nHost: {HOST}\r\nAccept: application/json\r\n\r\n");
            s.write_all(req.as_bytes()).unwrap();
            let r = read_response(&mut s, &mut buf, "GET").unwrap();
            let b = passed(&r, "V2");
            assert_eq!(b["path"], format!("/v2/{i}"));
            // Decoded by PyJWT with HS512, issuer Otoroshi, audience = route name, exp enforced.
            let st = &b["stateToken"];
            assert_eq!(st["iss"], "Otoroshi", "{st}");
            assert_eq!(st["sub"], "Otoroshi", "{st}");
            assert_eq!(st["aud"], ROUTE_NAME, "{st}");
            assert_eq!(int(st, "exp") - int(st, "iat"), 30, "{st}");
            assert!(st.get("nbf").is_some(), "no nbf: {st}");
            assert!(st["jti"].as_str().is_some_and(|j| !j.is_empty()), "{st}");
            let state = st["state"].as_str().unwrap().to_string();
            assert_eq!(state.chars().count(), 128, "{st}");
            states.push(state);
        }
        drop(s);
        states.sort();
        states.dedup();
        assert_eq!(states.len(), 3, "states repeated across requests");
    });
}

#[test]
fn v2_backend_without_answer_is_refused() {
    assert_refused("v2", "no-header", "missing_header");
}

#[test]
fn v2_backend_answering_another_state_is_refused() {
    assert_refused("v2", "wrong-state", "state_mismatch");
}

#[test]
fn v2_backend_answer_signed_with_another_key_is_refused() {
    assert_refused("v2", "bad-signature", "bad_signature");
}

#[test]
fn v2_backend_answer_signed_hs256_is_refused() {
    assert_refused("v2", "wrong-alg", "alg_mismatch");
}

#[test]
fn v2_backend_answer_living_too_long_is_refused() {
    assert_refused("v2", "ttl-too-long", "ttl_too_long");
}

#[test]
fn v2_backend_answer_expired_is_refused() {
    assert_refused("v2", "expired", "expired");
}

#[test]
fn v2_backend_answer_without_iat_is_refused() {
    assert_refused("v2", "missing-iat", "missing_exp_iat");
}

#[test]
fn v2_backend_answer_without_exp_is_refused() {
    assert_refused("v2", "missing-exp", "missing_exp_iat");
}

#[test]
fn v1_backend_without_answer_is_refused() {
    assert_refused("v1", "no-header", "missing_header");
}

#[test]
fn v1_backend_echoing_another_state_is_refused() {
    assert_refused("v1", "wrong-state", "state_mismatch");
}

/// Checks the envelope of an info token decoded by PyJWT (HS512, issuer, audience verified).
fn envelope(b: &Value) -> &Value {
    let t = &b["token"];
    assert!(
        t.is_object(),
        "no decoded Otoroshi-Claim in the backend's body: {b}"
    );
    assert_eq!(t["iss"], "Otoroshi", "{t}");
    assert_eq!(t["aud"], ROUTE_NAME, "{t}");
    assert_eq!(int(t, "exp") - int(t, "iat"), 30, "{t}");
    assert!(t.get("nbf").is_some(), "no nbf: {t}");
    assert!(t["jti"].as_str().is_some_and(|j| !j.is_empty()), "{t}");
    t
}

#[test]
fn info_token_latest_is_decoded_by_pyjwt() {
    with_setup("ok", Some("v2"), Some("latest"), |gw| {
        // A client-supplied claim must not reach the backend.
        let r = request(
            gw,
            &format!(
                "GET /claim HTTP/1.1\r\nHost: {HOST}\r\nAccept: application/json\r\n\
                 Otoroshi-Claim: client-forged\r\n\r\n"
            ),
        );
        let b = passed(&r, "V2");
        let t = envelope(&b);
        assert_eq!(t["access_type"], "public", "{t}");
        assert_eq!(t["sub"], "public", "{t}");
    });
}

#[test]
fn info_token_legacy_is_decoded_by_pyjwt() {
    with_setup("ok", Some("v2"), Some("legacy"), |gw| {
        let b = passed(&get(gw, HOST, "/claim"), "V2");
        let t = envelope(&b);
        assert_eq!(t["sub"], "--", "{t}");
        assert!(
            t.get("access_type").is_none(),
            "legacy has no access_type: {t}"
        );
    });
}

#[test]
fn info_token_without_challenge_is_decoded_by_pyjwt() {
    // The backend still echoes `none` as V1; with no challenge configured Torii ignores it.
    with_setup("ok", None, Some("latest"), |gw| {
        let r = get(gw, HOST, "/claim-only");
        assert_eq!(r.status, 200, "{}", r.text());
        let b = r.json();
        assert!(seen_header(&b, "Otoroshi-State").is_none(), "{b}");
        envelope(&b);
    });
}
