//! One health probe over the network: open a connection to an endpoint (TCP, then the target's
//! TLS, through `upstream::open`), send a request head the caller rendered, read the response
//! head with the crate's HTTP/1.1 parser, and report its status and the value of one header
//! (the challenge answer, on a challenged route); all within one deadline.
//!
//! Owns the exchange and how it fails ([`BadProbe`]: refused, TLS, timeout, closed, invalid).
//! What is sent (path, `Host`, the exchange protocol's state) and what makes a probe good
//! (statuses, the challenge's verification) are the checker's (`health`). No body is read: the
//! request says `connection: close` and the connection is dropped once the head is in. No
//! `unwrap` on anything the endpoint sends; interim 1xx answers are skipped.

use std::net::SocketAddr;
use std::time::Duration;

use monoio::io::AsyncWriteRentExt;

use crate::http1::{find_header, parse_response_head, HeadLimits, HeaderField, Method};
use crate::io::ReadBuf;
use crate::tls::client::TargetTls;
use crate::tls::stream::UpStream;
use crate::upstream::health::BadProbe;
use crate::upstream::open::{open, OpenError};

/// Initial read buffer of a probe.
const READ_BUF: usize = 4 * 1024;

/// What the endpoint answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeAnswer {
    /// The final status (a 101 included; interim 1xx skipped).
    pub status: u16,
    /// The value of the header the caller asked for, when present (first copy).
    pub header: Option<Vec<u8>>,
}

/// Sends `request` (a whole request head) to `addr`, over TLS when `tls` is given, and reads
/// the response head, all within `timeout`. `header`: the (lower-case) name of a response
/// header whose value to return.
pub async fn probe(
    addr: SocketAddr,
    tls: Option<&TargetTls>,
    request: Vec<u8>,
    header: Option<&[u8]>,
    timeout: Duration,
) -> Result<ProbeAnswer, BadProbe> {
    let exchange = async {
        let mut stream = open(addr, tls).await.map_err(|e| match e {
            OpenError::Tcp(_) => BadProbe::Refused,
            OpenError::Tls(_) => BadProbe::Tls,
        })?;
        exchange(&mut stream, request, header).await
    };
    match monoio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(BadProbe::Timeout),
    }
}

/// Writes `request` on `stream` and reads one final response head.
async fn exchange(
    stream: &mut UpStream,
    request: Vec<u8>,
    header: Option<&[u8]>,
) -> Result<ProbeAnswer, BadProbe> {
    let (written, _) = stream.write_all(request).await;
    written.map_err(|_| BadProbe::Closed)?;
    let limits = HeadLimits::default();
    let mut buf = ReadBuf::with_capacity(READ_BUF);
    let mut fields: Vec<HeaderField> = Vec::new();
    loop {
        match parse_response_head(buf.data(), &limits, Method::Get, &mut fields) {
            Err(_) => return Err(BadProbe::Invalid),
            Ok(Some(head)) if (100..200).contains(&head.status) && head.status != 101 => {
                buf.consume(head.head_len);
                continue;
            }
            Ok(Some(head)) => {
                let value = header.and_then(|name| find_header(buf.data(), &fields, name));
                return Ok(ProbeAnswer {
                    status: head.status,
                    header: value.map(<[u8]>::to_vec),
                });
            }
            Ok(None) => {}
        }
        if buf.len() >= limits.max_head_bytes {
            return Err(BadProbe::Invalid);
        }
        match buf.fill(stream, limits.max_head_bytes).await {
            Ok(0) | Err(_) => return Err(BadProbe::Closed),
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;

    use super::*;
    use crate::runtime::AnyRuntime;

    /// A one-connection backend on 127.0.0.1:0 that reads the request head, then writes
    /// `answer` (and closes, unless `hold`). Returns its address and the request it read.
    fn backend(
        answer: &'static [u8],
        hold: bool,
    ) -> (SocketAddr, std::thread::JoinHandle<Vec<u8>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut got = Vec::new();
            let mut b = [0u8; 1024];
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut b) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&b[..n]),
                }
            }
            let _ = s.write_all(answer);
            if hold {
                std::thread::sleep(Duration::from_millis(500));
            }
            got
        });
        (addr, t)
    }

    fn run(addr: SocketAddr, timeout: Duration) -> Result<ProbeAnswer, BadProbe> {
        let mut rt = AnyRuntime::build().unwrap();
        let request = b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".to_vec();
        rt.block_on(probe(addr, None, request, Some(b"x-answer"), timeout))
    }

    #[test]
    fn a_status_and_a_header_are_read_past_interim_answers() {
        let (addr, t) = backend(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Service Unavailable\r\nX-Answer: yes\r\ncontent-length: 5\r\n\r\nbusy!",
            false,
        );
        let answer = run(addr, Duration::from_secs(2)).unwrap();
        assert_eq!(answer.status, 503);
        assert_eq!(answer.header.as_deref(), Some(&b"yes"[..]));
        let got = t.join().unwrap();
        assert!(got.starts_with(b"GET /health HTTP/1.1\r\n"));
    }

    #[test]
    fn each_way_of_failing_has_its_reason() {
        let (addr, _t) = backend(b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n", false);
        assert_eq!(run(addr, Duration::from_secs(2)), Err(BadProbe::Invalid));
        let (addr, _t) = backend(b"HTTP/1.1 200 O", false);
        assert_eq!(run(addr, Duration::from_secs(2)), Err(BadProbe::Closed));
        let (addr, _t) = backend(b"", true);
        assert_eq!(
            run(addr, Duration::from_millis(100)),
            Err(BadProbe::Timeout)
        );
        let dead = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        assert_eq!(run(dead, Duration::from_secs(2)), Err(BadProbe::Refused));
    }
}
