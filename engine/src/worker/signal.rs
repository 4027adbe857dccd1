//! A worker-local signal that tasks wait on: "drain has started" (idle connections and
//! tunnels wake and close), "a new snapshot was loaded" (open tunnels check their admission
//! again), "this HTTP/2 connection is gone" (its stream tasks stop).
//!
//! Owns the waker list of one worker. No atomics and no locks: the worker's tick polls the
//! process-wide state and fires the signal; every task waiting on it then wakes. A signal
//! counts how often it fired, so a waiter can wait for the first firing ([`Signal::wait`]) or
//! for the next one after what it saw ([`Signal::wait_past`]). Waiters deregister on drop, so
//! the list does not grow with the number of requests served.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// A signal for the tasks of a single worker thread.
#[derive(Debug, Default)]
pub struct Signal {
    fired: Cell<u64>,
    slots: RefCell<Vec<Option<Waker>>>,
    free: RefCell<Vec<usize>>,
}

impl Signal {
    /// True once [`Signal::fire`] was called.
    pub fn is_fired(&self) -> bool {
        self.fired.get() > 0
    }

    /// How many times the signal fired.
    pub fn count(&self) -> u64 {
        self.fired.get()
    }

    /// Fires the signal and wakes every waiter.
    pub fn fire(&self) {
        self.fired.set(self.fired.get() + 1);
        let wakers: Vec<Waker> = self
            .slots
            .borrow_mut()
            .iter_mut()
            .filter_map(Option::take)
            .collect();
        for w in wakers {
            w.wake();
        }
    }

    /// A future that completes once the signal has fired (at once if it already did).
    pub fn wait(&self) -> SignalWait<'_> {
        self.wait_past(0)
    }

    /// A future that completes once the signal has fired more than `seen` times
    /// ([`Signal::count`] when the waiter last looked).
    pub fn wait_past(&self, seen: u64) -> SignalWait<'_> {
        SignalWait {
            signal: self,
            seen,
            slot: None,
        }
    }

    fn register(&self, slot: &mut Option<usize>, waker: &Waker) {
        let mut slots = self.slots.borrow_mut();
        match *slot {
            Some(i) => {
                if let Some(entry) = slots.get_mut(i) {
                    *entry = Some(waker.clone());
                }
            }
            None => {
                let i = match self.free.borrow_mut().pop() {
                    Some(i) => {
                        slots[i] = Some(waker.clone());
                        i
                    }
                    None => {
                        slots.push(Some(waker.clone()));
                        slots.len() - 1
                    }
                };
                *slot = Some(i);
            }
        }
    }

    fn release(&self, i: usize) {
        if let Some(entry) = self.slots.borrow_mut().get_mut(i) {
            *entry = None;
        }
        self.free.borrow_mut().push(i);
    }

    /// Number of registered waiters (for tests and metrics).
    pub fn waiters(&self) -> usize {
        self.slots.borrow().iter().filter(|s| s.is_some()).count()
    }
}

/// Future returned by [`Signal::wait`] and [`Signal::wait_past`].
#[derive(Debug)]
pub struct SignalWait<'a> {
    signal: &'a Signal,
    seen: u64,
    slot: Option<usize>,
}

impl Future for SignalWait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.signal.count() > this.seen {
            return Poll::Ready(());
        }
        this.signal.register(&mut this.slot, cx.waker());
        Poll::Pending
    }
}

impl Drop for SignalWait<'_> {
    fn drop(&mut self) {
        if let Some(i) = self.slot.take() {
            self.signal.release(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn waiters_deregister_and_fire_wakes() {
        let sig = Signal::default();
        let counter = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);
        for _ in 0..100 {
            let mut w = Box::pin(sig.wait());
            assert!(w.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(sig.waiters(), 0, "dropped waiters must deregister");
        let mut w = Box::pin(sig.wait());
        assert!(w.as_mut().poll(&mut cx).is_pending());
        assert!(w.as_mut().poll(&mut cx).is_pending());
        assert_eq!(sig.waiters(), 1);
        sig.fire();
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        assert!(w.as_mut().poll(&mut cx).is_ready());
        assert!(sig.slots.borrow().len() <= 1);
    }

    #[test]
    fn wait_past_completes_on_the_next_firing_only() {
        let sig = Signal::default();
        let counter = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);
        sig.fire();
        assert!(Box::pin(sig.wait()).as_mut().poll(&mut cx).is_ready());
        let seen = sig.count();
        let mut next = Box::pin(sig.wait_past(seen));
        assert!(next.as_mut().poll(&mut cx).is_pending(), "already seen");
        sig.fire();
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        assert!(next.as_mut().poll(&mut cx).is_ready());
        assert_eq!(sig.count(), seen + 1);
        assert!(Box::pin(sig.wait_past(seen))
            .as_mut()
            .poll(&mut cx)
            .is_ready());
    }
}
