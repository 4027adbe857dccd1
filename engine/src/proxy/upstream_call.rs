//! Phase 5, the upstream request: wait for the request body to start, draw the security
//! values, take an upstream connection, send the head and the body, and read the response head.
//!
//! Owns the sequence of one upstream exchange and its retry (once, as
//! [`retry_allowed`](crate::proxy::error::retry_allowed) says); the bounded wait for a request
//! body before any upstream connection is taken (`body_rate`); streaming the body with the
//! minimum rate; and reading the response head under `upstream_timeout`, skipping interim 1xx
//! answers. Returns the upstream connection and its response head to the sequencer, or the
//! [`ProxyError`] to answer (refused/reset → 502, timeouts → 504, a request body that failed →
//! its 4xx, closing).

use std::io;
use std::time::{Duration, Instant};

use torii_protocol::balance::{safe_to_repeat, Backoff, CallOutcome, RetryOn, RetryReason};

use crate::config::{LoadBalancing, RetryCondition, TargetProtocol, UpstreamSpec};
use crate::http1::{parse_response_head, BodyFraming, ResponseHead};
use crate::io::write_all_timeout;
use crate::proxy::body::{ChunkedMode, Framing, PumpOptions, BODY_BUFFER_BYTES};
use crate::proxy::body_rate::{BodyClock, BodyStart};
use crate::proxy::connect::{connect, ConnectError};
use crate::proxy::context::RequestCtx;
use crate::proxy::downstream::Downstream;
use crate::proxy::error::{retry_allowed, ProxyError};
use crate::proxy::hash_key::request_hash;
use crate::proxy::route_rules;
use crate::proxy::upstream_h2::{self, BodyPlan, H2Failure};
use crate::proxy::upstream_head::UpstreamHead;
use crate::proxy::upstream_response::{H1Response, UpstreamResponse};
use crate::rules::Vars;
use crate::secure::unix_now;
use crate::snapshot::{Route, RuntimeLimits, Target};
use crate::tls::stream::UpStream;
use crate::upstream::endpoint::{ms_at, now_ms};
use crate::upstream::outlier;
use crate::upstream::pool::UpstreamConn;
use crate::upstream::select::{CachedSet, EndpointInUse, Picked, Tier, Tried};
use crate::worker::Worker;

