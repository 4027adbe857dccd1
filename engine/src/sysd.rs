//! Process integration with the service manager: systemd readiness notifications and the
//! file-descriptor limit.
//!
//! Owns `sd_notify`, implemented by hand (no libsystemd): one datagram on the unix socket named
//! by `$NOTIFY_SOCKET` (a path, or an abstract name written `@name`); without the variable it
//! does nothing. And the start-up check of `RLIMIT_NOFILE`: the soft limit is raised to the hard
//! one; when it is still below what the configuration may hold open ([`descriptors_needed`]),
//! the connections each worker holds are capped to what fits ([`connections_within`]) and one
//! line says so and how to raise the limit; a configuration that fits starts without a word.
//! Called by the control thread only; never on the request path.

use std::os::unix::net::UnixDatagram;

use crate::config::Config;

/// Sends `state` (newline-separated `KEY=VALUE` lines, e.g. `READY=1`) to the service manager
/// when `$NOTIFY_SOCKET` is set. Failures are logged at debug level and otherwise ignored: a
/// gateway must not stop because its supervisor is not listening.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = send(&path, state) {
        tracing::debug!(error = %e, "sd_notify failed");
    }
}

/// `RELOADING=1` with the `MONOTONIC_USEC` that systemd (253+) asks for with it.
pub fn notify_reloading() {
    notify(&format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()));
}

fn send(path: &std::ffi::OsStr, state: &str) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let sock = UnixDatagram::unbound()?;
    let bytes = path.as_bytes();
    match bytes.first() {
        Some(b'@') => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(&bytes[1..])?;
            sock.send_to_addr(state.as_bytes(), &addr)?;
        }
        Some(b'/') => {
            sock.send_to(state.as_bytes(), std::path::Path::new(path))?;
        }
        _ => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "NOTIFY_SOCKET is neither a path nor an abstract name",
            ))
        }
    }
    Ok(())
}

fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec on our stack; CLOCK_MONOTONIC always exists.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64) * 1_000_000 + (ts.tv_nsec as u64) / 1_000
}

/// Descriptors each worker holds besides connections: its listener sockets are counted apart;
/// this is its io_uring (or epoll) instance and its wake-up eventfd, with room to spare.
pub const PER_WORKER_RUNTIME_FDS: u64 = 4;

/// Descriptors for the rest of the process: standard streams, the admin listener, the access
/// log, the signal pipe, key and certificate files while they are read, the systemd socket.
pub const PROCESS_FDS_MARGIN: u64 = 64;

/// Descriptors the configuration may hold open at once (documented in `docs/operations.md`):
///
/// `workers × (2 × max_connections_per_worker + listeners + PER_WORKER_RUNTIME_FDS)
///  + PROCESS_FDS_MARGIN`
///
/// Each worker holds at most `max_connections_per_worker` client connections and, for each, at
/// most one upstream connection (a request in flight, a WebSocket tunnel, or one idle in the
/// keep-alive pool), hence the 2; every worker has its own `SO_REUSEPORT` socket per listener
/// address.
pub fn descriptors_needed(config: &Config) -> u64 {
    let workers = config.gateway.workers as u64;
    let connections = config.gateway.max_connections_per_worker as u64 * 2;
    let listeners = (config.gateway.http.len() + config.gateway.https.len()) as u64;
    workers * (connections + listeners + PER_WORKER_RUNTIME_FDS) + PROCESS_FDS_MARGIN
}

/// The soft and hard `RLIMIT_NOFILE`.
fn get_nofile() -> Option<(u64, u64)> {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `rl` is a valid, writable rlimit on our stack.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) };
    (rc == 0).then_some((rl.rlim_cur, rl.rlim_max))
}

