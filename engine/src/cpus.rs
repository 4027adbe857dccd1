//! CPU placement: which CPUs the process may use, and pinning a thread to one of them.
//!
//! Owns the reading of the process's CPU mask (`sched_getaffinity` on the main thread: what
//! `taskset`, `systemd`'s `CPUAffinity=` or a container's cpuset allow) and the rule that puts
//! worker *i* on the *i*-th allowed CPU (wrapping when there are more workers than CPUs), so that
//! `taskset -c 4-7 torii run` keeps every worker on CPUs 4–7. The runtime pins workers with it and
//! the reuseport CPU-steering program maps CPUs back to workers with the same list; the config
//! uses the count. A failed pin is an optimisation lost, not an error: it is logged at `warn`
//! once per process. Start-up only; nothing here runs per request.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

/// The CPUs this process may run on, ascending: the main thread's affinity mask (threads
/// inherit it; the main thread is never pinned). Falls back to `0..available_parallelism` when
/// the mask cannot be read (more CPUs than a `cpu_set_t` holds).
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: `set` is a plain bitmask on our stack, zeroed by CPU_ZERO and filled by the
    // kernel; `getpid()` names the main thread, whose mask is the one the process started with.
    let (rc, set) = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        let rc = libc::sched_getaffinity(
            libc::getpid(),
            std::mem::size_of::<libc::cpu_set_t>(),
            &mut set,
        );
        (rc, set)
    };
    let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: `set` was initialised above; CPU_ISSET reads bit `cpu` < its size.
    let cpus: Vec<usize> = if rc == 0 {
        (0..max)
            .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
            .collect()
    } else {
        Vec::new()
    };
    if cpus.is_empty() {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        return (0..n).collect();
    }
    cpus
}

/// The CPU worker `worker` is pinned to: the `worker`-th of `allowed`, wrapping around.
pub fn worker_cpu(worker: usize, allowed: &[usize]) -> Option<usize> {
    if allowed.is_empty() {
        return None;
    }
    allowed.get(worker % allowed.len()).copied()
}

/// Pins the calling thread to `cpu`.
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
    if cpu >= max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("CPU {cpu} is beyond the {max} a cpu_set_t holds"),
        ));
    }
    // SAFETY: `set` is a plain bitmask on our stack, zeroed by CPU_ZERO before use, `cpu` is
    // within it (checked above), and sched_setaffinity(0, ...) only affects the calling thread.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Set once the first failed pin was logged.
static PIN_FAILURE_LOGGED: AtomicBool = AtomicBool::new(false);

/// Pins the calling thread, worker `worker`, to `cpu`; a failure is logged at `warn` for the
/// first worker that meets one (a cpuset that forbids it would fail them all alike), at
/// `debug` for the others. Returns whether the thread is pinned.
pub fn pin_worker(worker: usize, cpu: usize) -> bool {
    match pin_current_thread(cpu) {
        Ok(()) => true,
        Err(e) => {
            if PIN_FAILURE_LOGGED.swap(true, Ordering::Relaxed) {
                tracing::debug!(worker, cpu, error = %e, "could not pin worker");
            } else {
                tracing::warn!(worker, cpu, error = %e, "could not pin a worker to its CPU; workers run unpinned where pinning fails (gateway.pin_workers = false silences this)");
            }
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allowed_cpus_are_this_process_mask() {
        let cpus = allowed_cpus();
        assert!(!cpus.is_empty());
        assert!(cpus.windows(2).all(|w| w[0] < w[1]), "{cpus:?}");
        // std reads the calling thread's mask (and a cgroup quota, which may only lower it).
        let std_count = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert!(std_count <= cpus.len(), "{std_count} > {cpus:?}");
    }

    #[test]
    fn workers_take_the_allowed_cpus_in_order_and_wrap() {
        let allowed = [4, 5, 7];
        let got: Vec<_> = (0..5).filter_map(|w| worker_cpu(w, &allowed)).collect();
        assert_eq!(got, [4, 5, 7, 4, 5]);
        assert_eq!(worker_cpu(0, &[]), None);
    }

    #[test]
    fn pinning_moves_only_the_calling_thread() {
        let cpus = allowed_cpus();
        let last = cpus[cpus.len() - 1];
        let pinned =
            std::thread::spawn(move || pin_current_thread(last).map(|()| allowed_here())).join();
        assert!(
            matches!(pinned, Ok(Ok(ref c)) if c == &[last]),
            "{pinned:?}"
        );
        assert_eq!(allowed_cpus(), cpus, "the process mask is unchanged");
        assert!(pin_current_thread(1 << 20).is_err());
        assert!(
            !pin_worker(0, 1 << 20),
            "a failed pin is reported, not fatal"
        );
    }

    /// The calling thread's own mask.
    fn allowed_here() -> Vec<usize> {
        // SAFETY: as in `allowed_cpus`, for the calling thread (pid 0).
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_ZERO(&mut set);
            assert_eq!(
                libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set),
                0
            );
            (0..8 * std::mem::size_of::<libc::cpu_set_t>())
                .filter(|&c| libc::CPU_ISSET(c, &set))
                .collect()
        }
    }
}
