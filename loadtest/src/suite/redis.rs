//! The Redis of the quota scenario: a `redis-server` the suite starts on a free loopback port
//! with nothing written to disk (`--save ''`, `--appendonly no`), stopped with the other
//! processes, and one read of a counter to prove the gateway really pushed its counts there
//! (a scenario that claims "quotas with Redis" while Torii counts only locally would measure
//! the wrong thing).
//!
//! Owns that process and that read; the counts themselves are the gateway's.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::procs::{free_port, ProcGuard};

/// How long redis-server may take to listen.
const START_LIMIT: Duration = Duration::from_secs(10);
/// Timeout of the counter read.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// 127.0.0.1:`port`.
fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Starts `bin` (a `redis-server`) on a free port, its log in `dir`; returns its guard and
/// port.
pub fn start(bin: &Path, dir: &Path) -> Result<(ProcGuard, u16), String> {
    let port = free_port()?;
    let log = dir.join("redis.log");
    let mut cmd = Command::new(bin);
    cmd.args(["--port", &port.to_string()])
        .args(["--bind", "127.0.0.1"])
        .args(["--save", ""])
        .args(["--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .args(["--logfile", ""]);
    let mut guard = ProcGuard::spawn("redis-server", cmd, &log)?;
    guard.wait_ready(loopback(port), START_LIMIT, &log)?;
    Ok((guard, port))
}

/// The integer stored at `key` on the Redis at `port` (`None`: no such key). One inline
/// `GET` command (Redis reads a line without RESP framing as a command).
pub fn get_counter(port: u16, key: &str) -> Result<Option<u64>, String> {
    if key
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(format!("unusable Redis key {key:?}"));
    }
    let fail = |e: std::io::Error| format!("redis GET {key}: {e}");
    let mut tcp = TcpStream::connect_timeout(&loopback(port), READ_TIMEOUT).map_err(fail)?;
    tcp.set_read_timeout(Some(READ_TIMEOUT)).map_err(fail)?;
    tcp.write_all(format!("GET {key}\r\nQUIT\r\n").as_bytes())
        .map_err(fail)?;
    let mut raw = Vec::new();
    tcp.take(4096).read_to_end(&mut raw).map_err(fail)?;
    parse_get(&raw).ok_or_else(|| {
        format!(
            "redis GET {key}: unexpected answer {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
}

/// The answer to `GET` (then `+OK` to `QUIT`): `$-1` (no key) or `$n\r\n<digits>\r\n`.
fn parse_get(raw: &[u8]) -> Option<Option<u64>> {
    let text = std::str::from_utf8(raw).ok()?;
    let mut lines = text.split("\r\n");
    let first = lines.next()?;
    if first == "$-1" {
        return Some(None);
    }
    first.strip_prefix('$')?.parse::<usize>().ok()?;
    lines.next()?.parse().ok().map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_answers_are_read_strictly() {
        assert_eq!(parse_get(b"$-1\r\n+OK\r\n"), Some(None));
        assert_eq!(parse_get(b"$3\r\n120\r\n+OK\r\n"), Some(Some(120)));
        assert_eq!(parse_get(b"-ERR unknown\r\n"), None);
        assert_eq!(parse_get(b"$3\r\nabc\r\n"), None);
        assert_eq!(parse_get(b""), None);
    }
}
