//! Target selection for one worker: round-robin per route, skipping targets that recently
//! refused connections.
//!
//! Owns worker-local state only (no atomics shared between cores): the round-robin cursor of
//! each route and the "down until" mark of each target address. Cursors are reset when the
//! config snapshot changes, since route indexes may then mean other routes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long a target that refused a connection is skipped.
pub const DOWN_FOR: Duration = Duration::from_secs(5);

/// Worker-local target selection state.
#[derive(Debug, Default)]
pub struct Selector {
    snapshot_version: u64,
    cursors: Vec<usize>,
    down_until: HashMap<SocketAddr, Instant>,
}

impl Selector {
    /// Returns the order in which to try the `targets` of route `route` (indexes into
    /// `targets`), written into `order`: round-robin start, targets marked down moved to the
    /// end (they are tried only when every other one failed).
    pub fn order(
        &mut self,
        snapshot_version: u64,
        route: usize,
        targets: &[SocketAddr],
        now: Instant,
        order: &mut Vec<usize>,
    ) {
        if self.snapshot_version != snapshot_version {
            self.snapshot_version = snapshot_version;
            self.cursors.clear();
        }
        if self.cursors.len() <= route {
            self.cursors.resize(route + 1, 0);
        }
        order.clear();
        let n = targets.len();
        if n == 0 {
            return;
        }
        let start = self.cursors[route] % n;
        self.cursors[route] = self.cursors[route].wrapping_add(1);
        let mut deferred = 0;
        for i in 0..n {
            let idx = (start + i) % n;
            if self.is_down(targets[idx], now) {
                deferred += 1;
            } else {
                order.push(idx);
            }
        }
        if deferred > 0 {
            for i in 0..n {
                let idx = (start + i) % n;
                if self.is_down(targets[idx], now) {
                    order.push(idx);
                }
            }
        }
    }

    fn is_down(&self, addr: SocketAddr, now: Instant) -> bool {
        self.down_until.get(&addr).is_some_and(|until| *until > now)
    }

    /// Marks `addr` as refusing connections for [`DOWN_FOR`].
    pub fn mark_down(&mut self, addr: SocketAddr, now: Instant) {
        if self.down_until.len() > 4096 {
            self.down_until.retain(|_, until| *until > now);
        }
        self.down_until.insert(addr, now + DOWN_FOR);
    }

    /// Clears the mark of `addr` after a successful connection.
    pub fn mark_up(&mut self, addr: SocketAddr) {
        if !self.down_until.is_empty() {
            self.down_until.remove(&addr);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(n: u16) -> Vec<SocketAddr> {
        (1..=n)
            .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
            .collect()
    }

    #[test]
    fn round_robin_rotates() {
        let mut sel = Selector::default();
        let t = addrs(3);
        let now = Instant::now();
        let mut order = Vec::new();
        let mut firsts = Vec::new();
        for _ in 0..6 {
            sel.order(1, 0, &t, now, &mut order);
            assert_eq!(order.len(), 3);
            firsts.push(order[0]);
        }
        assert_eq!(firsts, vec![0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn down_targets_go_last_and_come_back() {
        let mut sel = Selector::default();
        let t = addrs(2);
        let now = Instant::now();
        let mut order = Vec::new();
        sel.mark_down(t[0], now);
        for _ in 0..4 {
            sel.order(1, 0, &t, now, &mut order);
            assert_eq!(order, vec![1, 0]);
        }
        sel.order(
            1,
            0,
            &t,
            now + DOWN_FOR + Duration::from_millis(1),
            &mut order,
        );
        assert_eq!(order.len(), 2);
        sel.mark_up(t[0]);
        assert!(!sel.is_down(t[0], now));
    }

    #[test]
    fn cursors_reset_on_new_snapshot() {
        let mut sel = Selector::default();
        let t = addrs(2);
        let now = Instant::now();
        let mut order = Vec::new();
        sel.order(1, 0, &t, now, &mut order);
        sel.order(2, 0, &t, now, &mut order);
        assert_eq!(order[0], 0);
    }
}
