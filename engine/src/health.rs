//! The active health checker: one thread per process, `torii-health`, with a monoio runtime
//! of its own (epoll: it sleeps most of the time), that probes the endpoints of every route
//! with `[routes.health_check]` and stores its verdicts in their shared `EndpointState`s.
//!
//! Owns the loop and what a probe of a route sends and accepts. The rules it applies (the
//! thresholds, the schedule, forgetting) are `upstream::health`'s; the network exchange is
//! `upstream::probe`'s. Rules of this module (origin in brackets):
//! - **One checker per process** [Envoy and HAProxy check from each process, not per
//!   worker]: every `TICK` at most (sooner when a probe is due) it loads the snapshot in force,
//!   visits every endpoint of every checked route (`RouteUpstream::endpoints`: every address of
//!   every target), and spawns the probes that are due as tasks of its runtime. A reload or a
//!   DNS answer is seen at the next round; an endpoint the round no longer finds is forgotten.
//! - **The probe**: `GET <path> HTTP/1.1` with the target's `Host` line,
//!   `user-agent: torii-health-check` and `connection: close`, to the endpoint's address, over
//!   the target's TLS for an `https://` target; connect, TLS and the response head within
//!   `timeout`. Good when the status is in `statuses` [Envoy's `expected_statuses`, HAProxy's
//!   `http-check expect status`]. A target Torii speaks HTTP/2 to (`h2c`, `h2`; `auto` over TLS
//!   offers `h2` and `http/1.1`, and an endpoint choosing HTTP/1.1 gets the HTTP/1.1 probe) is
//!   probed over HTTP/2 instead, on a connection of the probe's own (`upstream::probe_h2`), with
//!   the same headers (`host` as `:authority`); with `path = "/grpc.health.v1.Health/Check"`
//!   the probe is the gRPC health checking protocol's `Check`, good when `SERVING` [gRPC's
//!   `grpc_health_probe`, Envoy's `grpc_health_check`].
//! - **On a challenged route** (`[routes.challenge]` whose `exclude` does not match the
//!   probe's path) the probe carries a fresh state of the exchange protocol (V1 value or V2
//!   token, rendered by `RouteChallenge::render_state_header` as for a request) and is good only
//!   when the backend's answer verifies (`RouteChallenge::check_answer`): a backend that cannot
//!   answer the challenge would fail every request Torii sends it (502), so it is not healthy.
//!   This is Torii's rule, stricter than Otoroshi's: Otoroshi's checker sends `Otoroshi-State`
//!   and `Otoroshi-Claim` but does not check the answer (`HealthCheck.checkTarget`; it only
//!   grades an `Otoroshi-Health-Check-Logic-Test` echo). A route with `[routes.info_token]`
//!   also sends its info token, as Otoroshi's checker does (access type `public`).
//! - **Workers never wait on it**: they read the verdicts with relaxed atomic loads
//!   (`EndpointState::available`, in `upstream::select`: an unhealthy endpoint is picked only
//!   in panic mode, when no endpoint of the route is available); the checker writes nothing
//!   else they read.
//! - **Logs**: each change of health, `warn` when an endpoint becomes unhealthy (with the last
//!   probe's reason: `status N`, `timeout`, `refused`, `TLS handshake failed`, `challenge
//!   failed (…)`), `info` when it becomes healthy or is forgotten.

use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use torii_protocol::challenge::{JTI_LEN, STATE_LEN};
use torii_protocol::StateGenerator;

use http::{HeaderName, HeaderValue};

use crate::config::{HealthCheckSpec, TargetProtocol};
use crate::runtime::AnyRuntime;
use crate::secure::{seeded_state_generator, unix_now};
use crate::snapshot::{Route, Snapshot, Target};
use crate::upstream::endpoint::{EndpointState, Health};
use crate::upstream::health::{forget, record, BadProbe, Schedule, Thresholds};
use crate::upstream::probe::probe;
use crate::upstream::probe_h2::{probe_h2, H2ProbeKind, H2ProbeRequest};

