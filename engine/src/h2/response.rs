//! The HTTP/1.1 response the phases write for an HTTP/2 stream, turned back into what HTTP/2
//! sends: interim heads, the final head as an `http::Response`, and the body's payload.
//!
//! Owns [`ResponseTranslator`], a sans-IO state machine fed with whatever bytes the phases
//! write, split anywhere: the head is parsed with the same strict parser as an upstream's
//! (`http1::parse_response_head`), its connection-specific fields (`connection`,
//! `keep-alive`, `proxy-connection`, `transfer-encoding`, `upgrade`, `te`, `trailer` and the
//! proxy-authentication pair, RFC 9113 §8.2.2) are dropped, so is `content-length` on a status
//! that has no content (1xx, 204, 304: `http1::status_has_no_content`), and the body is unframed:
//! `content-length` bytes, or a chunked body decoded by the HTTP/1.1 chunked decoder. Response
//! trailers are dropped (RFC 9110 §6.5.1 lets a recipient discard them; Torii's HTTP/1.1 side
//! drops them too). It must not do IO: `exchange` sends what it returns.

use http::header::{HeaderName, HeaderValue};
use http::{Response, StatusCode};

use crate::http1::{
    parse_response_head, status_has_no_content, ChunkedDecoder, ChunkedOutput, HeadLimits,
    HeaderField, HeaderKind, Method, ResponseBody,
};

/// What one call to [`ResponseTranslator::step`] found.
#[derive(Debug)]
pub enum Step {
    /// Every input byte was taken into the head in progress: feed more.
    More,
    /// An interim (1xx) head ended after `consumed` input bytes: send it, feed the rest.
    Interim {
        /// Its status (100, 102, 103…).
        status: u16,
        /// Input bytes consumed.
        consumed: usize,
    },
    /// The final head ended after `consumed` input bytes: send it, feed the rest.
    Head {
        /// Status and fields (connection-specific fields removed).
        response: Response<()>,
        /// The response has no body: the head ends the stream.
        end_stream: bool,
        /// Input bytes consumed.
        consumed: usize,
    },
    /// Body payload was appended to the caller's buffer from `consumed` input bytes; `done`:
    /// the body is complete (the last payload ends the stream).
    Body {
        /// Input bytes consumed.
        consumed: usize,
        /// The body is complete.
        done: bool,
    },
}

/// The response written for a stream cannot be sent: the stream is reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Untranslatable(pub &'static str);

#[derive(Debug)]
enum State {
    Head,
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilClose,
    Done,
}

/// Turns the HTTP/1.1 response of one request into HTTP/2 parts. One per stream.
#[derive(Debug)]
pub struct ResponseTranslator {
    method: Method,
    limits: HeadLimits,
    head: Vec<u8>,
    fields: Vec<HeaderField>,
    state: State,
}

impl ResponseTranslator {
    /// A translator for the response to a `method` request; `limits` bound the head.
    pub fn new(method: Method, limits: HeadLimits) -> Self {
        Self {
            method,
            limits,
            head: Vec::new(),
            fields: Vec::new(),
            state: State::Head,
        }
    }

    /// True once a final head was seen (the stream's response was sent).
    pub fn head_sent(&self) -> bool {
        !matches!(self.state, State::Head)
    }

    /// True once the whole response was seen.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// True when the body runs until the writer closes (no length, not chunked): closing is
    /// then its normal end.
    pub fn ends_at_close(&self) -> bool {
        matches!(self.state, State::UntilClose)
    }

    /// Consumes the start of `input`, appending body payload to `payload`. Call again with the
    /// rest until it is empty (or [`Step::More`]). Bytes after a complete response are consumed
    /// and ignored.
    pub fn step(&mut self, input: &[u8], payload: &mut Vec<u8>) -> Result<Step, Untranslatable> {
        let (consumed, done) = match &mut self.state {
            State::Head => return self.head_step(input),
            State::Length(left) => {
                let n = usize::try_from(*left)
                    .unwrap_or(usize::MAX)
                    .min(input.len());
                payload.extend_from_slice(input.get(..n).unwrap_or_default());
                *left -= n as u64;
                (n, *left == 0)
            }
            State::Chunked(dec) => {
                let p = dec
                    .decode(input, payload, ChunkedOutput::Payload)
                    .map_err(|_| Untranslatable("bad chunked response body"))?;
                (p.consumed, p.done)
            }
            State::UntilClose => {
                payload.extend_from_slice(input);
                (input.len(), false)
            }
            State::Done => (input.len(), true),
        };
        if done {
            self.state = State::Done;
        }
        Ok(Step::Body { consumed, done })
    }

    fn head_step(&mut self, input: &[u8]) -> Result<Step, Untranslatable> {
        let before = self.head.len();
        self.head.extend_from_slice(input);
        let parsed = parse_response_head(&self.head, &self.limits, self.method, &mut self.fields)
            .map_err(|e| Untranslatable(e.reason()))?;
        let Some(resp) = parsed else {
            if self.head.len() > self.limits.max_head_bytes {
                return Err(Untranslatable("response head too large"));
            }
            return Ok(Step::More);
        };
        let consumed = resp.head_len.saturating_sub(before);
        if resp.status < 200 {
            self.head.clear();
            if resp.status == 101 {
                return Err(Untranslatable("101 on an HTTP/2 stream"));
            }
            return Ok(Step::Interim {
                status: resp.status,
                consumed,
            });
        }
        let status =
            StatusCode::from_u16(resp.status).map_err(|_| Untranslatable("invalid status"))?;
        let mut response = Response::new(());
        *response.status_mut() = status;
        let data = &self.head;
        let no_content = status_has_no_content(resp.status);
        let headers = response.headers_mut();
        headers.reserve(self.fields.len());
        for f in &self.fields {
            let name = f.name.get(data);
            let kind = HeaderKind::classify(name);
            if kind.is_hop_by_hop() || (no_content && kind == HeaderKind::ContentLength) {
                continue;
            }
            // The parser validated names and values; a byte `http` still refuses (a name with
            // a character HTTP/2 cannot carry) drops that one field.
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name),
                HeaderValue::from_bytes(f.value.get(data)),
            ) {
                headers.append(n, v);
            }
        }
        self.state = match resp.body {
            ResponseBody::None | ResponseBody::Length(0) => State::Done,
            ResponseBody::Length(n) => State::Length(n),
            ResponseBody::Chunked => State::Chunked(ChunkedDecoder::new()),
            ResponseBody::UntilClose => State::UntilClose,
        };
        self.head = Vec::new();
        Ok(Step::Head {
            response,
            end_stream: matches!(self.state, State::Done),
            consumed,
        })
    }
}

#[cfg(test)]
#[path = "response_tests.rs"]
mod tests;
