//! Process integration with the service manager: systemd readiness notifications and the
//! file-descriptor limit.
//!
//! Owns `sd_notify`, implemented by hand (no libsystemd): one datagram on the unix socket named
//! by `$NOTIFY_SOCKET` (a path, or an abstract name written `@name`); without the variable it
//! does nothing. And the start-up check of `RLIMIT_NOFILE`: the soft limit is raised to the hard
//! one, and a warning says when it is still below what the configuration may hold open
//! ([`descriptors_needed`]); a configuration that fits starts without a word.
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

/// Raises the soft `RLIMIT_NOFILE` to the hard limit, then warns when it is below
/// [`descriptors_needed`]. Returns the soft limit in force afterwards.
pub fn check_nofile_limit(config: &Config) -> Option<u64> {
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
    if now < needed {
        tracing::warn!(
            limit = now,
            needed,
            "open-file limit (RLIMIT_NOFILE) is below what this configuration may hold open: workers x (2 x max_connections_per_worker + listeners + 4) + 64; raise LimitNOFILE (systemd) or `ulimit -n`, or lower max_connections_per_worker or workers"
        );
    } else {
        tracing::debug!(limit = now, needed, "open-file limit");
    }
    Some(now)
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
        let limit = check_nofile_limit(&cfg).unwrap();
        let (soft, hard) = get_nofile().unwrap();
        assert_eq!(soft, limit, "the limit reported is the one in force");
        assert_eq!(soft, hard, "the soft limit was raised to the hard one");
        assert!(monotonic_usec() > 0);
    }
}
