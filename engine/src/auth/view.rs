//! [`HeadView`]: the protocol's [`RequestView`] over a parsed request head, without copying.
//!
//! Owns only the lookups: a header by name (first occurrence, case-insensitive), a query
//! parameter (percent-decoded, last occurrence, as the protocol's helper), and a cookie from
//! the first `Cookie` header. Everything borrows the connection's read buffer.

use std::borrow::Cow;

use torii_protocol::apikey::{cookie, query_param, RequestView};

use crate::http1::{find_header, HeaderField, RequestHead};

/// A parsed head seen through [`RequestView`].
#[derive(Debug, Clone, Copy)]
pub struct HeadView<'a> {
    data: &'a [u8],
    headers: &'a [HeaderField],
    query: &'a [u8],
}

impl<'a> HeadView<'a> {
    /// The head `head` whose spans index `data` (the connection's unread bytes).
    pub fn new(data: &'a [u8], headers: &'a [HeaderField], head: &RequestHead) -> Self {
        HeadView {
            data,
            headers,
            query: head.query.map(|q| q.get(data)).unwrap_or_default(),
        }
    }
}

impl RequestView for HeadView<'_> {
    fn header(&self, name: &[u8]) -> Option<&[u8]> {
        find_header(self.data, self.headers, name)
    }

    fn query_param(&self, name: &str) -> Option<Cow<'_, str>> {
        if self.query.is_empty() {
            return None;
        }
        query_param(self.query, name)
    }

    fn cookie(&self, name: &str) -> Option<&[u8]> {
        self.header(b"cookie").and_then(|h| cookie(h, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::{parse_request_head, HeadLimits};

    #[test]
    fn reads_headers_query_and_cookies() {
        let buf = b"GET /p?a=1&x-api-key=id%2B1 HTTP/1.1\r\nHost: h\r\n\
                    OTOROSHI-CLIENT-ID: me\r\nCookie: access_token=t; b=2\r\n\r\n";
        let mut headers = Vec::new();
        let parsed = parse_request_head(buf, &HeadLimits::default(), &mut headers);
        let Ok(Some(head)) = parsed else {
            panic!("head does not parse")
        };
        let v = HeadView::new(buf, &headers, &head);
        assert_eq!(v.header(b"otoroshi-client-id"), Some(&b"me"[..]));
        assert_eq!(v.query_param("x-api-key").as_deref(), Some("id+1"));
        assert_eq!(v.query_param("zz"), None);
        assert_eq!(v.cookie("access_token"), Some(&b"t"[..]));
        assert_eq!(v.cookie("nope"), None);
    }
}