/// Sends the routed, admitted request upstream and reads the response head, retrying on
/// another endpoint as the route's `[routes.retry]` allows.
pub async fn forward<D: Downstream>(
    worker: &Worker,
    down: &mut D,
    ctx: &mut RequestCtx<'_>,
) -> Result<UpstreamResponse, ProxyError> {
    let snap = ctx.snap;
    let Some((route_idx, route)) = ctx.rec.route.zip(ctx.route) else {
        return Err(ProxyError::no_route());
    };
    let limits = snap.limits;
    let spec = &route.upstream_spec;
    // No upstream connection is taken before the body is here (small bodies whole, larger
    // ones their first byte): a client that announces a body and never sends it holds none.
    let (clock, waited) = down.await_body(ctx).await;
    let body_start = waited.map_err(|e| ProxyError::from_body_wait(&e))?;
    let now = unix_now();
    draw_security(worker, ctx);
    let buffered = match body_start {
        BodyStart::Buffered(n) => Some(n),
        BodyStart::None | BodyStart::Streaming => None,
    };
    let streamed = match ctx.head.body {
        BodyFraming::Length(n) if n > 0 && buffered.is_none() => Some(Framing::Length(n)),
        BodyFraming::Chunked => Some(Framing::Chunked),
        _ => None,
    };
    let hash = match &spec.load_balancing {
        LoadBalancing::Hash(on) => request_hash(ctx, on, down.client().client_ip()),
        _ => 0,
    };
    let cached = worker.selector.borrow_mut().set_for(
        snap.version,
        route_idx,
        &route.upstream,
        matches!(spec.load_balancing, LoadBalancing::Hash(_)),
    );
    let plan = RetryPlan::of(spec);
    let mut flight = RouteFlight::start(worker, route_idx);
    let idempotent = ctx.head.method.is_idempotent();

    // A buffered body stays with the downstream (the head is the context's) until the
    // request is sent for good, so that the upstream head can be rendered again for a retry
    // or another endpoint.
    let mut tried = Tried::default();
    let mut tries: u32 = 0;
    let mut again_fresh: Option<Picked> = None;
    let upstream_start = Instant::now();
    let result = loop {
        let fresh = again_fresh.is_some();
        let picked = match again_fresh.take() {
            Some(p) => p,
            None => {
                // The first pick reuses the clock read above; a retry reads it again.
                let at = if tries == 0 {
                    upstream_start
                } else {
                    Instant::now()
                };
                let pick = worker.selector.borrow_mut().pick(
                    route_idx,
                    &cached,
                    &spec.load_balancing,
                    hash,
                    worker.id,
                    tried,
                    at,
                    ms_at(at),
                );
                let Some(p) = pick else {
                    break Err(flight
                        .last_error
                        .take()
                        .unwrap_or(ProxyError::from_connect(ConnectError::NoTarget)));
                };
                if p.tier == Tier::Panic {
                    route.metrics.panic_pick(worker.id);
                    if let Some(suppressed) = worker.admit_connect_warning(PANIC_LOG_KEY) {
                        tracing::warn!(route = %route.id, suppressed, "no upstream endpoint available (ejected, unhealthy or refusing): using them all (panic mode)");
                    }
                }
                tries += 1;
                p
            }
        };
        tried.add(picked.index);
        let endpoint = &cached.set.endpoints[picked.index];
        let in_use = EndpointInUse::start(cached.clone(), picked.index, worker.id);
        ctx.rec.target = Some(endpoint.target);
        ctx.rec.endpoint = Some(endpoint.state.addr);
        ctx.rec.attempts = u8::try_from(tries).unwrap_or(u8::MAX);
        let mut sent = false;
        let target = &route.targets[endpoint.target];
        let head_timeout = plan.try_timeout(spec.timeouts.response_header);
        let answered = if speaks_h2(worker, target, endpoint.state.addr) {
            if let Err(e) = render_head(worker, &*down, ctx, route, endpoint.target, buffered, now)
            {
                break Err(e);
            }
            let body = match (buffered, streamed) {
                (Some(_), _) => BodyPlan::Buffered,
                (None, Some(framing)) => BodyPlan::Streamed(framing),
                (None, None) => BodyPlan::None,
            };
            let addr = endpoint.state.addr;
            let connect_timeout = spec.timeouts.connect;
            let exchanged = Box::pin(upstream_h2::exchange(
                worker,
                down,
                ctx,
                route,
                target,
                addr,
                connect_timeout,
                head_timeout,
                body,
                &limits,
            ))
            .await;
            match exchanged {
                Ok(resp) => Ok(UpstreamResponse::Http2(resp.on_endpoint(in_use))),
                Err(H2Failure::Connect(e)) => Err(Failure::Connect(e)),
                Err(H2Failure::Reset(e)) => {
                    sent = true;
                    Err(Failure::Reset(e))
                }
                Err(H2Failure::Timeout(e)) => {
                    sent = true;
                    Err(Failure::Timeout(e))
                }
                Err(H2Failure::Final(e)) => break Err(e),
                Err(H2Failure::Http1) => {
                    // Not a try: the same endpoint, over HTTP/1.1 (remembered now).
                    again_fresh = Some(picked);
                    continue;
                }
            }
        } else {
            match connect(worker, route, endpoint, spec.timeouts.connect, fresh).await {
                Err(e) => Err(Failure::Connect(e)),
                Ok(mut up) => {
                    let retry = retry_allowed(up.reused, 1, ctx.head.method, streamed.is_some());
                    if let Err(e) =
                        render_head(worker, &*down, ctx, route, endpoint.target, buffered, now)
                    {
                        break Err(e);
                    }
                    sent = true;
                    if let Err(e) =
                        write_all_timeout(&mut up.stream, &mut ctx.bufs.up_head, head_timeout).await
                    {
                        if retry {
                            // A pooled connection the upstream had closed: the same endpoint, on
                            // a fresh connection (not the endpoint's fault, not a retry).
                            again_fresh = Some(picked);
                            continue;
                        }
                        Err(Failure::Reset(ProxyError::before_response(&e, false)))
                    } else {
                        if let Some(framing) = streamed {
                            Box::pin(send_request_body(
                                down, ctx, &mut up, framing, &limits, clock,
                            ))
                            .await?;
                        }
                        match read_response_head(&mut up, ctx, &limits, head_timeout, retry).await {
                            Ok(resp) => Ok(UpstreamResponse::Http1(
                                H1Response::new(up, resp).on_endpoint(in_use),
                            )),
                            Err(e) if e.retry => {
                                again_fresh = Some(picked);
                                continue;
                            }
                            Err(e) if e.reason == ProxyError::response_timeout().reason => {
                                Err(Failure::Timeout(e))
                            }
                            Err(e) if e.reason == REASON_BEFORE_RESPONSE => Err(Failure::Reset(e)),
                            Err(e) => Err(Failure::Final(e)),
                        }
                    }
                }
            }
        };
        let failure = match answered {
            Ok(resp) => {
                let status = resp.status();
                let outcome = CallOutcome::from_status(status);
                flight.record(route, &cached, picked.index, outcome);
                if matches!(status, 502..=504)
                    && flight.may_retry(
                        route,
                        &plan,
                        tries,
                        RetryReason::Status(status),
                        safe_to_repeat(idempotent && streamed.is_none(), true),
                    )
                {
                    // The answer is dropped with its connection (never pooled mid-body) and
                    // the request goes to another endpoint.
                    flight.last_error = Some(ProxyError::from_upstream_status(status));
                    drop(resp);
                    flight.backoff(&plan).await;
                    continue;
                }
                break Ok(resp);
            }
            Err(failure) => failure,
        };
        flight.record(route, &cached, picked.index, CallOutcome::GatewayFailure);
        let (reason, error) = failure.split();
        let repeatable = safe_to_repeat(idempotent && streamed.is_none(), sent);
        match reason {
            Some(reason) if flight.may_retry(route, &plan, tries, reason, repeatable) => {
                flight.last_error = Some(error);
                flight.backoff(&plan).await;
            }
            _ => break Err(error),
        }
    };
    ctx.rec.upstream = Some(upstream_start.elapsed());
    if let Some(n) = buffered {
        ctx.rec.bytes_in += n as u64;
        down.consume_body(n);
        ctx.body_done = true;
    }
    drop(flight);
    result
}

