//! The access log: one JSON line per request, written off the request path.
//!
//! Owns the path from a worker to the file: each worker appends lines to its own buffer
//! ([`WorkerBuffer`], no lock, reused), hands the buffer to the writer thread through a
//! bounded channel when it holds [`FLUSH_BYTES`] or when the worker's 50 ms tick comes, and
//! never waits: when the channel is full the chunk is dropped and its lines are counted in
//! `torii_access_log_dropped_total`. The writer thread ([`AccessLogSink::start`]) owns the
//! file; a reload reopens it (log rotation: move the file, then SIGHUP). What a line holds
//! and what it must never hold: `line.rs`.

pub mod line;

use std::cell::{Cell, RefCell};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::time::Duration;

use crate::config::AccessLogTarget;

/// A worker hands its buffer over once it holds this many bytes.
pub const FLUSH_BYTES: usize = 32 * 1024;
/// Chunks waiting for the writer at most (with full chunks: 2 MiB).
pub const QUEUE_CHUNKS: usize = 64;

enum Msg {
    Lines(Vec<u8>),
    Open(Option<AccessLogTarget>),
    Flush(SyncSender<()>),
}

/// The sending side of the writer thread, shared by every worker (in `Shared`).
#[derive(Debug)]
pub struct AccessLogSink {
    tx: SyncSender<Msg>,
    dropped: AtomicU64,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Msg::Lines(v) => write!(f, "Lines({} bytes)", v.len()),
            Msg::Open(t) => write!(f, "Open({t:?})"),
            Msg::Flush(_) => f.write_str("Flush"),
        }
    }
}

impl AccessLogSink {
    /// Starts the writer thread, writing to `target` (nothing while `None`).
    pub fn start(target: Option<AccessLogTarget>) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel(QUEUE_CHUNKS);
        let mut out = open(target.as_ref());
        std::thread::Builder::new()
            .name("torii-access-log".to_owned())
            .spawn(move || writer(rx, &mut out))?;
        Ok(Self {
            tx,
            dropped: AtomicU64::new(0),
        })
    }

    /// Lines dropped so far because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Switches the writer to `target` (reopening the file even when it is the same path, so
    /// that a rotated file is followed). Called by the control thread after a reload.
    /// Never blocks: when the writer is so far behind that its queue is full, the reopen is
    /// skipped with a warning (the next reload tries again).
    pub fn reopen(&self, target: Option<AccessLogTarget>) {
        if let Err(TrySendError::Full(_)) = self.tx.try_send(Msg::Open(target)) {
            tracing::warn!(
                "access log writer is behind; the file was not reopened (reload again to retry)"
            );
        }
    }

    /// Waits (at most `timeout`) until every chunk sent before this call is written. Called
    /// at shutdown, after the workers flushed their buffers.
    pub fn flush(&self, timeout: Duration) {
        let (ack_tx, ack_rx) = sync_channel(1);
        if self.tx.send(Msg::Flush(ack_tx)).is_ok() {
            let _ = ack_rx.recv_timeout(timeout);
        }
    }

    fn hand_over(&self, chunk: Vec<u8>, lines: u64) {
        match self.tx.try_send(Msg::Lines(chunk)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(lines, Ordering::Relaxed);
            }
        }
    }
}

enum Output {
    None,
    Stdout,
    File(File),
}

fn open(target: Option<&AccessLogTarget>) -> Output {
    match target {
        None => Output::None,
        Some(AccessLogTarget::Stdout) => Output::Stdout,
        Some(AccessLogTarget::File(path)) => match open_file(path) {
            Ok(f) => Output::File(f),
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "cannot open the access log; lines are discarded until the next reload");
                Output::None
            }
        },
    }
}

fn open_file(path: &PathBuf) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