/// Client connections one worker can hold within `limit` descriptors: the inverse of
/// [`descriptors_needed`] (each with its upstream connection), never below 1.
pub fn connections_within(limit: u64, config: &Config) -> usize {
    let workers = (config.gateway.workers as u64).max(1);
    let listeners = (config.gateway.http.len() + config.gateway.https.len()) as u64;
    let per_worker = limit.saturating_sub(PROCESS_FDS_MARGIN) / workers;
    let connections = per_worker.saturating_sub(listeners + PER_WORKER_RUNTIME_FDS) / 2;
    usize::try_from(connections).unwrap_or(usize::MAX).max(1)
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit. When the limit in force is below
/// [`descriptors_needed`], says once what the gateway does with it: each worker holds at most
/// [`connections_within`] client connections (the cap returned; the accept loops wait for a
/// connection to end past it, so that every client admitted can have its upstream connection),
/// and how to raise it. Logged at `info` when the hard limit is what stops it (only root or the
/// service manager can raise that), at `warn` when the soft limit could not be raised to the
/// hard one. `None` when the configuration fits (or the limit cannot be read).
pub fn check_nofile_limit(config: &Config) -> Option<usize> {
    let (soft, hard) = get_nofile()?;
    let mut now = soft;
    if soft < hard {
        let rl = libc::rlimit {
            rlim_cur: hard,
            rlim_max: hard,
        };
        // SAFETY: `rl` is a valid rlimit; raising the soft limit up to the hard one needs no
        // privilege and affects this process only.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rl) } == 0 {
            now = hard;
        }
    }
    let needed = descriptors_needed(config);
    if now >= needed {
        tracing::debug!(limit = now, needed, "open-file limit");
        return None;
    }
    let cap = connections_within(now, config);
    let max = config.gateway.max_connections_per_worker;
    let workers = config.gateway.workers;
    if now < hard {
        tracing::warn!(
            limit = now,
            hard,
            needed,
            "open-file limit (RLIMIT_NOFILE): the soft limit {now} could not be raised to the hard limit {hard}; each worker holds at most {cap} client connections (max_connections_per_worker is {max}), more wait in the listen backlog; start with `ulimit -n {hard}`"
        );
    } else {
        tracing::info!(
            limit = now,
            needed,
            "open-file limit (RLIMIT_NOFILE) {now} is the hard limit: each worker holds at most {cap} client connections, {} in all (max_connections_per_worker is {max}; {needed} descriptors would hold them all), more wait in the listen backlog; to hold them all, raise the hard limit (LimitNOFILE= in the systemd unit, `ulimit -Hn {needed}` as root) or lower max_connections_per_worker",
            cap.saturating_mul(workers)
        );
    }
    Some(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_reaches_a_path_socket() {
        let dir = std::env::temp_dir().join(format!("torii-sd-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let server = UnixDatagram::bind(&path).unwrap();
        send(path.as_os_str(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        assert!(send(std::ffi::OsStr::new("relative"), "X=1").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn notify_reaches_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("torii-sd-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let server = UnixDatagram::bind_addr(&addr).unwrap();
        send(std::ffi::OsStr::new(&format!("@{name}")), "STOPPING=1").unwrap();
        let mut buf = [0u8; 64];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
    }

    #[test]
    fn nofile_is_checked_and_the_need_is_counted() {
        let cfg = crate::config::load_str(
            "[gateway]\nworkers = 2\nhttp = [\"127.0.0.1:0\"]\nmax_connections_per_worker = 100\n",
            std::path::Path::new("."),
        )
        .unwrap();
        assert_eq!(descriptors_needed(&cfg), 2 * (200 + 1 + 4) + 64);
        let (_, hard_before) = get_nofile().unwrap();
        let cap = check_nofile_limit(&cfg);
        let (soft, hard) = get_nofile().unwrap();
        assert_eq!(hard, hard_before);
        assert_eq!(soft, hard, "the soft limit was raised to the hard one");
        assert_eq!(cap.is_some(), hard < descriptors_needed(&cfg));
        assert!(monotonic_usec() > 0);
    }

    /// The cap is the inverse of the need: the need of `n` connections per worker fits in its
    /// own limit and gives back `n`; one descriptor less gives `n - 1`.
    #[test]
    fn the_connections_within_a_limit_invert_the_need() {
        for (workers, listeners, max) in [(1, 1, 100), (2, 1, 10_000), (3, 2, 4_981), (8, 3, 7)] {
            let http: Vec<String> = (0..listeners)
                .map(|i| format!("\"127.0.0.1:{}\"", 9000 + i))
                .collect();
            let cfg = crate::config::load_str(
                &format!(
                    "[gateway]\nworkers = {workers}\nhttp = [{}]\nmax_connections_per_worker = {max}\n",
                    http.join(", ")
                ),
                std::path::Path::new("."),
            )
            .unwrap();
            let needed = descriptors_needed(&cfg);
            assert_eq!(
                connections_within(needed, &cfg),
                max,
                "{workers} {listeners}"
            );
            assert_eq!(
                connections_within(needed - 1, &cfg),
                max - 1,
                "{workers} {listeners}"
            );
        }
        let cfg = crate::config::load_str(
            "[gateway]\nworkers = 2\nhttp = [\"127.0.0.1:0\"]\n",
            std::path::Path::new("."),
        )
        .unwrap();
        // This machine's case: a hard limit of 20000 for the default 10000 per worker.
        assert_eq!(descriptors_needed(&cfg), 40_074);
        assert_eq!(connections_within(20_000, &cfg), 4_981);
        // Too few descriptors for one connection still lets each worker hold one.
        assert_eq!(connections_within(10, &cfg), 1);
    }
}
