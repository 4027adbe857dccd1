//! `[routes.jwt]` end to end through an in-process gateway and mirror: tokens minted by
//! independent libraries (the `jsonwebtoken` crate, RS256 with a PEM key and a JWKS; PyJWT,
//! HS256, and RS256 where its `cryptography` extra is installed) are accepted from a header, a query parameter or a cookie; refused tokens get 401
//! with an `Otoroshi-Error` reason and never reach the backend; `pass`, `strip` and
//! `exchange` forward what they say.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::python::{pyjwt_crypto_or_skip, python_stdout, require_pyjwt};
use common::seen::seen;
use common::*;
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::{json, Value};

const HS_SECRET: &str = "torii-jwt-test-secret-0123456789abcdef0123456789";
const CLAIM_SECRET: &str = "torii-claim-test-secret-0123456789abcdef012345";

fn keys_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../protocol/tests/keys")
}

fn now() -> u64 {
    torii_engine::secure::unix_now()
}

fn claims() -> Value {
    json!({"iss": "https://sts.test", "aud": "inventory", "sub": "order-processing",
           "scope": "inventory:read", "iat": now(), "exp": now() + 300})
}

fn rs256(claims: &Value, kid: Option<&str>) -> String {
    let pem = std::fs::read(keys_dir().join("rsa2048.pem")).unwrap();
    let mut h = Header::new(jsonwebtoken::Algorithm::RS256);
    h.kid = kid.map(str::to_owned);
    encode(&h, claims, &EncodingKey::from_rsa_pem(&pem).unwrap()).unwrap()
}

/// A gateway with route `inv.test` to a mirror, with the given `[routes.jwt]` body.
fn setup(jwt: &str, info_token: bool) -> SocketAddr {
    let gw = setup_gateway(jwt, info_token);
    let addr = gw.addrs[0];
    std::mem::forget(gw);
    addr
}

/// A gateway whose route `inv` checks JWTs as `jwt` says.
fn setup_gateway(jwt: &str, info_token: bool) -> torii_engine::control::Gateway {
    let m = mirror();
    let mut cfg = format!(
        "{}{}",
        gateway_header(""),
        route("inv", "inv.test", "/", &[m])
    );
    if info_token {
        cfg.push_str(&format!(
            "[routes.info_token]\nalgorithm = \"HS256\"\nsecret = \"{CLAIM_SECRET}\"\n"
        ));
    }
    cfg.push_str("[routes.jwt]\nissuer = \"https://sts.test\"\naudience = \"inventory\"\n");
    cfg.push_str(jwt);
    gateway(&cfg)
}

fn pem_route(extra: &str) -> String {
    format!(
        "algorithms = [\"RS256\"]\npublic_key = \"{}\"\n{extra}",
        keys_dir().join("rsa2048.pub.pem").display()
    )
}

fn call(addr: SocketAddr, path: &str, extra_headers: &str) -> Response {
    request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: inv.test\r\n{extra_headers}\r\n"),
    )
}

fn bearer(addr: SocketAddr, token: &str) -> Response {
    call(addr, "/", &format!("Authorization: Bearer {token}\r\n"))
}

fn assert_refused(r: &Response, reason: &str) {
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.header("otoroshi-error"), Some("true"));
    assert!(
        r.text().contains(reason),
        "{} should contain {reason}",
        r.text()
    );
    // Torii answered itself: no mirror JSON.
    assert!(!r.text().contains("\"method\""));
}

#[test]
fn rs256_from_jsonwebtoken_is_accepted_and_passed() {
    let addr = setup(&pem_route(""), false);
    let t = rs256(&claims(), None);
    let r = bearer(addr, &t);
    assert_eq!(
        seen(&r).one("authorization"),
        Some(format!("Bearer {t}").as_str())
    );
}

#[test]
fn missing_token_is_refused() {
    let addr = setup(&pem_route(""), false);
    assert_refused(&call(addr, "/", ""), "error.expected.token.not.found");
    assert_refused(
        &call(addr, "/", "Authorization: Basic dXNlcjpwYXNz\r\n"),
        "error.expected.token.not.found",
    );
}

