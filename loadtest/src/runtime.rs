//! The generator's per-thread monoio runtime: io_uring when the kernel allows it, epoll otherwise.
//!
//! A copy of the small driver-selection piece of `torii-engine`'s runtime module, so this crate
//! does not depend on the engine's internals. It owns runtime construction only; it spawns no
//! threads and binds no sockets.

use std::future::Future;
use std::io;

use monoio::time::TimeDriver;
use monoio::{IoUringDriver, LegacyDriver, RuntimeBuilder};

/// Submission-queue entries of each generator thread's io_uring.
const URING_ENTRIES: u32 = 1024;

/// A generator thread's runtime, on whichever driver could be built.
pub enum AnyRuntime {
    /// io_uring.
    Uring(monoio::Runtime<TimeDriver<IoUringDriver>>),
    /// epoll (monoio's "legacy" driver).
    Legacy(monoio::Runtime<TimeDriver<LegacyDriver>>),
}

impl std::fmt::Debug for AnyRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.driver_name())
    }
}

impl AnyRuntime {
    /// Builds io_uring when the kernel supports it (and `MONOIO_FORCE_LEGACY_DRIVER` is not
    /// set), falling back to epoll when the probe fails or building the ring fails (seccomp,
    /// memlock limits). Called once per generator thread.
    pub fn build() -> io::Result<Self> {
        if monoio::utils::detect_uring() {
            if let Ok(rt) = RuntimeBuilder::<IoUringDriver>::new()
                .with_entries(URING_ENTRIES)
                .enable_timer()
                .build()
            {
                return Ok(AnyRuntime::Uring(rt));
            }
        }
        let rt = RuntimeBuilder::<LegacyDriver>::new()
            .enable_timer()
            .build()?;
        Ok(AnyRuntime::Legacy(rt))
    }

    /// `io_uring` or `epoll`.
    pub fn driver_name(&self) -> &'static str {
        match self {
            AnyRuntime::Uring(_) => "io_uring",
            AnyRuntime::Legacy(_) => "epoll",
        }
    }

    /// Runs `fut` to completion on this runtime.
    pub fn block_on<F: Future>(&mut self, fut: F) -> F::Output {
        match self {
            AnyRuntime::Uring(rt) => rt.block_on(fut),
            AnyRuntime::Legacy(rt) => rt.block_on(fut),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runtime_can_be_built_and_runs_a_timer() {
        let mut rt = AnyRuntime::build().expect("runtime");
        assert!(matches!(rt.driver_name(), "io_uring" | "epoll"));
        let v = rt.block_on(async {
            monoio::time::sleep(std::time::Duration::from_millis(1)).await;
            41 + 1
        });
        assert_eq!(v, 42);
    }
}