/// Whether the request goes to endpoint `addr` of `target` over HTTP/2: `h2c` and `h2` targets
/// always, `auto` ones unless their ALPN chose HTTP/1.1 (not known yet: HTTP/2 is offered
/// first, `connect_h2` learns the choice).
fn speaks_h2(worker: &Worker, target: &Target, addr: std::net::SocketAddr) -> bool {
    match target.protocol {
        TargetProtocol::Auto => worker
            .h2_clients
            .borrow()
            .negotiated(addr, target.pool_id())
            .unwrap_or(true),
        _ => target.speaks_h2(),
    }
}

/// Renders the upstream head of the request in `ctx` for target `target` of `route` into
/// `bufs.up_head` (with the buffered body's first `buffered` bytes after it). A signing
/// failure is a 500.
#[allow(clippy::too_many_arguments)]
fn render_head<D: Downstream>(
    worker: &Worker,
    down: &D,
    ctx: &mut RequestCtx<'_>,
    route: &Route,
    target: usize,
    buffered: Option<usize>,
    now: u64,
) -> Result<(), ProxyError> {
    let snap = ctx.snap;
    // The worker's keyed-prefix cache is borrowed only while the head is rendered (no
    // await here).
    let mut prefixes = worker.info_prefixes.borrow_mut();
    let keyed = match (&route.info_token, ctx.admitted.key, ctx.rec.route) {
        (Some(info), Some(key), Some(route_idx)) => {
            prefixes.get(snap.version, route_idx, info, key)
        }
        _ => None,
    };
    // Taken out of the context while the input borrows it (the variables), put back after.
    let mut up_head = std::mem::take(&mut ctx.bufs.up_head);
    let mut scratch = std::mem::take(&mut ctx.bufs.scratch);
    let mut host_buf = [0u8; crate::http1::MAX_HOST_BYTES];
    let vars = if route.rules.empty || route.rules.request_headers.is_empty() {
        Vars::default()
    } else {
        route_rules::header_vars(ctx, route, down.client().client_ip(), &mut host_buf)
    };
    let input = UpstreamHead {
        data: ctx.data(),
        head: &ctx.head,
        headers: ctx.fields(),
        canonical_path: ctx.path_rewritten.then_some(&ctx.bufs.path[..]),
        rule_path: ctx.rule_path_set.then_some(&ctx.bufs.rule_path[..]),
        allow_underscores: down.client().allow_underscores,
        route,
        target: &route.targets[target],
        admitted: &ctx.admitted,
        keyed,
        jwt_extra: ctx.jwt_extra.as_ref(),
        security: &ctx.security,
        now,
        request_id: &ctx.rec.request_id,
        xff_line: &down.client().xff_line,
        proto: down.client().scheme,
        websocket: ctx.upgrade.is_some(),
        vars,
        body: buffered.map(|n| down.buffered_body(n)),
    };
    let rendered = input.render(&mut up_head, &mut scratch);
    ctx.bufs.up_head = up_head;
    ctx.bufs.scratch = scratch;
    match rendered {
        Ok(copied) => {
            ctx.rec.underscore_dropped = copied.underscore_dropped;
            Ok(())
        }
        Err(why) => Err(ProxyError::internal(why)),
    }
}