fn writer(rx: Receiver<Msg>, out: &mut Output) {
    let mut failed = false;
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Lines(chunk) => {
                let r = match out {
                    Output::None => Ok(()),
                    Output::Stdout => std::io::stdout().lock().write_all(&chunk),
                    Output::File(f) => f.write_all(&chunk),
                };
                match r {
                    Ok(()) => failed = false,
                    Err(e) if !failed => {
                        failed = true;
                        tracing::error!(error = %e, "access log write failed");
                    }
                    Err(_) => {}
                }
            }
            Msg::Open(target) => *out = open(target.as_ref()),
            Msg::Flush(ack) => {
                if let Output::Stdout = out {
                    let _ = std::io::stdout().flush();
                }
                let _ = ack.try_send(());
            }
        }
    }
}

/// One worker's pending lines. `!Sync`, touched by its worker only; no borrow is held across
/// an `.await`.
#[derive(Debug, Default)]
pub struct WorkerBuffer {
    buf: RefCell<Vec<u8>>,
    lines: Cell<u64>,
}

impl WorkerBuffer {
    /// Appends one line written by `write` (which must append exactly one `\n`-terminated
    /// line), and hands the buffer over when it is full enough.
    #[inline]
    pub fn append(&self, sink: &AccessLogSink, write: impl FnOnce(&mut Vec<u8>)) {
        let full = {
            let mut buf = self.buf.borrow_mut();
            if buf.capacity() == 0 {
                buf.reserve(FLUSH_BYTES + 1024);
            }
            write(&mut buf);
            buf.len() >= FLUSH_BYTES
        };
        self.lines.set(self.lines.get() + 1);
        if full {
            self.flush(sink);
        }
    }

    /// Hands whatever is buffered to the writer (called on the worker's tick and at exit).
    pub fn flush(&self, sink: &AccessLogSink) {
        let chunk = {
            let mut buf = self.buf.borrow_mut();
            if buf.is_empty() {
                return;
            }
            std::mem::replace(&mut *buf, Vec::with_capacity(FLUSH_BYTES + 1024))
        };
        sink.hand_over(chunk, self.lines.replace(0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_reach_the_file_and_reopen_follows_a_rotation() {
        let dir = std::env::temp_dir().join(format!("torii-al-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("access.log");
        let rotated = dir.join("access.log.1");
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(&rotated);
        let sink = AccessLogSink::start(Some(AccessLogTarget::File(path.clone()))).unwrap();
        let wb = WorkerBuffer::default();
        wb.append(&sink, |b| b.extend_from_slice(b"{\"a\":1}\n"));
        wb.flush(&sink);
        sink.flush(Duration::from_secs(5));
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"a\":1}\n");
        std::fs::rename(&path, &rotated).unwrap();
        sink.reopen(Some(AccessLogTarget::File(path.clone())));
        wb.append(&sink, |b| b.extend_from_slice(b"{\"b\":2}\n"));
        wb.flush(&sink);
        sink.flush(Duration::from_secs(5));
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"b\":2}\n");
        assert_eq!(std::fs::read(&rotated).unwrap(), b"{\"a\":1}\n");
        assert_eq!(sink.dropped(), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_waiting() {
        // A sink whose writer is not running: the queue fills and further chunks are dropped.
        let (tx, _rx) = sync_channel(1);
        let sink = AccessLogSink {
            tx,
            dropped: AtomicU64::new(0),
        };
        let wb = WorkerBuffer::default();
        wb.append(&sink, |b| b.extend_from_slice(b"1\n"));
        wb.append(&sink, |b| b.extend_from_slice(b"2\n"));
        wb.flush(&sink); // queued (capacity 1)
        wb.append(&sink, |b| b.extend_from_slice(b"3\n"));
        wb.flush(&sink); // full: dropped
        assert_eq!(sink.dropped(), 1);
        wb.append(&sink, |b| b.resize(FLUSH_BYTES, b'x')); // full-size: handed over, dropped
        assert_eq!(sink.dropped(), 2);
    }
}
