//! The per-key counters: one atomic word per window kind, holding the window's tag and its
//! count together, so that a window change and an increment are one compare-and-swap.
//!
//! Owns the packing (24-bit window tag, 40-bit count), the admission increment (exact under any
//! concurrency: an increment never takes the count past the limit), its undo, and the
//! adjustment the Redis sync applies. Lock-free; each [`KeySlot`] is aligned to a cache line so
//! two hot keys never share one. It must not read a clock, allocate or know about Redis.

use std::sync::atomic::{AtomicU64, Ordering};

/// Bits of the count (the low part of the word).
const COUNT_BITS: u32 = 40;
/// Largest count a window holds; `MAX_QUOTA` in the config is the same number.
pub const MAX_COUNT: u64 = (1 << COUNT_BITS) - 1;
/// Window tags are window ids modulo 2^24.
const TAG_MASK: u64 = (1 << 24) - 1;

/// A window id reduced to a tag.
#[inline]
pub fn tag(window_id: u64) -> u32 {
    (window_id & TAG_MASK) as u32
}

#[inline]
fn pack(tag: u32, count: u64) -> u64 {
    (u64::from(tag) << COUNT_BITS) | count.min(MAX_COUNT)
}

#[inline]
fn unpack(word: u64) -> (u32, u64) {
    ((word >> COUNT_BITS) as u32, word & MAX_COUNT)
}

/// How a stored tag compares with the caller's: tags are ids modulo 2^24, so "older" means
/// less than half the tag space behind (a window unused for 2^23 windows reads as a new one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Age {
    /// The caller's window.
    Same,
    /// An earlier window: its count no longer applies.
    Older,
    /// A later window (another thread's clock is a little ahead): count into it.
    Newer,
}

/// How `stored` compares with `current`.
#[inline]
pub fn age(stored: u32, current: u32) -> Age {
    if stored == current {
        return Age::Same;
    }
    let behind = u64::from(current.wrapping_sub(stored)) & TAG_MASK;
    if behind < (1 << 23) {
        Age::Older
    } else {
        Age::Newer
    }
}

/// [`age`] of a stored `(tag, count)`, where an empty counter (count 0, for example a new
/// one, whose tag 0 means nothing) always counts as older: the caller's window replaces it.
#[inline]
fn age_of(stored: u32, count: u64, current: u32) -> Age {
    match age(stored, current) {
        Age::Newer if count == 0 => Age::Older,
        a => a,
    }
}

/// The count of one window kind of one key: `(tag, count)` in one `AtomicU64`.
#[derive(Debug, Default)]
pub struct WindowCounter(AtomicU64);

impl WindowCounter {
    /// The raw `(tag, count)` as stored.
    #[inline]
    pub fn load(&self) -> (u32, u64) {
        unpack(self.0.load(Ordering::Acquire))
    }

    /// Calls counted in window `tag` (0 when the stored window is older).
    #[inline]
    pub fn count(&self, tag: u32) -> u64 {
        let (stored, count) = self.load();
        match age_of(stored, count, tag) {
            Age::Older => 0,
            Age::Same | Age::Newer => count,
        }
    }

    /// Counts one call in window `tag` unless that would pass `limit` (`None`: no limit).
    /// Returns the window it was counted in (`tag`, or a newer one another thread already
    /// moved to) and the count after the call, or `Err(count)` when the window is full. An
    /// older stored window is replaced by this one (count starting at 1).
    #[inline]
    pub fn try_increment(&self, tag: u32, limit: Option<u64>) -> Result<(u32, u64), u64> {
        let limit = limit.unwrap_or(MAX_COUNT).min(MAX_COUNT);
        let mut word = self.0.load(Ordering::Acquire);
        loop {
            let (stored, count) = unpack(word);
            let (keep, base) = match age_of(stored, count, tag) {
                Age::Older => (tag, 0),
                Age::Same | Age::Newer => (stored, count),
            };
            if base >= limit {
                return Err(base);
            }
            let next = pack(keep, base + 1);
            match self
                .0
                .compare_exchange_weak(word, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok((keep, base + 1)),
                Err(seen) => word = seen,
            }
        }
    }

    /// Takes back one call counted by [`Self::try_increment`] in window `tag` (the window it
    /// returned; another limit refused the call). Nothing happens when the window has changed
    /// since.
    #[inline]
    pub fn undo(&self, tag: u32) {
        let mut word = self.0.load(Ordering::Acquire);
        loop {
            let (stored, count) = unpack(word);
            if stored != tag || count == 0 {
                return;
            }
            let next = pack(stored, count - 1);
            match self
                .0
                .compare_exchange_weak(word, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(seen) => word = seen,
            }
        }
    }

    /// The sync's update for window `tag`: adds `delta` (the change in what other hosts
    /// counted) when the stored window is `tag`; stores `(tag, reset_to)` when it is older (no
    /// call was counted here in `tag` yet). Does nothing when the stored window is newer.
    /// Returns the count left, or `None` when nothing was changed.
    pub fn adjust(&self, tag: u32, delta: i64, reset_to: u64) -> Option<u64> {
        let mut word = self.0.load(Ordering::Acquire);
        loop {
            let (stored, count) = unpack(word);
            let next_count = match age_of(stored, count, tag) {
                Age::Same => count.saturating_add_signed(delta),
                Age::Older => reset_to,
                Age::Newer => return None,
            };
            let next = pack(tag, next_count);
            match self
                .0
                .compare_exchange_weak(word, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Some(next_count.min(MAX_COUNT)),
                Err(seen) => word = seen,
            }
        }
    }
}

