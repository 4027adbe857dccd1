//! Which IO driver the real binary runs on. The suite runs twice (`.ci/test`): once where
//! io_uring should be used and once with `MONOIO_FORCE_LEGACY_DRIVER=1`. Without this test a
//! machine refusing io_uring would silently turn the first run into a second epoll run; here
//! the driver and ring setup each worker logs at start must be the expected ones:
//! * `TORII_EXPECT_DRIVER` (`io_uring` or `epoll`), which `.ci/test` sets after probing the
//!   kernel itself (`.ci/probe-io-uring.py`); without it, `epoll` when
//!   `MONOIO_FORCE_LEGACY_DRIVER` is set and `io_uring` otherwise (a machine without io_uring
//!   must say so with `TORII_EXPECT_DRIVER=epoll`);
//! * on io_uring, the best setup of `TORII_EXPECT_RING_SETUPS` (`deferred` without it).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::process::{TempDir, Torii};

/// `(driver, ring_setup)` as the workers must log them.
fn expected() -> (&'static str, &'static str) {
    let forced = std::env::var("MONOIO_FORCE_LEGACY_DRIVER")
        .is_ok_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"));
    let driver = match std::env::var("TORII_EXPECT_DRIVER").ok().as_deref() {
        Some("io_uring") => "io_uring",
        Some("epoll") => "epoll",
        Some(other) => panic!("TORII_EXPECT_DRIVER={other:?}: expected io_uring or epoll"),
        None if forced => "epoll",
        None => "io_uring",
    };
    assert!(
        !(forced && driver == "io_uring"),
        "TORII_EXPECT_DRIVER=io_uring contradicts MONOIO_FORCE_LEGACY_DRIVER"
    );
    if driver == "epoll" {
        return (driver, "-");
    }
    let setups = std::env::var("TORII_EXPECT_RING_SETUPS")
        .unwrap_or_else(|_| "deferred,cooperative,plain".into());
    let best = ["deferred", "cooperative", "plain"]
        .into_iter()
        .find(|s| setups.split(',').any(|x| x.trim() == *s))
        .unwrap_or_else(|| panic!("TORII_EXPECT_DRIVER=io_uring but no ring setup expected"));
    (driver, best)
}

#[test]
fn workers_run_on_the_expected_driver() {
    let (driver, setup) = expected();
    let dir = TempDir::new("driver");
    let config = dir.write(
        "torii.toml",
        "[gateway]\nworkers = 2\nhttp = [\"127.0.0.1:0\"]\n",
    );
    // An empty TORII_URING_SETUP tries every setup, best first (the default).
    let torii = Torii::run_env(&config, &[("TORII_URING_SETUP", "")]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let started = loop {
        let lines: Vec<String> = torii
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("worker started"))
            .cloned()
            .collect();
        if lines.len() == 2 || Instant::now() > deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(started.len(), 2, "one start line per worker: {started:?}");
    for line in &started {
        assert!(
            line.contains(&format!("driver=\"{driver}\"")),
            "expected driver {driver}: {line}"
        );
        assert!(
            line.contains(&format!("ring_setup=\"{setup}\"")),
            "expected ring setup {setup}: {line}"
        );
    }
    eprintln!("workers on {driver} (ring setup {setup})");
}
