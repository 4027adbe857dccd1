//! What the sync thread remembers about each metered key between two exchanges with Redis, and
//! the arithmetic of one exchange: which deltas to push, and how to fold the global totals
//! that come back into the shared counters.
//!
//! Owns the bookkeeping that makes the counts add up across hosts without losing or doubling
//! a call. Per key and window kind it keeps the window it is about, the calls this host has
//! pushed in it (`own_pushed`) and the calls the other hosts made in it as last read
//! (`others`). A host's counter holds `own calls + others`, so the calls not yet pushed are
//! `counter − own_pushed − others`; after a push, Redis's total minus `own_pushed` is the new
//! `others`, and the counter is moved by the change (an atomic add that races safely with the
//! workers' increments). A failed exchange changes nothing: its deltas are still in the
//! counters and go with the next one (so memory is bounded: no queue). Deltas of a window that
//! ended before they could be pushed are dropped from that window's key (it is over; pushing
//! them would count them in the next window) but still go to the `global` total.
//!
//! No IO here (the `redis_store` module talks to Redis) and no clock (windows are parameters).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use torii_protocol::quota::Window;

use super::counter::{age, tag, Age, KeySlot};

/// One window kind's state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct KindState {
    /// The window (tag) the counts below are about; `None` before the first exchange.
    tag: Option<u32>,
    /// Calls of this host pushed to Redis in that window.
    own_pushed: u64,
    /// Calls of the other hosts in that window, as last read.
    others: u64,
}

/// What one exchange sends for one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Push {
    /// `INCRBY` deltas: throttling window, day, month, global total.
    pub deltas: [i64; 4],
    /// `PEXPIREAT` of the three windowed keys (their window's end, Unix ms), set when the key
    /// has no expiry yet.
    pub expire_at_ms: [u64; 3],
    tags: [u32; 3],
}

/// The sync's memory of one key.
#[derive(Debug)]
pub struct KeySync {
    slot: Arc<KeySlot>,
    kinds: [KindState; 3],
    total_pushed: u64,
    idle_rounds: u32,
    /// Set when the key left the configuration: one last push, then it is dropped.
    pub removed: bool,
}

impl KeySync {
    /// A key seen for the first time (its counts so far are all this host's).
    pub fn new(slot: Arc<KeySlot>) -> Self {
        Self {
            slot,
            kinds: [KindState::default(); 3],
            total_pushed: 0,
            idle_rounds: 0,
            removed: false,
        }
    }

    /// The key's counters.
    pub fn slot(&self) -> &Arc<KeySlot> {
        &self.slot
    }

    /// The deltas to push now, for the current `windows` (throttling window, day, month).
    pub fn plan(&mut self, windows: &[Window; 3]) -> Push {
        let counters = self.slot.windows();
        let mut deltas = [0i64; 4];
        let mut tags = [0u32; 3];
        for i in 0..3 {
            let current = tag(windows[i].id);
            tags[i] = current;
            let st = &mut self.kinds[i];
            if st.tag != Some(current) {
                // A new window: what was not pushed of the old one is dropped from its key.
                *st = KindState {
                    tag: Some(current),
                    own_pushed: 0,
                    others: 0,
                };
            }
            let (stored, count) = counters[i].load();
            if age(stored, current) == Age::Same {
                let accounted = st.own_pushed.saturating_add(st.others);
                let delta = i128::from(count) - i128::from(accounted);
                // Never take back more than this host pushed (an undo racing with a read).
                let floor = -i128::from(st.own_pushed);
                deltas[i] = i64::try_from(delta.max(floor)).unwrap_or(0);
            }
        }
        let total = self.slot.total.load(Ordering::Relaxed);
        deltas[3] = i64::try_from(total.saturating_sub(self.total_pushed)).unwrap_or(i64::MAX);
        Push {
            deltas,
            expire_at_ms: windows.map(|w| w.end_ms),
            tags,
        }
    }

