//! The WebSocket echo load: many tunnels at once, each sending a small text message and waiting
//! for its echo, again and again (closed loop) until the deadline; every round trip is one
//! measurement. The result has the HTTP generator's shape ([`RunResult`]: "requests" are echoed
//! messages), so the suite's report shows messages per second and round-trip percentiles.
//!
//! Owns the handshake check (a `101` with the `Sec-WebSocket-Accept` the key implies) and the
//! per-tunnel loop. The frames are made once per tunnel by tungstenite's frame encoder (the
//! masked client frame and the unmasked echo expected back), so the loop itself only writes
//! and compares bytes: the generator stays cheap next to the proxies it measures. One thread,
//! one monoio runtime; every loop stops at the deadline, and every read has a timeout.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use torii_engine::runtime::AnyRuntime;
use torii_protocol::websocket::accept_for;
use tungstenite::protocol::frame::coding::{Data, OpCode};
use tungstenite::protocol::frame::Frame;

use crate::cpu::CpuTime;
use crate::generator::{RunOptions, RunResult};
use crate::stats::Stats;

/// Largest `101` head read.
const MAX_HEAD: usize = 16 * 1024;
/// The status recorded for each echoed message (they travel inside a `101` tunnel).
const ECHO_STATUS: u16 = 101;

/// What to load.
#[derive(Debug, Clone)]
pub struct WsOptions {
    /// Where to connect (loopback).
    pub addr: SocketAddr,
    /// `Host` header.
    pub host: String,
    /// Request path of the upgrade.
    pub path: String,
    /// Tunnels open at once.
    pub tunnels: usize,
    /// Bytes of each text message.
    pub message_bytes: usize,
    /// Stop sending after this long.
    pub duration: Duration,
    /// Per-read timeout (the handshake and each echo).
    pub timeout: Duration,
}

/// The frames of one tunnel, made once: what it sends and the exact bytes it expects back.
struct Frames {
    send: Vec<u8>,
    expect: Vec<u8>,
}

fn frames(message_bytes: usize, tunnel: usize) -> Result<Frames, String> {
    let text: Vec<u8> = (0..message_bytes)
        .map(|i| b'a' + ((i + tunnel) % 26) as u8)
        .collect();
    let mut masked = Frame::message(text.clone(), OpCode::Data(Data::Text), true);
    masked.header_mut().mask = Some([0x5a, 0x17, (tunnel >> 8) as u8, tunnel as u8]);
    let mut send = Vec::new();
    masked.format(&mut send).map_err(|e| e.to_string())?;
    let mut expect = Vec::new();
    Frame::message(text, OpCode::Data(Data::Text), true)
        .format(&mut expect)
        .map_err(|e| e.to_string())?;
    Ok(Frames { send, expect })
}

/// A valid `Sec-WebSocket-Key` for tunnel `n`: the base64 of 16 bytes.
fn key_for(n: usize) -> String {
    use base64::Engine;
    let mut raw = [0x42u8; 16];
    raw[..8].copy_from_slice(&(n as u64).to_le_bytes());
    base64::engine::general_purpose::STANDARD.encode(raw)
}

/// Runs the load and returns it as a run of the HTTP generator would be (`report` describes it:
/// URL, connections, duration).
pub fn run(opts: &WsOptions, report: RunOptions) -> Result<RunResult, String> {
    if !opts.addr.ip().is_loopback() {
        return Err(format!(
            "{}: WebSocket loads go to loopback only",
            opts.addr
        ));
    }
    let cpu_before = CpuTime::now_self();
    let start = Instant::now();
    let deadline = start + opts.duration;
    let opts2 = opts.clone();
    let thread = std::thread::Builder::new()
        .name("loadtest-ws".into())
        .spawn(move || -> Result<(Stats, &'static str), String> {
            let mut rt = AnyRuntime::build().map_err(|e| format!("runtime: {e}"))?;
            let driver = rt.driver_name();
            let stats = Rc::new(RefCell::new(Stats::new()));
            let shared = stats.clone();
            rt.block_on(async move {
                let mut tasks = Vec::with_capacity(opts2.tunnels);
                for n in 0..opts2.tunnels {
                    let (o, s) = (opts2.clone(), shared.clone());
                    tasks.push(monoio::spawn(
                        async move { tunnel(&o, n, deadline, &s).await },
                    ));
                }
                for t in tasks {
                    t.await;
                }
            });
            let merged = stats.borrow().clone();
            Ok((merged, driver))
        })
        .map_err(|e| format!("cannot start the WebSocket thread: {e}"))?;
    let (stats, driver) = thread
        .join()
        .map_err(|_| "the WebSocket thread panicked".to_string())??;
    Ok(RunResult {
        options: report,
        stats,
        elapsed: start.elapsed(),
        cpu: CpuTime::now_self().since(&cpu_before),
        driver,
        tls_full_handshakes: None,
    })
}

