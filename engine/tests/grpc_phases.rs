//! Every phase of a route on every gRPC call, end to end with grpcio (`common::grpc`): an
//! external JWT with required scopes (a token lacking the scope → PERMISSION_DENIED), an API
//! key's throttling quota (one call, streaming or not, counts once; the refused call gets
//! RESOURCE_EXHAUSTED), the exchange protocol V2 answered by the example backend
//! (`examples/grpc/challenge_backend.py`) in its initial metadata — and a backend that does not
//! answer it → UNAVAILABLE with Torii's message —, and the info token reaching the backend.

#![allow(clippy::unwrap_used)]

mod common;

use common::grpc::{basic_md, call, example_backend, Backend};
use common::*;
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::json;

const JWT_SECRET: &str = "torii-grpc-jwt-secret-0123456789abcdef0123456789";
const CHALLENGE_SECRET: &str = "torii-grpc-challenge-secret-0123456789abcdef0123456789abcdef-0123";
const CLAIM_SECRET: &str = "torii-grpc-claim-secret-0123456789abcdef0123456789abcdef0123-4567";

/// An h2c gateway with `routes` after the header (and `extra` in `[limits]`).
fn h2c_gateway(routes: &str) -> torii_engine::control::Gateway {
    let header = gateway_header("").replace(
        "drain_timeout = \"2s\"\n",
        "drain_timeout = \"2s\"\nh2c = true\n",
    );
    gateway(&format!("{header}{routes}"))
}