    /// Whether the key takes part in this exchange: it has calls to push, it left the
    /// configuration, or it had local calls within the last `idle_limit` exchanges (its view of
    /// the other hosts is kept fresh while it is in use here; an idle key is refreshed by the
    /// exchange after its next call).
    pub fn wants_exchange(&mut self, push: &Push, idle_limit: u32) -> bool {
        if self.removed || push.deltas.iter().any(|d| *d != 0) {
            self.idle_rounds = 0;
            return true;
        }
        self.idle_rounds = self.idle_rounds.saturating_add(1);
        self.idle_rounds <= idle_limit
    }

    /// Folds in the totals Redis returned for `push` (the values after the `INCRBY`s).
    pub fn apply(&mut self, push: &Push, totals: [i64; 4]) {
        let counters = self.slot.windows();
        for i in 0..3 {
            let st = &mut self.kinds[i];
            if st.tag != Some(push.tags[i]) {
                continue;
            }
            st.own_pushed = st.own_pushed.saturating_add_signed(push.deltas[i]);
            let total = u64::try_from(totals[i]).unwrap_or(0);
            let others = total.saturating_sub(st.own_pushed);
            let change = i64::try_from(i128::from(others) - i128::from(st.others)).unwrap_or(0);
            counters[i].adjust(push.tags[i], change, st.own_pushed.saturating_add(others));
            st.others = others;
        }
        self.total_pushed = self
            .total_pushed
            .saturating_add(u64::try_from(push.deltas[3]).unwrap_or(0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use torii_protocol::quota::{throttling_window, utc_day, utc_month};

    const NOW: u64 = 1_709_208_000_000;

    fn windows(now: u64) -> [Window; 3] {
        [throttling_window(now, 10_000), utc_day(now), utc_month(now)]
    }

    fn count(slot: &KeySlot, now: u64) -> [u64; 3] {
        let w = windows(now);
        [
            slot.window.count(tag(w[0].id)),
            slot.daily.count(tag(w[1].id)),
            slot.monthly.count(tag(w[2].id)),
        ]
    }

    fn call(slot: &KeySlot, now: u64) {
        let w = windows(now);
        for (c, w) in slot.windows().iter().zip(&w) {
            let _ = c.try_increment(tag(w.id), None);
        }
        slot.total.fetch_add(1, Ordering::Relaxed);
    }

    /// A tiny Redis: per-kind totals, summed from every host's deltas.
    #[derive(Default)]
    struct Store([i64; 4]);

    impl Store {
        fn exchange(&mut self, push: &Push) -> [i64; 4] {
            for (t, d) in self.0.iter_mut().zip(push.deltas) {
                *t += d;
            }
            self.0
        }
    }

    #[test]
    fn two_hosts_converge_on_the_sum() {
        let (a, b) = (Arc::new(KeySlot::default()), Arc::new(KeySlot::default()));
        let (mut sa, mut sb) = (KeySync::new(a.clone()), KeySync::new(b.clone()));
        let mut redis = Store::default();
        for _ in 0..3 {
            call(&a, NOW);
        }
        for _ in 0..2 {
            call(&b, NOW);
        }
        let w = windows(NOW);
        let pa = sa.plan(&w);
        assert_eq!(pa.deltas, [3, 3, 3, 3]);
        sa.apply(&pa, redis.exchange(&pa));
        assert_eq!(count(&a, NOW), [3, 3, 3]); // nobody else yet
        let pb = sb.plan(&w);
        assert_eq!(pb.deltas, [2, 2, 2, 2]);
        sb.apply(&pb, redis.exchange(&pb));
        assert_eq!(count(&b, NOW), [5, 5, 5]);
        // A learns B's calls on its next exchange, with nothing of its own to push.
        let pa = sa.plan(&w);
        assert_eq!(pa.deltas, [0, 0, 0, 0]);
        sa.apply(&pa, redis.exchange(&pa));
        assert_eq!(count(&a, NOW), [5, 5, 5]);
        // Calls made between plan and apply are kept and pushed next time.
        call(&a, NOW);
        let pa = sa.plan(&w);
        call(&a, NOW);
        sa.apply(&pa, redis.exchange(&pa));
        assert_eq!(count(&a, NOW), [7, 7, 7]);
        let pa = sa.plan(&w);
        assert_eq!(pa.deltas, [1, 1, 1, 1]);
        sa.apply(&pa, redis.exchange(&pa));
        assert_eq!(redis.0, [7, 7, 7, 7]);
        assert_eq!(count(&a, NOW), [7, 7, 7]);
    }

    #[test]
    fn a_failed_exchange_loses_nothing() {
        let a = Arc::new(KeySlot::default());
        let mut s = KeySync::new(a.clone());
        let mut redis = Store::default();
        let w = windows(NOW);
        call(&a, NOW);
        let _lost = s.plan(&w); // the exchange fails: apply is never called
        call(&a, NOW);
        let p = s.plan(&w);
        assert_eq!(p.deltas, [2, 2, 2, 2]);
        s.apply(&p, redis.exchange(&p));
        assert_eq!(redis.0, [2, 2, 2, 2]);
    }

    #[test]
    fn an_ended_window_is_not_pushed_into_the_next_one() {
        let a = Arc::new(KeySlot::default());
        let mut s = KeySync::new(a.clone());
        let mut redis = Store::default();
        call(&a, NOW);
        let p = s.plan(&windows(NOW));
        s.apply(&p, redis.exchange(&p));
        call(&a, NOW + 1); // counted in the first throttling window, never pushed
                           // 10 s later, a new throttling window (same day and month).
        let later = NOW + 10_000;
        redis.0[0] = 0; // the `second` key expired in Redis
        let p = s.plan(&windows(later));
        assert_eq!(p.deltas, [0, 1, 1, 1]);
        s.apply(&p, redis.exchange(&p));
        assert_eq!(redis.0, [0, 2, 2, 2]);
        // The counter now stands in the new window.
        assert_eq!(count(&a, later), [0, 2, 2]);
        call(&a, later);
        let p = s.plan(&windows(later));
        assert_eq!(p.deltas, [1, 1, 1, 1]);
    }

    #[test]
    fn a_new_window_learns_what_others_did_before_the_first_local_call() {
        let a = Arc::new(KeySlot::default());
        let mut s = KeySync::new(a.clone());
        let mut redis = Store([4, 4, 4, 4]); // another host's calls
        let p = s.plan(&windows(NOW));
        s.apply(&p, redis.exchange(&p));
        assert_eq!(count(&a, NOW), [4, 4, 4]);
        let t = tag(windows(NOW)[0].id);
        assert_eq!(a.window.try_increment(t, Some(5)), Ok((t, 5)));
        assert!(a
            .window
            .try_increment(tag(windows(NOW)[0].id), Some(5))
            .is_err());
    }

    #[test]
    fn redis_losing_its_data_keeps_local_counts() {
        let a = Arc::new(KeySlot::default());
        let mut s = KeySync::new(a.clone());
        let mut redis = Store::default();
        for _ in 0..3 {
            call(&a, NOW);
        }
        let p = s.plan(&windows(NOW));
        s.apply(&p, redis.exchange(&p));
        redis.0 = [0; 4]; // flushed or restarted empty
        call(&a, NOW);
        let p = s.plan(&windows(NOW));
        s.apply(&p, redis.exchange(&p));
        assert_eq!(count(&a, NOW), [4, 4, 4]);
    }

    #[test]
    fn idle_keys_stop_being_exchanged() {
        let a = Arc::new(KeySlot::default());
        let mut s = KeySync::new(a.clone());
        let w = windows(NOW);
        let p = s.plan(&w);
        assert!(s.wants_exchange(&p, 2));
        assert!(s.wants_exchange(&p, 2));
        assert!(!s.wants_exchange(&p, 2));
        call(&a, NOW);
        let p = s.plan(&w);
        assert!(s.wants_exchange(&p, 2));
        s.removed = true;
        let idle = Push {
            deltas: [0; 4],
            ..p
        };
        assert!(s.wants_exchange(&idle, 0));
    }
}