/// One tunnel: handshake, then message → echo until `deadline`. Errors are counted, not
/// returned: the tunnel stops at its first one.
async fn tunnel(opts: &WsOptions, n: usize, deadline: Instant, stats: &RefCell<Stats>) {
    let Ok(frames) = frames(opts.message_bytes, n) else {
        stats.borrow_mut().errors.bad_response += 1;
        return;
    };
    let mut stream = match TcpStream::connect(opts.addr).await {
        Ok(s) => s,
        Err(_) => {
            stats.borrow_mut().errors.connect += 1;
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    let key = key_for(n);
    let mut buf = Vec::with_capacity(MAX_HEAD);
    if let Err(why) = handshake(&mut stream, opts, &key, &mut buf).await {
        let mut s = stats.borrow_mut();
        s.errors.bad_response += 1;
        s.bad_response_example.get_or_insert(why);
        return;
    }
    let mut send = frames.send;
    while Instant::now() < deadline {
        let t0 = Instant::now();
        let (res, back) = stream.write_all(send).await;
        send = back;
        if res.is_err() {
            stats.borrow_mut().errors.write += 1;
            return;
        }
        while buf.len() < frames.expect.len() {
            match read_more(&mut stream, &mut buf, opts.timeout).await {
                Ok(true) => {}
                Ok(false) => {
                    stats.borrow_mut().errors.read += 1;
                    return;
                }
                Err(()) => {
                    stats.borrow_mut().errors.timeout += 1;
                    return;
                }
            }
        }
        let same = buf[..frames.expect.len()] == frames.expect[..];
        buf.drain(..frames.expect.len());
        stats
            .borrow_mut()
            .record_response(ECHO_STATUS, t0.elapsed(), same);
        if !same {
            return;
        }
    }
    // A close frame (masked, code 1000), then the end of the stream.
    let close = vec![0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8];
    let _ = stream.write_all(close).await;
    let _ = stream.shutdown().await;
}

/// Sends the upgrade request and checks the `101` (its accept value too). Bytes after the head
/// stay in `buf`.
async fn handshake(
    stream: &mut TcpStream,
    opts: &WsOptions,
    key: &str,
    buf: &mut Vec<u8>,
) -> Result<(), String> {
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n",
        opts.path, opts.host
    );
    let (res, _) = stream.write_all(request.into_bytes()).await;
    res.map_err(|e| format!("upgrade request: {e}"))?;
    let head_len = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err("101 head too large".into());
        }
        match read_more(stream, buf, opts.timeout).await {
            Ok(true) => {}
            Ok(false) => return Err("closed before the 101".into()),
            Err(()) => return Err("no 101 in time".into()),
        }
    };
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(&buf[..head_len]) {
        Ok(httparse::Status::Complete(_)) if resp.code == Some(101) => {}
        _ => {
            let line = String::from_utf8_lossy(&buf[..head_len.min(80)]).into_owned();
            return Err(format!("not a 101: {line:?}"));
        }
    }
    let want = accept_for(key.as_bytes());
    let accepted = resp
        .headers
        .iter()
        .any(|h| h.name.eq_ignore_ascii_case("sec-websocket-accept") && h.value == want.as_slice());
    if !accepted {
        return Err("101 without the accept value of the key".into());
    }
    buf.drain(..head_len);
    Ok(())
}

/// Reads once into `buf`: `Ok(false)` at the end of the stream, `Err` on timeout or error.
async fn read_more(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    timeout: Duration,
) -> Result<bool, ()> {
    let mut chunk = std::mem::take(buf);
    chunk.reserve(4096);
    let read = monoio::time::timeout(timeout, stream.read(chunk)).await;
    match read {
        Ok((Ok(n), back)) => {
            *buf = back;
            Ok(n > 0)
        }
        Ok((Err(_), back)) => {
            *buf = back;
            Ok(false)
        }
        Err(_) => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_masked_out_and_plain_back() {
        let f = frames(32, 7).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.send[0], 0x81, "final text frame");
        assert_eq!(f.send[1], 0x80 | 32, "masked, 32 bytes");
        assert_eq!(f.send.len(), 2 + 4 + 32);
        assert_eq!(&f.expect[..2], &[0x81, 32]);
        assert_eq!(f.expect.len(), 2 + 32);
        let mask = &f.send[2..6];
        let unmasked: Vec<u8> = f.send[6..]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4])
            .collect();
        assert_eq!(unmasked, f.expect[2..]);
    }

    #[test]
    fn keys_are_valid_and_distinct() {
        let a = key_for(1);
        let b = key_for(2);
        assert_ne!(a, b);
        assert!(torii_protocol::websocket::is_valid_key(a.as_bytes()));
        assert!(torii_protocol::websocket::is_valid_key(b.as_bytes()));
    }
}
