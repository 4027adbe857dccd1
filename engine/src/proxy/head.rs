//! The request head a request context owns: the bytes of the head and the spans of its header
//! fields, out of any connection buffer.
//!
//! Owns [`OwnedHead`]. The HTTP/1.1 connection loop parses a head in its read buffer, copies
//! the head's bytes here (one `memcpy` of a few hundred bytes into a buffer the connection
//! reuses for every request: no allocation in the steady state) and consumes them from the
//! read buffer, so the read buffer holds only what follows the head (the body, pipelined
//! requests). Phases read the head through the context and never through a connection's
//! buffer. The spans of [`crate::http1::RequestHead`] and of the header fields index
//! [`OwnedHead::bytes`].
//!
//! It must not hold anything per connection (the peer, the scheme: `ClientConn`'s) or anything
//! a phase decides (`RequestCtx`'s).

use crate::http1::{find_header, HeaderField, HeaderKind, RequestHead, Span};

/// Initial capacity of the head bytes (a typical head fits; a larger one grows it once per
/// connection).
const HEAD_BYTES_INITIAL: usize = 1024;
/// Initial capacity of the header spans.
const FIELDS_INITIAL: usize = 32;

/// A request head owned by the request (lent by its connection and reused between requests).
#[derive(Debug)]
pub struct OwnedHead {
    /// The head's bytes, as the client sent them (request line, header lines, final CRLF).
    bytes: Vec<u8>,
    /// The header fields, as spans of `bytes`.
    fields: Vec<HeaderField>,
}

impl Default for OwnedHead {
    fn default() -> Self {
        Self::new()
    }
}

impl OwnedHead {
    /// An empty head with room for a typical request (allocated once per connection).
    pub fn new() -> Self {
        Self {
            bytes: Vec::with_capacity(HEAD_BYTES_INITIAL),
            fields: Vec::with_capacity(FIELDS_INITIAL),
        }
    }

    /// The spans the parser writes the header fields into; the parsed head's spans index the
    /// buffer it was parsed from until [`OwnedHead::take_bytes`] copies that buffer here.
    pub fn fields_mut(&mut self) -> &mut Vec<HeaderField> {
        &mut self.fields
    }

    /// Copies the bytes of `head`, parsed at the start of `data` (so that its spans and the
    /// fields' stay valid over the copy). Reuses the buffer: no allocation unless this head is
    /// larger than any before on the connection.
    pub fn take_bytes(&mut self, head: &RequestHead, data: &[u8]) {
        self.bytes.clear();
        self.bytes
            .extend_from_slice(data.get(..head.head_len).unwrap_or(data));
    }

    /// The head's bytes: what every span of the request's head indexes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The header fields, as spans of [`OwnedHead::bytes`].
    pub fn fields(&self) -> &[HeaderField] {
        &self.fields
    }

    /// Empties the head, for one built piece by piece (an HTTP/2 stream's, by
    /// `crate::h2::request_head`).
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.fields.clear();
    }

    /// Appends `bytes`; the span they take (`None` past 4 GiB).
    pub fn push(&mut self, bytes: &[u8]) -> Option<Span> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(bytes);
        Span::from_range(start, self.bytes.len())
    }

    /// Appends a field named `name` (a valid, lower-case token) whose value `value` writes,
    /// laid out as the line an HTTP/1.1 upstream receives it (`name: value` CRLF: the upstream
    /// head copies such lines whole), classified as the HTTP/1.1 parser classifies it.
    pub fn push_field_with(
        &mut self,
        name: &[u8],
        value: impl FnOnce(&mut Vec<u8>),
    ) -> Option<HeaderField> {
        let line_start = self.bytes.len();
        self.bytes.extend_from_slice(name);
        let name_span = Span::from_range(line_start, self.bytes.len())?;
        self.bytes.extend_from_slice(b": ");
        let value_start = self.bytes.len();
        value(&mut self.bytes);
        let value_span = Span::from_range(value_start, self.bytes.len())?;
        self.bytes.extend_from_slice(b"\r\n");
        let kind = HeaderKind::classify(name);
        let field = HeaderField {
            name: name_span,
            value: value_span,
            line: Span::from_range(line_start, self.bytes.len())?,
            kind,
            underscore: memchr::memchr(b'_', name).is_some(),
            hop_by_hop: kind.is_hop_by_hop(),
        };
        self.fields.push(field);
        Some(field)
    }

    /// The value of the first field named `name` (ASCII case-insensitive).
    pub fn find(&self, name: &[u8]) -> Option<&[u8]> {
        find_header(&self.bytes, &self.fields, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::{parse_request_head, HeadLimits};

    #[test]
    fn the_copied_head_keeps_its_spans_and_leaves_the_body_behind() {
        let wire = b"POST /a?b=1 HTTP/1.1\r\nHost: x.test\r\nContent-Length: 3\r\n\r\nabcGET";
        let mut owned = OwnedHead::new();
        let head = match parse_request_head(wire, &HeadLimits::default(), owned.fields_mut()) {
            Ok(Some(h)) => h,
            other => panic!("{other:?}"),
        };
        owned.take_bytes(&head, wire);
        assert_eq!(owned.bytes().len(), head.head_len);
        assert!(owned.bytes().ends_with(b"\r\n\r\n"));
        assert_eq!(head.path.get(owned.bytes()), b"/a");
        assert_eq!(
            head.host.map(|h| h.get(owned.bytes())),
            Some(&b"x.test"[..])
        );
        assert_eq!(owned.find(b"content-length"), Some(&b"3"[..]));
        assert_eq!(owned.fields().len(), 2);
    }
}