#[test]
fn attack_tokens_are_refused_with_their_reason() {
    let gw = setup_gateway(&pem_route(""), false);
    let addr = gw.addrs[0];
    let mut expired = claims();
    expired["exp"] = json!(now() - 60);
    assert_refused(&bearer(addr, &rs256(&expired, None)), "expired");
    let mut future = claims();
    future["nbf"] = json!(now() + 600);
    assert_refused(&bearer(addr, &rs256(&future, None)), "not yet valid");
    let mut iss = claims();
    iss["iss"] = json!("https://evil.test");
    assert_refused(&bearer(addr, &rs256(&iss, None)), "wrong issuer");
    let mut aud = claims();
    aud["aud"] = json!("billing");
    assert_refused(&bearer(addr, &rs256(&aud, None)), "wrong audience");
    let mut string_exp = claims();
    string_exp["exp"] = json!("99999999999");
    assert_refused(
        &bearer(addr, &rs256(&string_exp, None)),
        "invalid time claim",
    );
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(claims().to_string())
    );
    assert_refused(&bearer(addr, &none), "algorithm not allowed");
    let public = std::fs::read(keys_dir().join("rsa2048.pub.pem")).unwrap();
    let confused = encode(
        &Header::new(jsonwebtoken::Algorithm::HS256),
        &claims(),
        &EncodingKey::from_secret(&public),
    )
    .unwrap();
    assert_refused(&bearer(addr, &confused), "algorithm not allowed");
    let mut big = claims();
    big["pad"] = json!("x".repeat(9000));
    assert_refused(&bearer(addr, &rs256(&big, None)), "too long");
    let mut tampered = rs256(&claims(), None);
    tampered.insert(tampered.len() / 2 + 3, 'A');
    let r = bearer(addr, &tampered);
    assert_eq!(r.status, 401, "{}", r.text());
    // Each refusal is counted by reason (recorded before the answer is written).
    use torii_engine::metrics::RejectReason as R;
    let t = gw.shared.snapshot.load().routes[0].metrics.totals();
    let count = |r: R| t.jwt[R::ALL.iter().position(|x| *x == r).unwrap()];
    assert_eq!(count(R::Expired), 1);
    assert_eq!(count(R::NotYetValid), 1);
    assert_eq!(count(R::BadIssuer), 1);
    assert_eq!(count(R::BadAudience), 1);
    assert_eq!(
        count(R::BadAlgorithm),
        2,
        "alg none and HS256 with the public key"
    );
    assert_eq!(t.jwt.iter().sum::<u64>(), 9);
}

#[test]
fn strip_removes_the_token_header() {
    let addr = setup(&pem_route("forward = \"strip\"\n"), false);
    let r = bearer(addr, &rs256(&claims(), None));
    assert!(!seen(&r).has("authorization"));
}

#[test]
fn exchange_replaces_the_token_by_the_info_token() {
    let addr = setup(&pem_route("forward = \"exchange\"\n"), true);
    let r = bearer(addr, &rs256(&claims(), None));
    let h = seen(&r);
    assert!(!h.has("authorization"));
    let claim = h.one("otoroshi-claim").unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.set_audience(&["inv"]);
    v.set_issuer(&["https://sts.test"]);
    let data = jsonwebtoken::decode::<Value>(
        claim,
        &jsonwebtoken::DecodingKey::from_secret(CLAIM_SECRET.as_bytes()),
        &v,
    )
    .unwrap();
    assert_eq!(data.claims["sub"], "order-processing");
    assert_eq!(data.claims["scope"], "inventory:read");
    assert_eq!(data.claims["iss"], "https://sts.test");
}

#[test]
fn exchange_without_info_token_is_a_config_error() {
    let cfg = format!(
        "{}{}[routes.jwt]\nalgorithms = [\"HS256\"]\nsecret = \"{HS_SECRET}\"\nforward = \"exchange\"\n",
        gateway_header(""),
        route("inv", "inv.test", "/", &[dead_addr()])
    );
    let err = torii_engine::config::load_str(&cfg, std::path::Path::new("."))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("routes[0].jwt.forward: exchange needs [routes.info_token]"),
        "{err}"
    );
}

#[test]
fn query_and_cookie_sources() {
    let q = setup(&pem_route("source = { query = \"token\" }\n"), false);
    let t = rs256(&claims(), None);
    assert_eq!(call(q, &format!("/x?a=1&token={t}"), "").status, 200);
    assert_refused(
        &call(q, "/x?a=1", &format!("Authorization: Bearer {t}\r\n")),
        "not.found",
    );
    let c = setup(&pem_route("source = { cookie = \"jwt\" }\n"), false);
    assert_eq!(
        call(c, "/", &format!("Cookie: a=b; jwt={t}; c=d\r\n")).status,
        200
    );
    assert_refused(&call(c, "/", "Cookie: a=b\r\n"), "not.found");
}

#[test]
fn jwks_file_selects_the_key_by_kid() {
    let dir = common::process::TempDir::new("jwks");
    let pem = std::fs::read_to_string(keys_dir().join("rsa2048.pem")).unwrap();
    let pair = torii_protocol::KeyPair::from_pem("sts-1", &pem).unwrap();
    let jwks = torii_protocol::KeyPairs::new(vec![pair]).unwrap();
    let path = dir.0.join("jwks.json");
    std::fs::write(&path, jwks.jwks_json()).unwrap();
    let addr = setup(
        &format!(
            "algorithms = [\"RS256\"]\njwks_file = \"{}\"\n",
            path.display()
        ),
        false,
    );
    assert_eq!(bearer(addr, &rs256(&claims(), Some("sts-1"))).status, 200);
    assert_refused(
        &bearer(addr, &rs256(&claims(), Some("other"))),
        "unknown key",
    );
}

