//! The suite's child processes and scratch space: find a program on `PATH`, start it with a
//! guard that kills on drop, wait until a port accepts, pick free loopback ports, read a
//! process's CPU time from `/proc`, and a temporary directory removed on drop.
//!
//! Owns process lifetime only; what the processes are (mirror, gateway, nginx) is decided in
//! [`super`]. Every wait here is bounded in attempts and in time.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process killed (SIGKILL) and reaped when dropped, on success and on error alike.
#[derive(Debug)]
pub struct ProcGuard {
    /// Short name for messages.
    pub name: String,
    child: Child,
}

impl ProcGuard {
    /// Spawns `cmd` with stdout discarded and stderr sent to `log` (a file in the temp dir).
    /// The child also gets SIGTERM from the kernel if the suite dies without running its
    /// destructors (Ctrl-C, SIGKILL): `PR_SET_PDEATHSIG`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<ProcGuard, String> {
        let stderr = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        // SAFETY: the closure runs in the forked child before exec and only calls prctl(2),
        // which is async-signal-safe; it touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        Ok(ProcGuard {
            name: name.to_string(),
            child,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails when the process has already exited (it then did not start properly).
    pub fn check_alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!("{} exited early: {status}", self.name)),
            Err(e) => Err(format!("{}: {e}", self.name)),
        }
    }

    /// Waits until `addr` accepts connections (polling every 20 ms, up to `limit`), failing
    /// early if the process dies. `log` is quoted in the error to say why.
    pub fn wait_ready(
        &mut self,
        addr: SocketAddr,
        limit: Duration,
        log: &Path,
    ) -> Result<(), String> {
        let start = Instant::now();
        let attempts = limit.as_millis() / 20 + 1;
        for _ in 0..attempts {
            if let Err(e) = self.check_alive() {
                return Err(format!("{e}\n{}", tail(log)));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if start.elapsed() >= limit {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!(
            "{} did not listen on {addr} within {limit:?}\n{}",
            self.name,
            tail(log)
        ))
    }
}

/// How long a process gets to exit after SIGTERM before it is killed.
const TERM_GRACE: Duration = Duration::from_secs(3);

impl Drop for ProcGuard {
    /// SIGTERM (so nginx's master stops its workers), up to [`TERM_GRACE`] to exit, then
    /// SIGKILL; children it had (nginx workers) that outlive it are killed too.
    fn drop(&mut self) {
        let children = children_of(self.pid());
        if let Ok(pid) = i32::try_from(self.pid()) {
            // SAFETY: kill(2) on the pid of our own unreaped child: it cannot have been reused.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let polls = TERM_GRACE.as_millis() / 10;
        for _ in 0..polls {
            if !matches!(self.child.try_wait(), Ok(None)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // Errors mean the process is already gone; nothing else to do.
        let _ = self.child.kill();
        let _ = self.child.wait();
        for child in children {
            if proc_cpu_s(child).is_some() {
                if let Ok(pid) = i32::try_from(child) {
                    // SAFETY: kill(2) on a pid that was our child's child a moment ago; the
                    // window for reuse is the grace period above.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
    }
}

/// `name` on `PATH`, if any.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .take(256)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The last lines of a log file, for error messages.
pub fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(15);
    format!("--- {} ---\n{}", log.display(), lines[from..].join("\n"))
}

/// A loopback port free right now: bind 127.0.0.1:0, read the port, close.
pub fn free_port() -> Result<u16, String> {
    let l =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot bind 127.0.0.1:0: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("local_addr: {e}"))
}

/// User+system CPU seconds of process `pid` so far, from `/proc/PID/stat` (utime + stime);
/// `None` when the process is gone or the file is unreadable.
pub fn proc_cpu_s(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let ticks = parse_stat_cpu_ticks(&stat)?;
    Some(ticks as f64 / clock_ticks_per_s())
}

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line. The command name (field 2) is
/// in parentheses and may hold spaces, so fields are counted after the last `)`.
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state): utime is field 14 → index 11, stime index 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Parent pid (field 4) of a `/proc/PID/stat` line.
pub fn parse_stat_ppid(stat: &str) -> Option<u32> {
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

/// Pids whose parent is `pid` (nginx workers of a master), scanning `/proc` (bounded by the
/// number of processes listed, at most 100 000).
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.take(100_000)
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| parse_stat_ppid(&s))
                == Some(pid)
        })
        .collect()
}

/// Sum of [`proc_cpu_s`] over `pids` (processes that vanished count as zero).
pub fn total_cpu_s(pids: &[u32]) -> f64 {
    pids.iter().filter_map(|&p| proc_cpu_s(p)).sum()
}

fn clock_ticks_per_s() -> f64 {
    // SAFETY: sysconf reads a constant of the running system; no memory is touched.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// A scratch directory (configs, logs) removed with everything in it when dropped.
#[derive(Debug)]
pub struct TempDir {
    /// Its path.
    pub path: PathBuf,
}

impl TempDir {
    /// Creates `$TMPDIR/torii-loadtest-PID-NANOS`.
    pub fn new() -> Result<TempDir, String> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path =
            std::env::temp_dir().join(format!("torii-loadtest-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(TempDir { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Best effort: a leftover temp dir is harmless.
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_are_parsed_after_the_command_name() {
        let line =
            "1234 (my (odd) proc) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 1 0 5 0 0";
        assert_eq!(parse_stat_cpu_ticks(line), Some(325));
        assert_eq!(parse_stat_ppid(line), Some(1));
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
        assert_eq!(parse_stat_cpu_ticks("1 (x) S 1"), None);
    }

    #[test]
    fn own_process_cpu_is_readable_and_children_are_found() {
        let me = std::process::id();
        assert!(proc_cpu_s(me).is_some());
        let dir = TempDir::new().unwrap();
        let log = dir.path.join("sleep.log");
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let mut child = ProcGuard::spawn("sleep", cmd, &log).unwrap();
        let pid = child.pid();
        assert!(children_of(me).contains(&pid));
        assert!(child.check_alive().is_ok());
        let path = dir.path.clone();
        drop(child);
        assert!(!children_of(me).contains(&pid), "killed and reaped on drop");
        drop(dir);
        assert!(!path.exists());
    }

    #[test]
    fn waiting_for_a_port_that_never_opens_is_bounded() {
        let dir = TempDir::new().unwrap();
        let log = dir.path.join("sleep.log");
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let mut child = ProcGuard::spawn("sleep", cmd, &log).unwrap();
        let port = free_port().unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let t = Instant::now();
        let err = child
            .wait_ready(addr, Duration::from_millis(200), &log)
            .unwrap_err();
        assert!(err.contains("did not listen"), "{err}");
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}
