//! A worker-local, one-shot "drain has started" signal that idle connections wait on.
//!
//! Owns the waker list of one worker. No atomics and no locks: the worker's control task polls
//! the process-wide draining flag and fires this signal; every idle keep-alive connection
//! waiting on it then wakes and closes. Waiters deregister on drop, so the list does not grow
//! with the number of requests served.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// One-shot signal for the tasks of a single worker thread.
#[derive(Debug, Default)]
pub struct DrainSignal {
    fired: Cell<bool>,
    slots: RefCell<Vec<Option<Waker>>>,
    free: RefCell<Vec<usize>>,
}

impl DrainSignal {
    /// True once [`DrainSignal::fire`] was called.
    pub fn is_fired(&self) -> bool {
        self.fired.get()
    }

    /// Fires the signal and wakes every waiter.
    pub fn fire(&self) {
        self.fired.set(true);
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

    /// A future that completes when the signal fires.
    pub fn wait(&self) -> DrainWait<'_> {
        DrainWait {
            signal: self,
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

/// Future returned by [`DrainSignal::wait`].
#[derive(Debug)]
pub struct DrainWait<'a> {
    signal: &'a DrainSignal,
    slot: Option<usize>,
}

impl Future for DrainWait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.signal.is_fired() {
            return Poll::Ready(());
        }
        this.signal.register(&mut this.slot, cx.waker());
        Poll::Pending
    }
}

impl Drop for DrainWait<'_> {
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
        let sig = DrainSignal::default();
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
}
