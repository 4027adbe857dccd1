//! The worker's count of WebSocket tunnels, for `limits.max_websocket_tunnels_per_worker`.
//!
//! Owns [`TunnelSlots`] and the [`TunnelSlot`] guard. A slot is taken when an upgrade request
//! is admitted, before anything is sent upstream, and held by the request, then by the tunnel
//! it becomes; dropping it (the backend refused, the handshake failed, the tunnel closed) gives
//! it back. Taking slots before the backend answers keeps the limit exact even when many
//! upgrades are in flight at once. Worker-local: a `Cell`, no atomics, no lock.

use std::cell::Cell;
use std::rc::Rc;

/// The slots of one worker.
#[derive(Debug, Default)]
pub struct TunnelSlots {
    taken: Rc<Cell<usize>>,
}

impl TunnelSlots {
    /// A slot, unless `max` are already taken (`None`: answer 503). Cost: one `Rc` clone.
    pub fn try_take(&self, max: usize) -> Option<TunnelSlot> {
        let n = self.taken.get();
        if n >= max {
            return None;
        }
        self.taken.set(n + 1);
        Some(TunnelSlot {
            taken: self.taken.clone(),
        })
    }

    /// Slots taken now: open tunnels plus upgrades waiting for the backend's answer.
    pub fn taken(&self) -> usize {
        self.taken.get()
    }
}

/// One taken slot; given back when dropped.
#[derive(Debug)]
pub struct TunnelSlot {
    taken: Rc<Cell<usize>>,
}

impl Drop for TunnelSlot {
    fn drop(&mut self) {
        self.taken.set(self.taken.get().saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_and_given_back() {
        let slots = TunnelSlots::default();
        let a = slots.try_take(2);
        let b = slots.try_take(2);
        assert!(a.is_some() && b.is_some());
        assert!(slots.try_take(2).is_none(), "the third is refused");
        assert_eq!(slots.taken(), 2);
        drop(a);
        assert_eq!(slots.taken(), 1);
        let c = slots.try_take(2);
        assert!(c.is_some());
        drop((b, c));
        assert_eq!(slots.taken(), 0);
        assert!(slots.try_take(0).is_none(), "0 refuses every upgrade");
    }
}
