//! The client side of a request as the phases answer through it: the [`Downstream`] interface
//! and its HTTP/1.1 implementation over [`ClientConn`].
//!
//! Owns the keep-alive rule of every response (RFC 9112 §9.3, §9.6: the connection closes when
//! the client asked for it, when an HTTP/1.0 client did not ask to keep it, when part of the
//! request body is still unread — it would be read as the next request — or while draining;
//! plus whatever the caller forces) and the writing of the complete responses Torii makes
//! itself ([`LocalAnswer`]: errors, the token service, introspection, JWKS), in the client's
//! protocol. The phases decide what to answer; how it is framed and whether the connection
//! survives it is decided here, once. What a response says is not decided here
//! (`respond.rs` renders Torii's bodies; `answer.rs` is the one function that answers).

use std::time::Duration;

use crate::http1::Method;
use crate::io::{write_all_timeout, Stream};
use crate::metrics::RequestRecord;
use crate::proxy::client::ClientConn;
use crate::proxy::context::RequestCtx;
use crate::proxy::respond::{write_error, write_json};

/// The body of a response Torii makes itself.
#[derive(Debug, Clone, Copy)]
pub enum LocalBody<'a> {
    /// The Otoroshi error shape around this fixed, header-safe message
    /// (`crate::proxy::respond::write_error`).
    Error(&'a str),
    /// A JSON document (the token service's answers).
    Json(&'a [u8]),
}

/// A complete response Torii makes itself.
#[derive(Debug, Clone, Copy)]
pub struct LocalAnswer<'a> {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: LocalBody<'a>,
    /// Headers beyond the body's own (`WWW-Authenticate`, `Retry-After`, `Cache-Control`).
    pub headers: &'a [(&'a str, &'a str)],
}

/// The client side of one request, whatever its wire protocol. Tasks stay on their worker
/// thread, so the futures need no `Send` bound.
#[allow(async_fn_in_trait)]
pub trait Downstream {
    /// The keep-alive rule: true when the connection ends after the response to the request
    /// in `ctx` (`draining`: the worker is draining).
    fn must_close(&self, ctx: &RequestCtx<'_>, draining: bool) -> bool;

    /// Sends `answer` whole, closing the connection after it when `close`, within `timeout`,
    /// and notes its status and size in `rec`. `head_only`: the request was `HEAD`, so the
    /// answer carries no content (RFC 9110 §9.3.2). False when it could not be sent.
    async fn send_local(
        &mut self,
        rec: &mut RequestRecord,
        answer: &LocalAnswer<'_>,
        close: bool,
        head_only: bool,
        timeout: Duration,
    ) -> bool;
}

impl<C: Stream> Downstream for ClientConn<C> {
    fn must_close(&self, ctx: &RequestCtx<'_>, draining: bool) -> bool {
        ctx.body_unread() || !ctx.head.keep_alive || draining
    }

    async fn send_local(
        &mut self,
        rec: &mut RequestRecord,
        answer: &LocalAnswer<'_>,
        close: bool,
        head_only: bool,
        timeout: Duration,
    ) -> bool {
        self.wbuf.clear();
        match answer.body {
            LocalBody::Error(message) => write_error(
                &mut self.wbuf,
                answer.status,
                message,
                close,
                answer.headers,
            ),
            LocalBody::Json(body) => {
                write_json(&mut self.wbuf, answer.status, body, close, answer.headers)
            }
        }
        if head_only {
            truncate_to_head(&mut self.wbuf);
        }
        rec.answered(answer.status, self.wbuf.len());
        write_all_timeout(&mut self.stream, &mut self.wbuf, timeout)
            .await
            .is_ok()
    }
}

/// True when the request in `ctx` was `HEAD`: its answers carry no content.
pub fn is_head(ctx: &RequestCtx<'_>) -> bool {
    ctx.head.method == Method::Head
}

/// Cuts a rendered HTTP/1.1 response after its head (the first blank line).
fn truncate_to_head(out: &mut Vec<u8>) {
    if let Some(end) = memchr::memmem::find(out, b"\r\n\r\n") {
        out.truncate(end + 4);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_answer_keeps_the_head_and_its_content_length() {
        let mut out = Vec::new();
        write_json(&mut out, 200, b"{\"a\":1}", false, &[]);
        truncate_to_head(&mut out);
        let text = String::from_utf8_lossy(&out);
        assert!(text.ends_with("content-length: 7\r\n\r\n"), "{text}");
    }
}
