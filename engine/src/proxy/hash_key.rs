//! The key a `hash` route hashes to pick its endpoint: a header, a cookie, a query parameter
//! or the client address, as `[routes] hash` says.
//!
//! Owns the rule for a missing or repeated key: the client address stands in (so a request
//! without the key still sticks to one endpoint per client, as Envoy's `hash_policy` falls
//! back to the next policy and nginx hashes the empty string). Reads the request's owned head;
//! no allocation (a percent-encoded query value is hashed as sent).

use torii_protocol::apikey::{cookie, Occurs};
use torii_protocol::balance::key_hash;

use crate::config::HashOn;
use crate::proxy::context::RequestCtx;

/// The hash of the request's key for `on`; `client_ip` is the client's address as text.
pub fn request_hash(ctx: &RequestCtx<'_>, on: &HashOn, client_ip: &[u8]) -> u64 {
    let data = ctx.data();
    let found: Option<&[u8]> = match on {
        HashOn::Header(name) => ctx.req.find(name.as_bytes()),
        HashOn::Cookie(name) => {
            let values = ctx
                .fields()
                .iter()
                .filter(|f| f.name.get(data).eq_ignore_ascii_case(b"cookie"))
                .map(|f| f.value.get(data));
            match cookie(values, name) {
                Occurs::Once(v) => Some(v),
                Occurs::Absent | Occurs::Repeated => None,
            }
        }
        HashOn::Query(name) => ctx
            .head
            .query
            .and_then(|q| query_value(q.get(data), name.as_bytes())),
        HashOn::ClientIp => None,
    };
    key_hash(found.unwrap_or(client_ip))
}

/// The raw value of the first parameter `name` of `query` (no decoding: a key is hashed as the
/// client sent it).
fn query_value<'q>(query: &'q [u8], name: &[u8]) -> Option<&'q [u8]> {
    query.split(|&b| b == b'&').find_map(|pair| {
        let (k, v) = match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &pair[pair.len()..]),
        };
        (k == name).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_found_raw() {
        assert_eq!(query_value(b"a=1&user=bob&b", b"user"), Some(&b"bob"[..]));
        assert_eq!(query_value(b"b", b"b"), Some(&b""[..]));
        assert_eq!(query_value(b"users=x", b"user"), None);
        assert_eq!(query_value(b"", b"user"), None);
    }
}
