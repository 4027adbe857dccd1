//! One health probe over HTTP/2, for targets Torii speaks HTTP/2 to (`h2c`, `h2`, and `auto`
//! when the endpoint's ALPN chooses `h2`): open a connection of its own (`h2_client::open_h2`,
//! its driver a task of the checker's runtime), send one request, read the answer, all within
//! one deadline; the connection is dropped afterwards (its driver ends with the last handle).
//!
//! Two kinds of request ([`H2ProbeKind`]):
//! - **Plain**: `GET path` with the given headers; the response head's status (and the value of
//!   one header, the challenge answer on a challenged route) is the answer. No body is read.
//! - **gRPC health** (the path `/grpc.health.v1.Health/Check`, [`GRPC_HEALTH_PATH`]): the
//!   standard gRPC health checking protocol, a unary `Check` with an empty
//!   `HealthCheckRequest` (the whole service). Good only when the call's `grpc-status` (trailers,
//!   or the headers of a Trailers-Only answer) is 0 and the reply's `status` (field 1, a varint)
//!   is 1, `SERVING`; the tiny protobuf is decoded here by hand.
//!
//! No `unwrap` on anything the endpoint sends; the body read is bounded ([`MAX_BODY`]).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Version};

use crate::tls::client::TargetTls;
use crate::upstream::h2_client::{open_h2_with, Opened};
use crate::upstream::health::BadProbe;
use crate::upstream::open::OpenError;
use crate::upstream::probe::ProbeAnswer;

/// The path of the standard gRPC health checking protocol's `Check` method.
pub const GRPC_HEALTH_PATH: &str = "/grpc.health.v1.Health/Check";

/// Most bytes of a gRPC health reply read (a `HealthCheckResponse` is 2 bytes).
const MAX_BODY: usize = 4 * 1024;

/// Most bytes of a response header list accepted.
const MAX_HEADER_LIST: usize = 16 * 1024;

/// The gRPC frame of an empty `HealthCheckRequest`: not compressed, length 0.
const EMPTY_GRPC_MESSAGE: [u8; 5] = [0, 0, 0, 0, 0];

/// What kind of request a probe sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum H2ProbeKind {
    /// `GET path`; the status decides.
    Plain,
    /// The gRPC health checking protocol's `Check`.
    GrpcHealth,
}

impl H2ProbeKind {
    /// The kind of probe for `path`.
    pub fn for_path(path: &str) -> Self {
        if path == GRPC_HEALTH_PATH {
            H2ProbeKind::GrpcHealth
        } else {
            H2ProbeKind::Plain
        }
    }
}

/// An HTTP/2 probe's request.
#[derive(Debug, Clone)]
pub struct H2ProbeRequest {
    /// The path (with its query).
    pub path: String,
    /// `:authority`: the target's host (and port).
    pub authority: String,
    /// Every other request header (`user-agent`, the exchange protocol's state, …).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Plain or gRPC health.
    pub kind: H2ProbeKind,
}

/// Sends `request` to `addr` over HTTP/2 (TLS with ALPN `h2` when `tls` is given, or `h2` and
/// `http/1.1` when `negotiate`) and reads the answer, all within `timeout`. `Ok(None)`: the
/// endpoint chose HTTP/1.1 in ALPN (`negotiate` only; the caller probes over HTTP/1.1).
/// `header`: the (lower-case) name of a response header whose value to return.
pub async fn probe_h2(
    addr: SocketAddr,
    tls: Option<&TargetTls>,
    negotiate: bool,
    request: H2ProbeRequest,
    header: Option<&[u8]>,
    timeout: Duration,
) -> Result<Option<ProbeAnswer>, BadProbe> {
    let exchange = async {
        let conn = match open_h2_with(addr, tls, negotiate, MAX_HEADER_LIST, None).await {
            Ok(Opened::H2(conn)) => conn,
            Ok(Opened::Http1) => return Ok(None),
            Err(OpenError::Tls(_)) => return Err(BadProbe::Tls),
            Err(OpenError::Tcp(_)) => return Err(BadProbe::Refused),
        };
        exchange(conn.send, request, header, tls.is_some())
            .await
            .map(Some)
    };
    match monoio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(BadProbe::Timeout),
    }
}

