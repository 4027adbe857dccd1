//! A backend that holds requests until the test releases them, and says when one arrived: the
//! event a test waits for instead of assuming that a request is in flight after a fixed sleep
//! (which a busy machine breaks; docs/testing.md "Timing tests on a busy machine").
#![allow(dead_code, clippy::unwrap_used)]

use std::io::Write;
use std::net::SocketAddr;
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::{raw_backend, read_request};

/// The longest a held request waits for its release: a test that forgets to release fails on
/// its own read timeout rather than hanging.
const HOLD_AT_MOST: Duration = Duration::from_secs(30);

/// A running held backend.
pub struct HeldBackend {
    pub addr: SocketAddr,
    arrived: Mutex<Receiver<String>>,
    released: Arc<(Mutex<bool>, Condvar)>,
}

/// Starts a backend that answers `200 held` to every request, after holding those whose path
/// starts with `/hold` until [`HeldBackend::release`].
pub fn held_backend() -> HeldBackend {
    let (tx, rx) = channel::<String>();
    let tx = Mutex::new(tx);
    let released: Arc<(Mutex<bool>, Condvar)> = Arc::default();
    let gate = released.clone();
    let b = raw_backend(move |_, mut s, log| {
        let mut buf = Vec::new();
        while let Some(req) = read_request(&mut s, &mut buf, log) {
            let line = String::from_utf8_lossy(&req)
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned();
            let path = line.split(' ').nth(1).unwrap_or_default().to_owned();
            if path.starts_with("/hold") {
                let _ = tx.lock().unwrap().send(path);
                let (lock, cv) = &*gate;
                let open = lock.lock().unwrap();
                let _ = cv
                    .wait_timeout_while(open, HOLD_AT_MOST, |open| !*open)
                    .unwrap();
            }
            if s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nheld")
                .is_err()
            {
                return;
            }
        }
    });
    HeldBackend {
        addr: b.addr,
        arrived: Mutex::new(rx),
        released,
    }
}

impl HeldBackend {
    /// Waits until a `/hold…` request reached the backend (it is then in flight in Torii);
    /// its path. Fails the test after `within`.
    pub fn wait_arrived(&self, within: Duration) -> String {
        let start = Instant::now();
        self.arrived
            .lock()
            .unwrap()
            .recv_timeout(within)
            .unwrap_or_else(|_| {
                panic!(
                    "no held request reached the backend in {:?}",
                    start.elapsed()
                )
            })
    }

    /// Lets every held request (and every later one) be answered.
    pub fn release(&self) {
        let (lock, cv) = &*self.released;
        *lock.lock().unwrap() = true;
        cv.notify_all();
    }
}
