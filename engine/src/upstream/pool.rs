//! Per-worker keep-alive pools of upstream connections.
//!
//! Owns idle upstream connections, keyed by the target's socket address and TLS identity (0 for
//! plain connections; see `tls::client::TargetTls::pool_id`), so a TLS connection is only reused
//! for the same server name, trust settings and client certificate. A pool lives in one
//! worker (no locks, no `Send`), outside the config snapshot, so a reload keeps it. A connection
//! enters the pool only after its response was read completely and cleanly; it leaves when it
//! is checked out, when it has been idle too long, or when the pool for that target is full.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::io::ReadBuf;

/// An upstream connection with its read buffer.
#[derive(Debug)]
pub struct UpstreamConn<S> {
    /// The transport.
    pub stream: S,
    /// Bytes read from the upstream and not yet consumed.
    pub buf: ReadBuf,
    /// True when this connection came out of the pool (it may have been closed by the peer).
    pub reused: bool,
    /// The target address (the pool key, with `pool_id`).
    pub addr: SocketAddr,
    /// TLS identity of the connection (0: plain).
    pub pool_id: u64,
}

struct Idle<S> {
    conn: UpstreamConn<S>,
    since: Instant,
}

/// Idle connections of one worker.
pub struct Pool<S> {
    idle: HashMap<(SocketAddr, u64), Vec<Idle<S>>>,
    idle_timeout: Duration,
    max_idle_per_target: usize,
}

impl<S> std::fmt::Debug for Pool<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("targets", &self.idle.len())
            .field("idle", &self.idle_count())
            .finish()
    }
}

impl<S> Pool<S> {
    /// An empty pool.
    pub fn new(idle_timeout: Duration, max_idle_per_target: usize) -> Self {
        Self {
            idle: HashMap::new(),
            idle_timeout,
            max_idle_per_target,
        }
    }

    /// Takes the most recently used idle connection to `addr` with TLS identity `pool_id`
    /// that is not too old.
    /// `usable` is asked about each candidate (a cheap check that the peer has not closed it
    /// or sent stray bytes); rejected ones are closed.
    pub fn checkout(
        &mut self,
        addr: SocketAddr,
        pool_id: u64,
        now: Instant,
        mut usable: impl FnMut(&S) -> bool,
    ) -> Option<UpstreamConn<S>> {
        let list = self.idle.get_mut(&(addr, pool_id))?;
        while let Some(idle) = list.pop() {
            if now.duration_since(idle.since) < self.idle_timeout && usable(&idle.conn.stream) {
                let mut conn = idle.conn;
                conn.reused = true;
                return Some(conn);
            }
            // Too old: dropped here, which closes it.
        }
        None
    }

    /// Returns a connection whose last response was read completely. It must hold no unread
    /// bytes: extra bytes mean the upstream sent more than it announced, and such a
    /// connection is never reused (docs/security.md §5).
    pub fn checkin(&mut self, mut conn: UpstreamConn<S>, now: Instant) -> bool {
        let key = (conn.addr, conn.pool_id);
        if !conn.buf.is_empty() {
            return false;
        }
        conn.buf.shrink_idle(8 * 1024);
        let list = self.idle.entry(key).or_default();
        if list.len() >= self.max_idle_per_target {
            return false;
        }
        list.push(Idle { conn, since: now });
        true
    }

    /// Number of idle connections held (all targets).
    pub fn idle_count(&self) -> usize {
        self.idle.values().map(Vec::len).sum()
    }

    /// Drops every idle connection (drain).
    pub fn clear(&mut self) {
        self.idle.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(data: &[u8]) -> UpstreamConn<u8> {
        UpstreamConn {
            stream: 0,
            buf: test_buf_with(data),
            reused: false,
            addr: "127.0.0.1:1".parse().unwrap(),
            pool_id: 0,
        }
    }

    fn test_buf_with(data: &[u8]) -> ReadBuf {
        let mut rb = ReadBuf::with_capacity(16);
        rb.test_extend(data);
        rb
    }

    #[test]
    fn checkout_returns_fresh_and_marks_reused() {
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut pool = Pool::new(Duration::from_secs(10), 2);
        let t0 = Instant::now();
        assert!(pool.checkin(conn(b""), t0));
        let c = pool.checkout(addr, 0, t0, |_| true).unwrap();
        assert!(c.reused);
        assert!(pool.checkout(addr, 0, t0, |_| true).is_none());
    }

    #[test]
    fn stale_connections_are_dropped() {
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut pool = Pool::new(Duration::from_secs(1), 2);
        let t0 = Instant::now();
        assert!(pool.checkin(conn(b""), t0));
        assert!(pool
            .checkout(addr, 0, t0 + Duration::from_secs(2), |_| true)
            .is_none());
    }

    #[test]
    fn tls_identity_is_part_of_the_key() {
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut pool = Pool::new(Duration::from_secs(10), 2);
        let t0 = Instant::now();
        let mut tls = conn(b"");
        tls.pool_id = 7;
        assert!(pool.checkin(tls, t0));
        assert!(pool.checkout(addr, 0, t0, |_| true).is_none());
        assert!(pool.checkout(addr, 8, t0, |_| true).is_none());
        assert!(pool.checkout(addr, 7, t0, |_| true).is_some());
    }

    #[test]
    fn leftover_bytes_and_cap_refuse_checkin() {
        let mut pool = Pool::new(Duration::from_secs(10), 1);
        let t0 = Instant::now();
        assert!(!pool.checkin(conn(b"extra"), t0));
        assert!(pool.checkin(conn(b""), t0));
        assert!(!pool.checkin(conn(b""), t0));
        assert_eq!(pool.idle_count(), 1);
    }
}