/// The key of the "panic mode" warning's rate limit (one a second per worker).
const PANIC_LOG_KEY: std::net::SocketAddr = std::net::SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::UNSPECIFIED,
    0,
));

/// `ProxyError::before_response`'s reason: a connection that broke before any response byte.
const REASON_BEFORE_RESPONSE: &str = "upstream.failed_before_response";

/// Why one try failed.
enum Failure {
    /// No connection (nothing sent).
    Connect(ConnectError),
    /// The connection broke before a response byte.
    Reset(ProxyError),
    /// No response head in time.
    Timeout(ProxyError),
    /// Not retried whatever the policy (an invalid response).
    Final(ProxyError),
}

impl Failure {
    /// The retry reason (none for a final failure) and the error to answer.
    fn split(self) -> (Option<RetryReason>, ProxyError) {
        match self {
            Failure::Connect(e) => (
                Some(RetryReason::ConnectFailure),
                ProxyError::from_connect(e),
            ),
            Failure::Reset(e) => (Some(RetryReason::Reset), e),
            Failure::Timeout(e) => (Some(RetryReason::Timeout), e),
            Failure::Final(e) => (None, e),
        }
    }
}

/// A route's retry policy in the protocol crate's terms, made per request from the spec.
struct RetryPlan {
    attempts: u32,
    on: RetryOn,
    per_try_timeout: Option<Duration>,
    backoff: Backoff,
    budget_percent: u32,
}

impl RetryPlan {
    fn of(spec: &UpstreamSpec) -> Self {
        let r = &spec.retry;
        let on = r.on.iter().fold(RetryOn::empty(), |on, c| {
            on.union(match c {
                RetryCondition::ConnectFailure => RetryOn::CONNECT_FAILURE,
                RetryCondition::Reset => RetryOn::RESET,
                RetryCondition::Status502 => RetryOn::STATUS_502,
                RetryCondition::Status503 => RetryOn::STATUS_503,
                RetryCondition::Status504 => RetryOn::STATUS_504,
            })
        });
        Self {
            attempts: r.attempts.max(1),
            on,
            per_try_timeout: r.per_try_timeout,
            backoff: Backoff {
                base_ms: r.backoff_base.as_millis() as u64,
                max_ms: r.backoff_max.as_millis() as u64,
            },
            budget_percent: r.budget_percent,
        }
    }

