//! Keeps a panic contained by a tunnel out of stderr.
//!
//! Owns a process-wide panic hook, installed once, that stays silent for panics raised while a
//! tunnel polls one of its directions (a thread-local flag says so) and hands every other panic
//! to the hook that was there before. Such a panic comes from a peer's invalid TLS record (see
//! `pump::Flow::poll_pump`): printing a backtrace for each would let any client write to the
//! gateway's stderr at will. The tunnel logs the event itself, at debug level.

use std::cell::Cell;
use std::sync::Once;

thread_local! {
    /// True while this thread polls a tunnel direction.
    static IN_TUNNEL: Cell<bool> = const { Cell::new(false) };
}

static INSTALL: Once = Once::new();

/// Runs `f` (a poll) with panics silenced; the caller catches them.
pub fn quiet<T>(f: impl FnOnce() -> T) -> T {
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_TUNNEL.with(Cell::get) {
                previous(info);
            }
        }));
    });
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            IN_TUNNEL.with(|c| c.set(self.0));
        }
    }
    let _reset = Reset(IN_TUNNEL.with(|c| c.replace(true)));
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_is_set_only_inside_and_restored_after_a_panic() {
        assert!(!IN_TUNNEL.with(Cell::get));
        assert!(quiet(|| IN_TUNNEL.with(Cell::get)));
        let caught = std::panic::catch_unwind(|| quiet(|| panic!("contained")));
        assert!(caught.is_err());
        assert!(!IN_TUNNEL.with(Cell::get), "restored while unwinding");
    }
}