fn hs256(scope: &str) -> String {
    let now = torii_engine::secure::unix_now();
    let claims = json!({"iss": "https://sts.test", "sub": "svc", "scope": scope,
                        "iat": now, "exp": now + 300});
    encode(
        &Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

#[test]
fn jwt_with_required_scopes_guards_grpc_calls() {
    let backend = Backend::start(&[]);
    let gw = h2c_gateway(&format!(
        r#"[[routes]]
id = "orders"
domains = ["orders.test"]
targets = [{{ url = "h2c://127.0.0.1:{}" }}]
[routes.jwt]
issuer = "https://sts.test"
algorithms = ["HS256"]
secret = "{JWT_SECRET}"
required_scopes = ["orders:read"]
"#,
        backend.port
    ));
    let addr = gw.addrs[0];
    let good = format!("authorization=Bearer {}", hs256("orders:read orders:write"));
    let r = call(addr, "orders.test", "unary", &[&good]);
    assert_eq!(r["code"], "OK", "{r}");
    // A stream goes through the same check.
    let r = call(addr, "orders.test", "server_stream", &[&good]);
    assert_eq!(
        (r["code"].as_str(), r["count"].as_u64()),
        (Some("OK"), Some(50)),
        "{r}"
    );

    let narrow = format!("authorization=Bearer {}", hs256("orders:write"));
    let r = call(addr, "orders.test", "unary", &[&narrow]);
    assert_eq!(r["code"], "PERMISSION_DENIED", "{r}");
    assert_eq!(r["details"], "error.insufficient.scope", "{r}");
    let r = call(addr, "orders.test", "unary", &[]);
    assert_eq!(r["code"], "UNAUTHENTICATED", "{r}");
}

#[test]
fn a_throttling_quota_counts_each_call_once_streams_included() {
    let backend = Backend::start(&[]);
    // A 24 h window (aligned on UTC days): the three calls fall in one window.
    let gw = h2c_gateway(&format!(
        r#"[quotas]
window = "24h"

[[apikeys]]
client_id = "quota-client"
client_secret = "quota-secret-0123456789"
routes = ["q"]
throttling_quota = 2

[[routes]]
id = "q"
domains = ["q.test"]
targets = [{{ url = "h2c://127.0.0.1:{}" }}]
[routes.apikeys]
"#,
        backend.port
    ));
    let addr = gw.addrs[0];
    let key = basic_md("quota-client", "quota-secret-0123456789");
    // A server stream of 50 messages and a client stream of 100: one call each.
    let r = call(addr, "q.test", "server_stream", &[&key]);
    assert_eq!(
        (r["code"].as_str(), r["count"].as_u64()),
        (Some("OK"), Some(50)),
        "{r}"
    );
    let r = call(addr, "q.test", "client_stream", &[&key]);
    assert_eq!(r["code"], "OK", "{r}");
    let r = call(addr, "q.test", "unary", &[&key]);
    assert_eq!(r["code"], "RESOURCE_EXHAUSTED", "{r}");
    assert_eq!(r["details"], "You performed too much requests", "{r}");
}

/// The challenged route `greeter` (with API keys and the info token) to `port`.
fn challenged_routes(port: u16) -> String {
    format!(
        r#"[[apikeys]]
client_id = "greeter-client"
client_secret = "greeter-secret-0123456789"
name = "Greeter Client"
routes = ["greeter"]

[[routes]]
id = "greeter"
name = "greeter"
domains = ["greeter.test"]
targets = [{{ url = "h2c://127.0.0.1:{port}" }}]
[routes.apikeys]
[routes.challenge]
version = "v2"
secret = "{CHALLENGE_SECRET}"
[routes.info_token]
secret = "{CLAIM_SECRET}"
"#
    )
}

#[test]
fn the_exchange_protocol_and_the_info_token_on_grpc_calls() {
    let backend = Backend::script(
        example_backend(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--secret",
            CHALLENGE_SECRET,
            "--claim-secret",
            CLAIM_SECRET,
            "--until-stdin-closes",
        ],
    );
    let gw = h2c_gateway(&challenged_routes(backend.port));
    let addr = gw.addrs[0];
    let key = basic_md("greeter-client", "greeter-secret-0123456789");
    // The backend verified the state and the info token (whose subject is the key's name),
    // and answered the challenge in its initial metadata: Torii let the answer through.
    let r = call(addr, "greeter.test", "greet", &[&key]);
    assert_eq!(r["code"], "OK", "{r}");
    assert_eq!(r["reply"], "hello, torii (caller: Greeter Client)", "{r}");
    let r = call(addr, "greeter.test", "greet_count", &[&key]);
    assert_eq!(r["code"], "OK", "{r}");
    assert_eq!(r["got"], json!(["0", "1", "2", "3", "4"]), "{r}");
    // Called directly (not through Torii), the backend refuses: no state.
    let r = call(backend.addr(), "greeter.test", "greet", &[]);
    assert_eq!(r["code"], "UNAUTHENTICATED", "{r}");
}

#[test]
fn a_grpc_backend_that_ignores_the_challenge_is_unavailable() {
    // The test peer answers without `otoroshi-state-resp`; it shows what it was sent.
    let backend = Backend::start(&[]);
    let gw = h2c_gateway(&challenged_routes(backend.port));
    let addr = gw.addrs[0];
    let key = basic_md("greeter-client", "greeter-secret-0123456789");
    let r = call(addr, "greeter.test", "unary", &[&key]);
    assert_eq!(r["code"], "UNAVAILABLE", "{r}");
    assert_eq!(
        r["details"], "Downstream microservice does not seems to be secured. Cancelling request !",
        "{r}"
    );
    // Nothing of the backend's answer reached the client (its trailers carry what it saw).
    assert!(r["trailing"].as_array().unwrap().is_empty(), "{r}");
}

#[test]
fn the_info_token_reaches_a_grpc_backend() {
    let backend = Backend::start(&[]);
    let gw = h2c_gateway(&format!(
        r#"[[routes]]
id = "claimed"
name = "claimed"
domains = ["claimed.test"]
targets = [{{ url = "h2c://127.0.0.1:{}" }}]
[routes.info_token]
secret = "{CLAIM_SECRET}"
"#,
        backend.port
    ));
    let r = call(gw.addrs[0], "claimed.test", "unary", &[]);
    assert_eq!(r["code"], "OK", "{r}");
    let token = r["trailing"]["seen-otoroshi-claim"].as_str().unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS512);
    v.set_issuer(&["Otoroshi"]);
    v.set_audience(&["claimed"]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(CLAIM_SECRET.as_bytes()),
        &v,
    )
    .unwrap()
    .claims;
    assert_eq!(claims["sub"], "public", "{claims}");
}

#[test]
fn each_call_is_logged_and_counted_with_its_grpc_status() {
    let backend = Backend::start(&[]);
    let dir = common::process::TempDir::new("grpc-log");
    let log = dir.0.join("access.log");
    let header = gateway_header("").replace(
        "drain_timeout = \"2s\"\n",
        "drain_timeout = \"2s\"\nh2c = true\nadmin = \"127.0.0.1:0\"\n",
    );
    let gw = gateway(&format!(
        r#"{header}
[access_log]
path = "{}"

[[routes]]
id = "grpc"
domains = ["grpc.test"]
targets = [{{ url = "h2c://127.0.0.1:{}" }}]
"#,
        log.display(),
        backend.port
    ));
    let addr = gw.addrs[0];
    assert_eq!(call(addr, "grpc.test", "unary", &[])["code"], "OK");
    assert_eq!(call(addr, "grpc.test", "server_stream", &[])["code"], "OK");
    assert_eq!(
        call(addr, "grpc.test", "fail", &[])["code"],
        "INVALID_ARGUMENT"
    );
    assert_eq!(
        call(addr, "nowhere.test", "unary", &[])["code"],
        "UNIMPLEMENTED"
    );
    // Not a gRPC call: no grpc_status.
    assert_eq!(get(addr, "grpc.test", "/plain").status, 502);

    let mut lines = Vec::new();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while lines.len() < 5 && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(100));
        lines = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .collect();
    }
    let seen: Vec<(String, u64, Option<u64>)> = lines
        .iter()
        .map(|v| {
            (
                v["path"].as_str().unwrap().to_owned(),
                v["status"].as_u64().unwrap(),
                v.get("grpc_status").map(|s| s.as_u64().unwrap()),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("/test.Echo/Unary".to_owned(), 200, Some(0)),
            ("/test.Echo/ServerStream".to_owned(), 200, Some(0)),
            ("/test.Echo/Fail".to_owned(), 200, Some(3)),
            ("/test.Echo/Unary".to_owned(), 404, Some(12)),
            ("/plain".to_owned(), 502, None),
        ]
    );
    let last = std::fs::read_to_string(&log).unwrap();
    let first = last.lines().next().unwrap();
    assert!(
        first.ends_with(",\"grpc_status\":0}"),
        "the last field: {first}"
    );

    let metrics = get(gw.admin_addr.unwrap(), "admin", "/metrics").text();
    for want in [
        "torii_grpc_calls_total{route=\"grpc\",grpc_status=\"0\"} 2",
        "torii_grpc_calls_total{route=\"grpc\",grpc_status=\"3\"} 1",
        "torii_grpc_calls_total{route=\"-\",grpc_status=\"12\"} 1",
    ] {
        assert!(metrics.contains(want), "{want} in:\n{metrics}");
    }
    assert_eq!(
        metrics.matches("torii_grpc_calls_total{").count(),
        3,
        "{metrics}"
    );
    assert!(metrics.contains("torii_requests_total{route=\"grpc\",status=\"2xx\",proto=\"h2\"} 3"));
}