    /// The deadline of one try's response head: `per_try_timeout`, within `response_header`.
    fn try_timeout(&self, response_header: Duration) -> Duration {
        self.per_try_timeout
            .map_or(response_header, |t| t.min(response_header))
    }
}

/// One request's life on its route as the selector counts it (requests and retries in flight,
/// the retry budget), ended when dropped.
struct RouteFlight<'w> {
    worker: &'w Worker,
    route: usize,
    /// Retries made (the backoff's exponent).
    retries: u32,
    /// Retries taken from the budget (given back when the request ends).
    budgeted: u32,
    last_error: Option<ProxyError>,
}

impl<'w> RouteFlight<'w> {
    fn start(worker: &'w Worker, route: usize) -> Self {
        worker.selector.borrow_mut().request_started(route);
        Self {
            worker,
            route,
            retries: 0,
            budgeted: 0,
            last_error: None,
        }
    }

    /// Records a try's outcome on its endpoint (outlier detection), logging an ejection. A
    /// success (the steady state) reads no clock and builds no policy.
    fn record(&self, route: &Route, cached: &CachedSet, index: usize, outcome: CallOutcome) {
        if outcome == CallOutcome::Success {
            if let Some(e) = cached.set.endpoints.get(index) {
                e.state.record_success();
            }
            return;
        }
        let policy = route
            .upstream_spec
            .outlier_detection
            .as_ref()
            .map(outlier::policy);
        if let Some(ej) = outlier::record(&cached.set, index, outcome, policy.as_ref(), now_ms()) {
            route.metrics.ejection(self.worker.id);
            let addr = &cached.set.endpoints[index].state.addr_text;
            tracing::warn!(route = %route.id, endpoint = %addr, for_ms = ej.for_ms, times = ej.times, "upstream endpoint ejected (outlier detection)");
        }
    }

    /// Whether the request may be tried again after try number `tries` failed for `reason`,
    /// taking a retry from the budget (and counting it) when it may.
    ///
    /// A connect failure's retry is outside the budget: nothing was sent, the refusing
    /// endpoint is skipped from now on, so the retry adds no load to a struggling backend (it
    /// is nginx's `proxy_next_upstream error`, which has no budget either).
    fn may_retry(
        &mut self,
        route: &Route,
        plan: &RetryPlan,
        tries: u32,
        reason: RetryReason,
        repeatable: bool,
    ) -> bool {
        if tries >= plan.attempts || !repeatable || !reason.allowed_by(plan.on) {
            return false;
        }
        if reason != RetryReason::ConnectFailure {
            let granted = self
                .worker
                .selector
                .borrow_mut()
                .take_retry(self.route, plan.budget_percent);
            if !granted {
                return false;
            }
            self.budgeted += 1;
        }
        self.retries += 1;
        route.metrics.retry(self.worker.id, reason.label());
        true
    }

    /// Waits the backoff before retry number `self.retries`.
    async fn backoff(&self, plan: &RetryPlan) {
        let random = self.worker.selector.borrow_mut().next_random();
        let ms = plan.backoff.delay_ms(self.retries, random);
        if ms > 0 {
            monoio::time::sleep(Duration::from_millis(ms)).await;
        }
    }
}

impl Drop for RouteFlight<'_> {
    fn drop(&mut self) {
        self.worker
            .selector
            .borrow_mut()
            .request_done(self.route, self.budgeted);
    }
}

/// Draws the per-request random values the route's security features need: the challenge
/// state (unless the canonical path is excluded) and the tokens' `jti`s. No syscall: the
/// worker's CSPRNG.
fn draw_security(worker: &Worker, ctx: &mut RequestCtx<'_>) {
    let Some(route) = ctx.route else { return };
    if route.challenge.is_none() && route.info_token.is_none() {
        return;
    }
    let mut rng = worker.rng.borrow_mut();
    if let Some(ch) = &route.challenge {
        if ch.applies(ctx.canonical_path()) {
            rng.fill_state(&mut ctx.security.state);
            rng.fill_jti(&mut ctx.security.state_jti);
            ctx.security.challenge_sent = true;
        }
    }
    if route.info_token.is_some() {
        rng.fill_jti(&mut ctx.security.info_jti);
    }
}