/// The counters of one key, shared by every worker and kept across reloads. Aligned to a cache
/// line: the three window words and the total fit in one line that no other key uses.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct KeySlot {
    /// Calls in the throttling window.
    pub window: WindowCounter,
    /// Calls in the UTC day.
    pub daily: WindowCounter,
    /// Calls in the UTC month.
    pub monthly: WindowCounter,
    /// Calls counted on this host since it started (never reset; Otoroshi's `global` counter).
    pub total: AtomicU64,
}

impl KeySlot {
    /// The three window counters in kind order (window, daily, monthly).
    pub fn windows(&self) -> [&WindowCounter; 3] {
        [&self.window, &self.daily, &self.monthly]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_fill_their_own_cache_line() {
        assert_eq!(std::mem::align_of::<KeySlot>(), 64);
        assert_eq!(std::mem::size_of::<KeySlot>(), 64);
    }

    #[test]
    fn packing_round_trips() {
        for (t, c) in [(0, 0), (1, 1), (TAG_MASK as u32, MAX_COUNT), (77, 12_345)] {
            assert_eq!(unpack(pack(t, c)), (t, c));
        }
        assert_eq!(unpack(pack(3, u64::MAX)), (3, MAX_COUNT));
        assert_eq!(tag(TAG_MASK + 5), 4);
    }

    #[test]
    fn ages_wrap_around_the_tag_space() {
        assert_eq!(age(5, 5), Age::Same);
        assert_eq!(age(4, 5), Age::Older);
        assert_eq!(age(6, 5), Age::Newer);
        assert_eq!(age(TAG_MASK as u32, 0), Age::Older); // wrapped
        assert_eq!(age(0, TAG_MASK as u32), Age::Newer);
    }

    #[test]
    fn a_limit_of_n_admits_n_and_refusals_do_not_count() {
        let c = WindowCounter::default();
        for i in 1..=3 {
            assert_eq!(c.try_increment(9, Some(3)), Ok((9, i)));
        }
        assert_eq!(c.try_increment(9, Some(3)), Err(3));
        assert_eq!(c.try_increment(9, Some(3)), Err(3));
        assert_eq!(c.count(9), 3);
        // Zero admits nothing.
        assert_eq!(WindowCounter::default().try_increment(1, Some(0)), Err(0));
        // No limit: counts.
        assert_eq!(c.try_increment(9, None), Ok((9, 4)));
    }

    #[test]
    fn a_new_window_starts_from_zero_and_a_newer_one_is_kept() {
        let c = WindowCounter::default();
        assert_eq!(c.try_increment(1, Some(2)), Ok((1, 1)));
        assert_eq!(c.try_increment(1, Some(2)), Ok((1, 2)));
        assert_eq!(c.count(2), 0);
        assert_eq!(c.try_increment(2, Some(2)), Ok((2, 1)));
        assert_eq!(c.load(), (2, 1));
        // A caller whose clock is behind counts into the newer window, never resets it.
        assert_eq!(c.try_increment(1, Some(2)), Ok((2, 2)));
        assert_eq!(c.load(), (2, 2));
        assert_eq!(c.count(1), 2);
    }

    #[test]
    fn a_fresh_counter_takes_any_window() {
        // Tag 0 of a new counter must not read as a later window than the caller's.
        for t in [1u32, 5_000_000, 9_000_000, TAG_MASK as u32] {
            let c = WindowCounter::default();
            assert_eq!(c.try_increment(t, Some(5)), Ok((t, 1)), "{t}");
            assert_eq!(c.load(), (t, 1));
            let d = WindowCounter::default();
            assert_eq!(d.adjust(t, 0, 4), Some(4), "{t}");
            assert_eq!(d.load(), (t, 4));
        }
    }

    #[test]
    fn undo_only_touches_its_window() {
        let c = WindowCounter::default();
        assert_eq!(c.try_increment(1, None), Ok((1, 1)));
        c.undo(1);
        assert_eq!(c.load(), (1, 0));
        c.undo(1); // never below zero
        assert_eq!(c.load(), (1, 0));
        assert_eq!(c.try_increment(2, None), Ok((2, 1)));
        c.undo(1); // the window moved on: nothing
        assert_eq!(c.load(), (2, 1));
    }

    #[test]
    fn adjust_adds_resets_or_leaves_newer_windows() {
        let c = WindowCounter::default();
        assert_eq!(c.try_increment(5, None), Ok((5, 1)));
        assert_eq!(c.adjust(5, 10, 0), Some(11));
        assert_eq!(c.adjust(5, -4, 0), Some(7));
        assert_eq!(c.adjust(5, -100, 0), Some(0));
        assert_eq!(c.adjust(6, 0, 42), Some(42));
        assert_eq!(c.load(), (6, 42));
        assert_eq!(c.adjust(5, 1, 1), None);
        assert_eq!(c.load(), (6, 42));
    }

    #[test]
    fn exact_under_contention() {
        let c = std::sync::Arc::new(WindowCounter::default());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    (0..10_000)
                        .filter(|_| c.try_increment(3, Some(25_000)).is_ok())
                        .count()
                })
            })
            .collect();
        let admitted: usize = threads.into_iter().map(|t| t.join().unwrap_or(0)).sum();
        assert_eq!(admitted, 25_000);
        assert_eq!(c.count(3), 25_000);
    }
}
