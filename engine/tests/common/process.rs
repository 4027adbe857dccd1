//! Helpers to run the real `torii` binary in tests: start it on a config file, learn its
//! listener address from its log, send it signals, and wait for it to exit.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let p = std::env::temp_dir().join(format!("torii-test-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `torii` process; killed on drop if still running.
pub struct Torii {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: Arc<Mutex<Vec<String>>>,
    lines: Receiver<String>,
}

pub fn torii_bin() -> &'static str {
    env!("CARGO_BIN_EXE_torii")
}

/// Spawns `torii args...` with stderr captured; returns the child and a line receiver.
pub fn spawn(args: &[&str]) -> (Child, Receiver<String>, Arc<Mutex<Vec<String>>>) {
    spawn_env(args, &[])
}

/// [`spawn`] with extra environment variables.
pub fn spawn_env(
    args: &[&str],
    envs: &[(&str, &str)],
) -> (Child, Receiver<String>, Arc<Mutex<Vec<String>>>) {
    spawn_limited(args, envs, None)
}

/// [`spawn_env`], the child's soft and hard `RLIMIT_NOFILE` set to `nofile` when given.
pub fn spawn_limited(
    args: &[&str],
    envs: &[(&str, &str)],
    nofile: Option<u64>,
) -> (Child, Receiver<String>, Arc<Mutex<Vec<String>>>) {
    let mut cmd = Command::new(torii_bin());
    cmd.args(args)
        .env("TORII_LOG", "info")
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(limit) = nofile {
        use std::os::unix::process::CommandExt;
        // SAFETY: between fork and exec the closure only calls setrlimit, which is
        // async-signal-safe, on a value on its own stack.
        unsafe {
            cmd.pre_exec(move || {
                let rl = libc::rlimit {
                    rlim_cur: limit,
                    rlim_max: limit,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &rl) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    }
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = channel();
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            log2.lock().unwrap().push(line.clone());
            let _ = tx.send(line);
        }
    });
    (child, rx, log)
}

impl Torii {
    /// Starts `torii run --config path` and waits for its `listening` line.
    pub fn run(config: &Path) -> Torii {
        Self::run_env(config, &[])
    }

    /// [`Torii::run`] with extra environment variables.
    pub fn run_env(config: &Path, envs: &[(&str, &str)]) -> Torii {
        Self::run_limited(config, envs, None)
    }

    /// [`Torii::run_env`] under an `RLIMIT_NOFILE` of `nofile` (soft and hard) when given.
    pub fn run_limited(config: &Path, envs: &[(&str, &str)], nofile: Option<u64>) -> Torii {
        let (child, lines, log) =
            spawn_limited(&["run", "--config", config.to_str().unwrap()], envs, nofile);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("torii did not start: {:?}", log.lock().unwrap()));
            if line.contains("listening") {
                if let Some(rest) = line.split("addr=").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap().parse().unwrap();
                    return Torii {
                        child,
                        addr,
                        log,
                        lines,
                    };
                }
            }
        }
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: sending a signal to our own child process by pid.
        let rc = unsafe { libc::kill(self.child.id() as i32, sig) };
        assert_eq!(rc, 0);
    }

    /// Waits for a log line containing `needle` (new lines only).
    pub fn wait_log(&self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!(
                    "no log line with {needle:?}: {:?}",
                    self.log.lock().unwrap()
                ),
            }
        }
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Torii {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