#[test]
fn hs256_from_pyjwt_is_accepted() {
    require_pyjwt();
    let script = format!(
        "import jwt, time\nnow = int(time.time())\nprint(jwt.encode({{'iss': 'https://sts.test', 'aud': 'inventory', 'sub': 'py', 'iat': now, 'exp': now + 300}}, '{HS_SECRET}', algorithm='HS256'))"
    );
    let token = python_stdout(&script, &[]);
    let addr = setup(
        &format!("algorithms = [\"HS256\"]\nsecret = \"{HS_SECRET}\"\n"),
        false,
    );
    assert_eq!(bearer(addr, &token).status, 200);
    // The same claims signed with another secret.
    let forged = encode(
        &Header::new(jsonwebtoken::Algorithm::HS256),
        &claims(),
        &EncodingKey::from_secret(b"another-secret-0123456789abcdef0123456789"),
    )
    .unwrap();
    assert_refused(&bearer(addr, &forged), "bad signature");
}

/// An RS256 token signed by PyJWT with the test key, `kid` sts-1.
fn pyjwt_rs256(aud: &str) -> String {
    let script = format!(
        "import jwt, time\nnow = int(time.time())\nkey = open('{}').read()\nprint(jwt.encode({{'iss': 'https://sts.test', 'aud': '{aud}', 'sub': 'py-rsa', 'scope': 'inventory:read', 'iat': now, 'nbf': now, 'exp': now + 300}}, key, algorithm='RS256', headers={{'kid': 'sts-1'}}))",
        keys_dir().join("rsa2048.pem").display()
    );
    python_stdout(&script, &[])
}

#[test]
fn rs256_from_pyjwt_is_accepted() {
    if !pyjwt_crypto_or_skip("an RS256 token signed by PyJWT") {
        return;
    }
    let token = pyjwt_rs256("inventory");
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        (header["alg"].as_str(), header["kid"].as_str()),
        (Some("RS256"), Some("sts-1"))
    );
    let addr = setup(&pem_route(""), false);
    let r = bearer(addr, &token);
    assert_eq!(r.status, 200, "{}", r.text());
    // `pass`: the backend got PyJWT's token unchanged.
    assert!(r.text().contains(&token), "{}", r.text());
    // PyJWT's token for another audience, and this token's claims under that one's signature.
    let billing = pyjwt_rs256("billing");
    assert_refused(&bearer(addr, &billing), "wrong audience");
    let (signed, _) = token.rsplit_once('.').unwrap();
    let (_, other_sig) = billing.rsplit_once('.').unwrap();
    assert_refused(
        &bearer(addr, &format!("{signed}.{other_sig}")),
        "bad signature",
    );
}

/// `${token.sub}` in a header rule is the verified token's `sub`, and a later request on the
/// same keep-alive connection to a route without `[routes.jwt]` gets it empty: one request's
/// subject never reaches the next.
#[test]
fn token_sub_reaches_header_rules_and_never_the_next_request() {
    let m = mirror();
    let cfg = format!(
        "{}{}[routes.jwt]\nissuer = \"https://sts.test\"\naudience = \"inventory\"\nalgorithms = [\"HS256\"]\nsecret = \"{HS_SECRET}\"\n[routes.request_headers]\nset = {{ \"x-sub\" = \"sub=${{token.sub}}\" }}\n{}[routes.request_headers]\nset = {{ \"x-sub\" = \"sub=${{token.sub}}\" }}\n",
        gateway_header(""),
        route("inv", "inv.test", "/", &[m]),
        route("open", "open.test", "/", &[m]),
    );
    let gw = gateway(&cfg);
    let token = encode(
        &Header::new(jsonwebtoken::Algorithm::HS256),
        &claims(),
        &EncodingKey::from_secret(HS_SECRET.as_bytes()),
    )
    .unwrap();
    let mut s = connect(gw.addrs[0]);
    let mut buf = Vec::new();
    let sub_of = |r: &Response| r.json()["headers"]["x-sub"].clone();
    use std::io::Write;
    s.write_all(
        format!("GET / HTTP/1.1\r\nHost: inv.test\r\nAuthorization: Bearer {token}\r\n\r\n")
            .as_bytes(),
    )
    .unwrap();
    let first = read_response(&mut s, &mut buf, "GET").expect("first response");
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(sub_of(&first), json!("sub=order-processing"));
    s.write_all(b"GET / HTTP/1.1\r\nHost: open.test\r\n\r\n")
        .unwrap();
    let second = read_response(&mut s, &mut buf, "GET").expect("second response");
    assert_eq!(second.status, 200, "{}", second.text());
    assert_eq!(sub_of(&second), json!("sub="));
    gw.drain(std::time::Duration::from_secs(2));
}
