//! The mirror as a WebSocket echo server: it accepts an upgrade (answering the exchange
//! protocol on its `101` like any response, when secured) and sends every text and binary
//! message back, answers pings with pongs and completes the close handshake. Used by the demo
//! (any WebSocket client; `torii demo` prints a curl line that shows the handshake) and by tests and the load-test suite as the backend of a tunnel.
//!
//! Owns the handshake answer (RFC 6455 §4.2.2: `Sec-WebSocket-Accept` from the key, through
//! `torii_protocol::websocket`) and the echo loop. Framing, masking, fragmentation and the
//! control frames are tungstenite's (its protocol layer only, driven sans IO over in-memory
//! buffers, so the socket IO stays monoio's). The echo never panics on input and closes the
//! connection on a protocol error or after [`IO_TIMEOUT`] without a byte.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::time::Duration;

use monoio::io::AsyncWriteRent;
use monoio::net::TcpStream;
use torii_protocol::websocket::{accept_for, KEY_LEN};
use tungstenite::protocol::{Role, WebSocket};
use tungstenite::{Error, Message};

use crate::http1::{HeaderField, RequestHead};
use crate::io::{write_all_timeout, ReadBuf};
use crate::proxy::upgrade::{websocket_asked, Asked};

/// A connection without a byte either way for this long is closed.
pub const IO_TIMEOUT: Duration = Duration::from_secs(300);
/// Most bytes read at once.
const READ_BYTES: usize = 64 * 1024;
/// Largest message echoed (tungstenite refuses larger ones and the connection closes).
const MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// The key of a valid WebSocket upgrade request (RFC 6455 §4.2.1), or `None` (a plain
/// request, answered with the JSON description).
pub fn upgrade_key(
    data: &[u8],
    head: &RequestHead,
    headers: &[HeaderField],
) -> Option<[u8; KEY_LEN]> {
    match websocket_asked(data, head, headers) {
        Asked::WebSocket(key) => Some(key),
        Asked::No | Asked::Refused(_) => None,
    }
}

/// Appends the `101` answering a WebSocket upgrade with `key`, with `extra` header lines (the
/// exchange protocol's answer) before the blank line.
pub fn write_switch(out: &mut Vec<u8>, key: &[u8; KEY_LEN], extra: &[u8]) {
    out.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-accept: ",
    );
    out.extend_from_slice(&accept_for(key));
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(extra);
    out.extend_from_slice(b"\r\n");
}

/// The bytes between tungstenite and the socket: what was read and not yet parsed, and what
/// tungstenite wrote and was not yet sent.
#[derive(Debug, Default)]
struct Wire {
    input: VecDeque<u8>,
    output: Vec<u8>,
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.input.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.input.read(buf)
    }
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Echoes WebSocket messages on `stream` (the `101` already sent) until the close handshake,
/// the peer's end or an error; `pending` holds bytes the client sent behind its upgrade
/// request. Closes the connection at the end.
pub async fn echo(mut stream: TcpStream, mut pending: ReadBuf) {
    let config = tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let mut ws = WebSocket::from_raw_socket(Wire::default(), Role::Server, Some(config));
    let mut out = Vec::with_capacity(4096);
    loop {
        ws.get_mut().input.extend(pending.data());
        pending.consume(pending.len());
        let done = answer(&mut ws);
        std::mem::swap(&mut out, &mut ws.get_mut().output);
        if !out.is_empty() {
            if write_all_timeout(&mut stream, &mut out, IO_TIMEOUT)
                .await
                .is_err()
            {
                return;
            }
            out.clear();
        }
        if done {
            break;
        }
        match pending
            .fill_timeout(&mut stream, READ_BYTES, IO_TIMEOUT)
            .await
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
    let _ = stream.shutdown().await;
}

/// Handles every complete message buffered: echoes data, lets tungstenite answer pings and
/// the close frame. True when the connection is over.
fn answer(ws: &mut WebSocket<Wire>) -> bool {
    loop {
        match ws.read() {
            Ok(msg @ (Message::Text(_) | Message::Binary(_))) => {
                if ws.send(msg).is_err() {
                    return true;
                }
            }
            // Pongs and the close reply are queued by tungstenite itself.
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
            Ok(Message::Close(_)) => {
                let _ = ws.flush();
            }
            Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                let _ = ws.flush();
                return false;
            }
            Err(_) => return true,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
    use tungstenite::protocol::frame::{CloseFrame, Frame};

    /// A client frame, masked.
    fn masked(mut f: Frame) -> Vec<u8> {
        f.header_mut().mask = Some([1, 2, 3, 4]);
        let mut out = Vec::new();
        f.format(&mut out).unwrap();
        out
    }

    fn data(opcode: Data, payload: &[u8]) -> Vec<u8> {
        masked(Frame::message(payload.to_vec(), OpCode::Data(opcode), true))
    }

    #[test]
    fn echoes_messages_answers_pings_and_closes() {
        let mut ws = WebSocket::from_raw_socket(Wire::default(), Role::Server, None);
        let mut input = data(Data::Text, b"hello");
        input.extend(data(Data::Binary, &[0, 1, 2]));
        input.extend(masked(Frame::ping(b"p".to_vec())));
        // Half a frame: waits for the rest.
        let last = data(Data::Text, b"later");
        input.extend(&last[..3]);
        ws.get_mut().input.extend(&input);
        assert!(!answer(&mut ws));
        let out = std::mem::take(&mut ws.get_mut().output);
        // Unmasked server frames: text "hello", binary 0 1 2, pong "p".
        assert_eq!(
            out,
            [
                &[0x81, 5][..],
                b"hello",
                &[0x82, 3, 0, 1, 2],
                &[0x8a, 1, b'p']
            ]
            .concat()
        );
        ws.get_mut().input.extend(&last[3..]);
        ws.get_mut()
            .input
            .extend(masked(Frame::close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            }))));
        assert!(answer(&mut ws), "over after the close handshake");
        let out = std::mem::take(&mut ws.get_mut().output);
        assert_eq!(
            out,
            [&[0x81, 5][..], b"later", &[0x88, 2, 0x03, 0xe8]].concat()
        );
    }

    #[test]
    fn the_switch_carries_the_accept_and_extra_lines() {
        let mut out = Vec::new();
        let mut key = [0u8; KEY_LEN];
        key.copy_from_slice(b"dGhlIHNhbXBsZSBub25jZQ==");
        write_switch(&mut out, &key, b"otoroshi-state-resp: x\r\n");
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(text.contains("sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(text.ends_with("otoroshi-state-resp: x\r\n\r\n"));
    }
}
