//! The accept side of a worker: one accept loop per listener, the worker's tick, and the
//! worker's run until drain.
//!
//! Owns accepting (the per-worker `max_connections_per_worker` cap, lowered to what the
//! open-file limit allows when it is below the configuration's need, back-off when accept
//! fails), handing each connection to its serving task (plain HTTP — after a look for the
//! HTTP/2 preface with `gateway.h2c` — or a TLS handshake first),
//! the 50 ms tick that publishes pool sizes, flushes access-log lines and turns the process-wide
//! draining flag into the worker's drain signal, and closing listeners when draining starts.

use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use monoio::net::TcpListener;

use crate::server::conn::serve_client;
use crate::server::negotiate::serve_plain_sniffed;
use crate::server::tls_accept::serve_tls_client;
use crate::worker::{ConnGuard, Worker};

/// How often a worker looks at the process-wide draining flag.
const DRAIN_POLL: Duration = Duration::from_millis(50);

/// What a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    /// Plain HTTP; the address as configured in `gateway.http`.
    Http(std::net::SocketAddr),
    /// HTTPS; the address as configured in `gateway.https` (it selects the listener's TLS
    /// config, e.g. client-certificate authentication).
    Https(std::net::SocketAddr),
}

/// Runs a worker: one accept loop per listener (`kinds[i]` says what `listeners[i]` serves;
/// a listener without an entry is not served), plus the task that turns the process-wide draining flag
/// into this worker's drain signal. Returns once draining started and every client connection
/// of this worker has ended.
pub async fn run_gateway_worker(
    worker: Rc<Worker>,
    listeners: Vec<TcpListener>,
    kinds: &[ListenerKind],
) {
    let watcher = monoio::spawn(watch_drain(worker.clone()));
    let mut loops = Vec::with_capacity(listeners.len());
    for (listener, &kind) in listeners.into_iter().zip(kinds) {
        loops.push(monoio::spawn(accept_loop(worker.clone(), listener, kind)));
    }
    for handle in loops {
        handle.await;
    }
    watcher.await;
    worker.pool.borrow_mut().clear();
    worker.h2_clients.borrow_mut().clear();
    while worker.stats().active_connections.load(Ordering::Relaxed) > 0 {
        monoio::time::sleep(Duration::from_millis(10)).await;
    }
    worker.access_log.flush(&worker.shared.access_log);
}

/// The worker's tick: every [`DRAIN_POLL`] it publishes its pool size, hands its access-log
/// lines to the writer, tells its tunnels about a reload, and checks the process-wide
/// draining flag.
async fn watch_drain(worker: Rc<Worker>) {
    loop {
        let idle = worker.pool.borrow().idle_count();
        worker.stats().pool_idle.store(idle, Ordering::Relaxed);
        worker.access_log.flush(&worker.shared.access_log);
        worker.notice_reload();
        if worker.shared.is_draining() {
            break;
        }
        monoio::time::sleep(DRAIN_POLL).await;
    }
    worker.drain.fire();
}

/// Stops the kernel from completing new connections on `listener` right away. Dropping a
/// monoio listener on io_uring only closes its descriptor once the cancelled accept operation
/// completes, which leaves the port accepting for a while; `shutdown` on a listening socket
/// makes new connection attempts fail at once (and the pending accept return).
fn stop_listening(listener: &TcpListener) {
    // SAFETY: the descriptor is owned by `listener`, which outlives this call; shutdown does
    // not close it, so no other owner is affected.
    unsafe {
        libc::shutdown(listener.as_raw_fd(), libc::SHUT_RDWR);
    }
}

async fn accept_loop(worker: Rc<Worker>, listener: TcpListener, kind: ListenerKind) {
    loop {
        if worker.drain.is_fired() {
            stop_listening(&listener);
            return;
        }
        let max = worker
            .snapshot()
            .config
            .gateway
            .max_connections_per_worker
            .min(worker.shared.connection_cap.load(Ordering::Relaxed));
        if worker.stats().active_connections.load(Ordering::Relaxed) >= max {
            // Stop accepting until a connection ends: `max_connections_per_worker` is a hard cap,
            // and so is what the open-file limit allows.
            monoio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        let accepted = monoio::select! {
            r = listener.accept() => Some(r),
            _ = worker.drain.wait() => None,
        };
        match accepted {
            None => {
                stop_listening(&listener);
                return;
            }
            Some(Ok((stream, peer))) => {
                let guard = ConnGuard::new(worker.clone());
                let _ = stream.set_nodelay(true);
                match kind {
                    ListenerKind::Http(configured) => {
                        let snap = worker.snapshot();
                        let gateway = &snap.config.gateway;
                        let allow = gateway.underscores_in_headers.allows(configured);
                        if gateway.h2c {
                            monoio::spawn(serve_plain_sniffed(guard, stream, peer, allow));
                        } else {
                            let fd = stream.as_raw_fd();
                            monoio::spawn(serve_client(guard, stream, fd, peer, b"http", allow));
                        }
                    }
                    ListenerKind::Https(configured) => {
                        monoio::spawn(serve_tls_client(guard, stream, peer, configured));
                    }
                }
            }
            Some(Err(e)) => {
                tracing::warn!(worker = worker.id, error = %e, "accept failed");
                // Out of file descriptors and similar: back off instead of spinning.
                monoio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