/// Longest sleep between two rounds (how soon a reload or a DNS answer is seen, and how soon
/// the thread stops).
pub const TICK: Duration = Duration::from_millis(100);

/// The `user-agent` of every probe.
pub const USER_AGENT: &str = "torii-health-check";

/// The running checker thread. [`HealthChecker::stop`] (or dropping it) ends it within
/// [`TICK`]; probes in flight are dropped with its runtime.
#[derive(Debug)]
pub struct HealthChecker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HealthChecker {
    /// Starts the `torii-health` thread over the snapshots stored in `snapshot`.
    pub fn start(snapshot: Arc<ArcSwap<Snapshot>>) -> io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = stop.clone();
        let thread = std::thread::Builder::new()
            .name("torii-health".to_owned())
            .spawn(move || {
                let mut rt = match AnyRuntime::build_legacy() {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!(error = %e, "health checker: could not build a runtime; no active health checks");
                        return;
                    }
                };
                rt.block_on(run(snapshot, thread_stop));
            })?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the thread and waits for it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for HealthChecker {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The thread's loop: a round per wake-up until `stop`.
async fn run(snapshot: Arc<ArcSwap<Snapshot>>, stop: Arc<AtomicBool>) {
    let schedule = Rc::new(RefCell::new(Schedule::new()));
    let mut states = seeded_state_generator();
    let mut jitter = Jitter::seeded();
    while !stop.load(Ordering::Relaxed) {
        let snap = snapshot.load_full();
        let wake = round(&snap, &schedule, &mut states, &mut jitter);
        let sleep = wake
            .map_or(TICK, |w| w.saturating_duration_since(Instant::now()))
            .clamp(Duration::from_millis(1), TICK);
        monoio::time::sleep(sleep).await;
    }
}

/// One round over `snap`: spawns the probes that are due, forgets the endpoints no checked
/// route has any more. Returns when the next probe is due.
fn round(
    snap: &Arc<Snapshot>,
    schedule: &Rc<RefCell<Schedule>>,
    states: &mut StateGenerator,
    jitter: &mut Jitter,
) -> Option<Instant> {
    let mut sched = schedule.borrow_mut();
    sched.begin_round();
    let now = Instant::now();
    for (route_idx, route) in snap.routes.iter().enumerate() {
        let Some(spec) = &route.upstream_spec.health_check else {
            continue;
        };
        let set = route.upstream.endpoints();
        for endpoint in &set.endpoints {
            if !sched.visit(&endpoint.state, spec.interval, now, jitter.next()) {
                continue;
            }
            let Some(prepared) = prepare(route, spec, endpoint.target, states) else {
                sched.finished(&endpoint.state);
                continue;
            };
            monoio::spawn(probe_endpoint(
                snap.clone(),
                route_idx,
                endpoint.target,
                endpoint.state.clone(),
                prepared,
                schedule.clone(),
            ));
        }
    }
    for state in sched.end_round() {
        if let Some(before) = forget(&state) {
            tracing::info!(endpoint = %state.addr_text, was = before.as_str(), "endpoint no longer health-checked; health back to unknown");
        }
    }
    sched.next_wake()
}

/// A probe's request head and, on a challenged route, the state it carries.
struct Prepared {
    request: Vec<u8>,
    state: Option<[u8; STATE_LEN]>,
    /// The same request for HTTP/2, for a target Torii speaks HTTP/2 to (or may: `auto`).
    h2: Option<H2Probe>,
}

/// How an endpoint is probed over HTTP/2.
struct H2Probe {
    request: H2ProbeRequest,
    /// `auto`: ALPN offers `h2` then `http/1.1`, and an endpoint choosing HTTP/1.1 is probed
    /// over HTTP/1.1.
    negotiate: bool,
}

/// The HTTP/2 form of the HTTP/1.1 probe `request` rendered for `target` (its header lines but
/// `host`, which becomes `:authority`, and `connection`), when `target` speaks HTTP/2 or may
/// (`auto` over TLS).
fn h2_form(target: &Target, path: &str, request: &[u8]) -> Option<H2Probe> {
    let negotiate = match target.protocol {
        TargetProtocol::H2c | TargetProtocol::H2 => false,
        TargetProtocol::Auto if target.tls.is_some() => true,
        _ => return None,
    };
    let authority = target
        .host_line
        .strip_prefix(b"host: ")
        .and_then(|h| h.strip_suffix(b"\r\n"))
        .map(|h| String::from_utf8_lossy(h).into_owned())?;
    let mut headers = Vec::new();
    for line in request.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = line[..colon].to_ascii_lowercase();
        if name == b"host" || name == b"connection" {
            continue;
        }
        let value = line[colon + 1..].trim_ascii();
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(&name),
            HeaderValue::from_bytes(value),
        ) {
            headers.push((n, v));
        }
    }
    Some(H2Probe {
        request: H2ProbeRequest {
            path: path.to_owned(),
            authority,
            headers,
            kind: H2ProbeKind::for_path(path),
        },
        negotiate,
    })
}

