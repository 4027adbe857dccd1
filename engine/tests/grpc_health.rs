//! Active health checks over HTTP/2, end to end on loopback: a gateway whose route's targets
//! are `h2c` probes them over HTTP/2 from its `torii-health` thread (a gRPC server refuses
//! HTTP/1.1). With `path = "/grpc.health.v1.Health/Check"` the probe is the standard gRPC health
//! checking protocol, against a grpcio server's health service (`grpcio-health-checking`): an
//! endpoint set NOT_SERVING becomes unhealthy, and healthy again once SERVING. With another
//! path the probe is an HTTP/2 `GET`, judged by its status.
//!
//! Every wait is bounded (`WAIT`); the backends and the gateway bind 127.0.0.1 port 0.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::grpc::Backend;
use common::process::TempDir;
use common::python::require_imports;
use common::*;
use torii_engine::control::Gateway;
use torii_engine::upstream::endpoint::Health;

/// Longest wait for a verdict.
const WAIT: Duration = Duration::from_secs(10);

/// `tests/grpc/health_peer.py`.
fn health_peer() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/grpc/health_peer.py")
}

/// An h2c gateway whose route `hc` goes to `h2c://addr`, checked at `path`.
fn checked_gateway(addr: SocketAddr, path: &str) -> Gateway {
    gateway(&checked_gateway_toml(addr, path))
}

/// The configuration of [`checked_gateway`].
fn checked_gateway_toml(addr: SocketAddr, path: &str) -> String {
    let header = gateway_header("").replace(
        "drain_timeout = \"2s\"\n",
        "drain_timeout = \"2s\"\nh2c = true\n",
    );
    format!(
        "{header}[[routes]]\nid = \"hc\"\ndomains = [\"hc.test\"]\ntargets = [{{ url = \"h2c://{addr}\" }}]\n\
         [routes.health_check]\npath = \"{path}\"\ninterval = \"200ms\"\ntimeout = \"200ms\"\n\
         unhealthy_threshold = 2\nhealthy_threshold = 2\n"
    )
}

/// The health the checker gave the endpoint at `addr` of the gateway's first route.
fn health_of(g: &Gateway, addr: SocketAddr) -> Option<Health> {
    let snap = g.shared.snapshot.load();
    let set = snap.routes[0].upstream.endpoints();
    set.endpoints
        .iter()
        .find(|e| e.state.addr == addr)
        .map(|e| e.state.health())
}

/// Waits (at most `WAIT`) until the endpoint at `addr` has `health`; says whether it did.
fn wait_for_health(g: &Gateway, addr: SocketAddr, health: Health) -> bool {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if health_of(g, addr) == Some(health) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn the_grpc_health_protocol_decides_an_h2c_endpoints_health() {
    require_imports(
        "import grpc_health.v1.health",
        "grpcio-health-checking",
        "the gRPC health check tests",
    );
    let mut backend = Backend::script(health_peer(), &["grpc"]);
    let addr = backend.addr();
    let g = checked_gateway(addr, "/grpc.health.v1.Health/Check");

    assert!(
        wait_for_health(&g, addr, Health::Healthy),
        "a SERVING gRPC server is not healthy after {WAIT:?}: {:?}",
        health_of(&g, addr)
    );
    backend.tell("NOT_SERVING");
    assert!(
        wait_for_health(&g, addr, Health::Unhealthy),
        "a NOT_SERVING gRPC server is not unhealthy after {WAIT:?}: {:?}",
        health_of(&g, addr)
    );
    backend.tell("SERVING");
    assert!(
        wait_for_health(&g, addr, Health::Healthy),
        "a gRPC server SERVING again is not healthy after {WAIT:?}: {:?}",
        health_of(&g, addr)
    );
}

#[test]
fn an_h2c_endpoint_is_probed_with_an_http2_get() {
    let dir = TempDir::new("h2probe");
    let log = dir.0.join("requests.jsonl");
    let mut backend = Backend::script(health_peer(), &["plain", log.to_str().unwrap()]);
    let addr = backend.addr();
    let g = checked_gateway(addr, "/healthz?deep=1");

    assert!(
        wait_for_health(&g, addr, Health::Healthy),
        "an h2c server answering 200 is not healthy after {WAIT:?}: {:?}",
        health_of(&g, addr)
    );
    backend.tell("503");
    assert!(
        wait_for_health(&g, addr, Health::Unhealthy),
        "an h2c server answering 503 is not unhealthy after {WAIT:?}: {:?}",
        health_of(&g, addr)
    );
    backend.tell("200");
    assert!(wait_for_health(&g, addr, Health::Healthy));

    // What a probe looks like over HTTP/2.
    let text = std::fs::read_to_string(&log).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first[":method"], "GET", "{first}");
    assert_eq!(first[":path"], "/healthz?deep=1", "{first}");
    assert_eq!(first[":scheme"], "http", "{first}");
    assert_eq!(first[":authority"], addr.to_string(), "{first}");
    assert_eq!(first["user-agent"], "torii-health-check", "{first}");
    assert!(first.get("connection").is_none(), "{first}");
    assert!(first.get("host").is_none(), "{first}");
}

#[test]
fn a_grpc_server_without_the_health_service_is_unhealthy() {
    // `grpc_peer.py server` serves `test.Echo` only: its answer to `Health/Check` is
    // UNIMPLEMENTED (grpc-status 12, Trailers-Only), which is not SERVING.
    let backend = Backend::start(&[]);
    let addr = backend.addr();
    let g = checked_gateway(addr, "/grpc.health.v1.Health/Check");
    assert!(
        wait_for_health(&g, addr, Health::Unhealthy),
        "a gRPC server without the health service is not unhealthy after {WAIT:?}: {:?}",
        health_of(&g, addr)
    );
}