/// Sends the request on a new connection's handle and reads what decides.
async fn exchange(
    send: h2::client::SendRequest<Bytes>,
    request: H2ProbeRequest,
    header: Option<&[u8]>,
    tls: bool,
) -> Result<ProbeAnswer, BadProbe> {
    let grpc = request.kind == H2ProbeKind::GrpcHealth;
    let scheme = if tls { "https" } else { "http" };
    let uri = format!("{scheme}://{}{}", request.authority, request.path);
    let mut builder = Request::builder()
        .method(if grpc { Method::POST } else { Method::GET })
        .version(Version::HTTP_2)
        .uri(uri);
    for (name, value) in request.headers {
        builder = builder.header(name, value);
    }
    if grpc {
        builder = builder
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .header(http::header::TE, "trailers");
    }
    let req = builder.body(()).map_err(|_| BadProbe::Invalid)?;
    let mut send = send.ready().await.map_err(|_| BadProbe::Closed)?;
    let (response, mut stream) = send
        .send_request(req, !grpc)
        .map_err(|_| BadProbe::Closed)?;
    if grpc {
        stream
            .send_data(Bytes::from_static(&EMPTY_GRPC_MESSAGE), true)
            .map_err(|_| BadProbe::Closed)?;
    }
    let response = response.await.map_err(|_| BadProbe::Closed)?;
    let status = response.status().as_u16();
    let value = header.and_then(|name| {
        response
            .headers()
            .get(HeaderName::from_bytes(name).ok()?)
            .map(|v| v.as_bytes().to_vec())
    });
    if grpc && status == 200 {
        let (head, mut body) = response.into_parts();
        let trailers_only = grpc_status(&head.headers);
        let mut message = Vec::new();
        let code = match trailers_only {
            Some(code) => code,
            None => {
                while let Some(chunk) = body.data().await {
                    let chunk = chunk.map_err(|_| BadProbe::Closed)?;
                    let _ = body.flow_control().release_capacity(chunk.len());
                    if message.len() + chunk.len() > MAX_BODY {
                        return Err(BadProbe::Invalid);
                    }
                    message.extend_from_slice(&chunk);
                }
                let trailers = body.trailers().await.map_err(|_| BadProbe::Closed)?;
                trailers
                    .as_ref()
                    .and_then(grpc_status)
                    .ok_or(BadProbe::Invalid)?
            }
        };
        if code != 0 {
            return Err(BadProbe::GrpcStatus(code));
        }
        match serving_status(&message) {
            Some(1) => {}
            Some(s) => return Err(BadProbe::NotServing(s)),
            None => return Err(BadProbe::Invalid),
        }
    }
    Ok(ProbeAnswer {
        status,
        header: value,
    })
}

/// The `grpc-status` in `headers`, when present and a number.
fn grpc_status(headers: &HeaderMap) -> Option<u32> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse().ok())
}

/// The `status` (field 1) of the `HealthCheckResponse` in `body` (one gRPC frame, not
/// compressed): 0 when the field is absent (proto3's default, `UNKNOWN`); `None` when the frame
/// or the message does not parse.
pub fn serving_status(body: &[u8]) -> Option<u64> {
    let (&flag, rest) = body.split_first()?;
    if flag != 0 || rest.len() < 4 {
        return None;
    }
    let (len, mut msg) = rest.split_at(4);
    let len = usize::try_from(u32::from_be_bytes([len[0], len[1], len[2], len[3]])).ok()?;
    if msg.len() != len {
        return None;
    }
    let mut status = 0;
    while !msg.is_empty() {
        let key = varint(&mut msg)?;
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                let v = varint(&mut msg)?;
                if field == 1 {
                    status = v;
                }
            }
            1 => msg = msg.get(8..)?,
            2 => {
                let n = usize::try_from(varint(&mut msg)?).ok()?;
                msg = msg.get(n..)?;
            }
            5 => msg = msg.get(4..)?,
            _ => return None,
        }
    }
    Some(status)
}

/// Reads one protobuf varint off the front of `buf`.
fn varint(buf: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..10 {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_health_reply_is_decoded_by_hand() {
        assert_eq!(serving_status(&[0, 0, 0, 0, 2, 0x08, 0x01]), Some(1));
        assert_eq!(serving_status(&[0, 0, 0, 0, 2, 0x08, 0x02]), Some(2));
        // Absent field: UNKNOWN (0). Unknown fields are skipped.
        assert_eq!(serving_status(&[0, 0, 0, 0, 0]), Some(0));
        assert_eq!(
            serving_status(&[0, 0, 0, 0, 6, 0x12, 0x01, b'x', 0x08, 0x81, 0x00]),
            Some(1)
        );
        // Compressed, truncated, a length that lies, a broken varint: refused.
        assert_eq!(serving_status(&[1, 0, 0, 0, 2, 0x08, 0x01]), None);
        assert_eq!(serving_status(&[0, 0, 0]), None);
        assert_eq!(serving_status(&[0, 0, 0, 0, 3, 0x08, 0x01]), None);
        assert_eq!(serving_status(&[0, 0, 0, 0, 2, 0x08, 0x81]), None);
        assert_eq!(serving_status(&[]), None);
    }

    #[test]
    fn only_the_grpc_health_path_speaks_the_grpc_protocol() {
        assert_eq!(
            H2ProbeKind::for_path(GRPC_HEALTH_PATH),
            H2ProbeKind::GrpcHealth
        );
        assert_eq!(H2ProbeKind::for_path("/healthz"), H2ProbeKind::Plain);
        assert_eq!(
            H2ProbeKind::for_path("/grpc.health.v1.Health/Check?x"),
            H2ProbeKind::Plain
        );
    }
}