/// Renders the probe of route `route`'s target `target`. `None` (logged) when a token cannot be
/// signed: the probe is skipped, not counted.
fn prepare(
    route: &Route,
    spec: &HealthCheckSpec,
    target: usize,
    states: &mut StateGenerator,
) -> Option<Prepared> {
    let host_line = route.targets.get(target)?.host_line.as_slice();
    let mut request = Vec::with_capacity(256 + spec.path.len());
    request.extend_from_slice(b"GET ");
    request.extend_from_slice(spec.path.as_bytes());
    request.extend_from_slice(b" HTTP/1.1\r\n");
    request.extend_from_slice(host_line);
    request.extend_from_slice(b"user-agent: ");
    request.extend_from_slice(USER_AGENT.as_bytes());
    request.extend_from_slice(b"\r\n");
    let now = unix_now();
    let path = spec.path.split('?').next().unwrap_or_default();
    let mut state = None;
    if let Some(ch) = route
        .challenge
        .as_ref()
        .filter(|c| c.applies(path.as_bytes()))
    {
        let mut value = [0u8; STATE_LEN];
        let mut jti = [0u8; JTI_LEN];
        states.fill_state(&mut value);
        states.fill_jti(&mut jti);
        if let Err(e) = ch.render_state_header(&value, &jti, now, &mut request) {
            tracing::warn!(route = %route.id, error = ?e, "health probe skipped: the challenge state could not be signed");
            return None;
        }
        state = Some(value);
    }
    if let Some(info) = &route.info_token {
        let mut jti = [0u8; JTI_LEN];
        states.fill_jti(&mut jti);
        if let Err(e) = info.render_header(None, &jti, now, &mut request) {
            tracing::warn!(route = %route.id, error = ?e, "health probe skipped: the info token could not be signed");
            return None;
        }
    }
    request.extend_from_slice(b"connection: close\r\n\r\n");
    let h2 = route
        .targets
        .get(target)
        .and_then(|t| h2_form(t, &spec.path, &request));
    Some(Prepared { request, state, h2 })
}