/// Streams the rest of the request body to the upstream (`100 Continue` was answered, when
/// asked for, before the upstream connection was taken). A failure is answered with close:
/// the body's end is unknown.
async fn send_request_body<D: Downstream>(
    down: &mut D,
    ctx: &mut RequestCtx<'_>,
    up: &mut UpstreamConn<UpStream>,
    framing: Framing,
    limits: &RuntimeLimits,
    clock: BodyClock,
) -> Result<(), ProxyError> {
    let opts = PumpOptions {
        read_timeout: limits.body_timeout,
        write_timeout: limits.upstream_timeout,
        max_bytes: ctx.max_body_bytes(),
        buffer_bytes: BODY_BUFFER_BYTES,
        chunked: ChunkedMode::Rechunk,
        min_rate: Some(clock),
        // A slow upstream reader is bounded by `upstream_timeout` per write.
        min_send_rate: None,
    };
    let n = down
        .send_body(&mut up.stream, framing, &mut ctx.bufs.scratch, opts)
        .await
        .map_err(|e| ProxyError::from_request_body(&e))?;
    ctx.rec.bytes_in += n;
    ctx.body_done = true;
    Ok(())
}

/// Reads the upstream's response head (skipping interim 1xx answers; a `101` only when a
/// WebSocket upgrade was asked for) into `up.buf`.
/// `retry` is whether a failure before any response byte may be retried.
async fn read_response_head(
    up: &mut UpstreamConn<UpStream>,
    ctx: &mut RequestCtx<'_>,
    limits: &RuntimeLimits,
    timeout: Duration,
    retry: bool,
) -> Result<ResponseHead, ProxyError> {
    let cap = limits.head.max_head_bytes + 1;
    let deadline = Instant::now() + timeout;
    loop {
        if !up.buf.is_empty() {
            match parse_response_head(
                up.buf.data(),
                &limits.head,
                ctx.head.method,
                &mut ctx.bufs.resp_headers,
            ) {
                Ok(Some(resp)) if resp.status == 101 && ctx.upgrade.is_none() => {
                    // Torii asked for no upgrade (`Upgrade` is hop-by-hop unless phase 4b
                    // admitted a WebSocket one), so a 101 is a protocol error: nothing is
                    // tunnelled (a tunnel only after a 101 Torii asked for).
                    return Err(ProxyError::bad_response("upstream.unexpected_101"));
                }
                // A 101 answering the WebSocket upgrade Torii asked for: phases 6 and 7 check
                // it before anything is tunnelled.
                Ok(Some(resp)) if resp.status == 101 => return Ok(resp),
                Ok(Some(resp)) if resp.status < 200 => {
                    up.buf.consume(resp.head_len);
                    continue;
                }
                Ok(Some(resp)) => return Ok(resp),
                Ok(None) if up.buf.len() >= cap => {
                    return Err(ProxyError::bad_response("upstream.head_too_large"))
                }
                Ok(None) => {}
                Err(_) => return Err(ProxyError::bad_response("upstream.invalid_head")),
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ProxyError::response_timeout());
        }
        let had_bytes = !up.buf.is_empty();
        match up.buf.fill_timeout(&mut up.stream, cap, left).await {
            Ok(0) if had_bytes => return Err(ProxyError::bad_response("upstream.closed_mid_head")),
            Ok(0) => {
                let eof = io::Error::from(io::ErrorKind::UnexpectedEof);
                return Err(ProxyError::before_response(&eof, retry));
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                return Err(ProxyError::response_timeout())
            }
            Err(_) if had_bytes => return Err(ProxyError::bad_response("upstream.reset_mid_head")),
            Err(e) => return Err(ProxyError::before_response(&e, retry)),
        }
    }
}