/// Probes one endpoint and records the result, unless the endpoint was forgotten meanwhile.
async fn probe_endpoint(
    snap: Arc<Snapshot>,
    route_idx: usize,
    target_idx: usize,
    state: Arc<EndpointState>,
    prepared: Prepared,
    schedule: Rc<RefCell<Schedule>>,
) {
    let route = snap.routes.get(route_idx);
    let target = route.and_then(|r| r.targets.get(target_idx));
    let spec = route.and_then(|r| r.upstream_spec.health_check.as_ref());
    let (Some(route), Some(target), Some(spec)) = (route, target, spec) else {
        schedule.borrow_mut().finished(&state);
        return;
    };
    let challenge = route
        .challenge
        .as_ref()
        .filter(|_| prepared.state.is_some());
    let answer_header = challenge.map(|c| c.response_header.as_slice());
    let over_h2 = match prepared.h2 {
        Some(h2) => {
            probe_h2(
                state.addr,
                target.tls.as_ref(),
                h2.negotiate,
                h2.request,
                answer_header,
                spec.timeout,
            )
            .await
        }
        None => Ok(None),
    };
    let answer = match over_h2 {
        Ok(Some(answer)) => Ok(answer),
        Err(bad) => Err(bad),
        Ok(None) => {
            probe(
                state.addr,
                target.tls.as_ref(),
                prepared.request,
                answer_header,
                spec.timeout,
            )
            .await
        }
    };
    let verdict = answer.and_then(|a| {
        if !spec.statuses.iter().any(|r| r.contains(a.status)) {
            return Err(BadProbe::Status(a.status));
        }
        match (challenge, &prepared.state) {
            (Some(ch), Some(sent)) => ch
                .check_answer(a.header.as_deref(), sent, unix_now())
                .map_err(BadProbe::Challenge),
            _ => Ok(()),
        }
    });
    if !schedule.borrow_mut().finished(&state) {
        return;
    }
    let thresholds = Thresholds {
        healthy: spec.healthy_threshold,
        unhealthy: spec.unhealthy_threshold,
    };
    match (record(&state, verdict.is_ok(), thresholds), verdict) {
        (Some((before, Health::Unhealthy)), Err(reason)) => tracing::warn!(
            route = %route.id,
            endpoint = %state.addr_text,
            target = %target.url,
            %reason,
            was = before.as_str(),
            probes = spec.unhealthy_threshold,
            "endpoint unhealthy: no new request goes to it while another endpoint is available"
        ),
        (Some((before, Health::Healthy)), _) => tracing::info!(
            route = %route.id,
            endpoint = %state.addr_text,
            target = %target.url,
            was = before.as_str(),
            probes = spec.healthy_threshold,
            "endpoint healthy"
        ),
        _ => {}
    }
}

/// The jitter's random numbers (splitmix64): spreading probes needs no cryptographic quality.
struct Jitter(u64);

impl Jitter {
    /// Seeded from the OS, or from the clock when the OS has no entropy to give.
    fn seeded() -> Self {
        let mut seed = [0u8; 8];
        if getrandom::getrandom(&mut seed).is_err() {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            seed = t.to_le_bytes();
        }
        Self(u64::from_le_bytes(seed))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    fn target(protocol: TargetProtocol) -> Target {
        Target {
            addr: SocketAddr::from(([127, 0, 0, 1], 50051)),
            host_line: b"host: grpc.internal:50051\r\n".to_vec(),
            url: "h2c://grpc.internal:50051".to_owned(),
            addr_text: "127.0.0.1:50051".into(),
            tls: None,
            protocol,
        }
    }

    #[test]
    fn the_http2_probe_carries_the_http1_probes_headers_but_host_and_connection() {
        let request = b"GET /grpc.health.v1.Health/Check HTTP/1.1\r\nhost: grpc.internal:50051\r\nuser-agent: torii-health-check\r\nOtoroshi-State: abc:def\r\nconnection: close\r\n\r\n";
        let path = "/grpc.health.v1.Health/Check";
        let h2 = h2_form(&target(TargetProtocol::H2c), path, request).unwrap();
        assert!(!h2.negotiate);
        assert_eq!(h2.request.authority, "grpc.internal:50051");
        assert_eq!(h2.request.kind, H2ProbeKind::GrpcHealth);
        let headers: Vec<(String, String)> = h2
            .request
            .headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        assert_eq!(
            headers,
            [
                ("user-agent".to_owned(), "torii-health-check".to_owned()),
                ("otoroshi-state".to_owned(), "abc:def".to_owned()),
            ]
        );
        // HTTP/1.1 targets, and `auto` without TLS (it is HTTP/1.1 then), keep HTTP/1.1.
        assert!(h2_form(&target(TargetProtocol::Http1), path, request).is_none());
        assert!(h2_form(&target(TargetProtocol::Auto), path, request).is_none());
    }
}
