//! Removing API-key credentials from the forwarded request (`wipe_credentials`, on by
//! default, as Otoroshi's `wipe_backend_request`): the headers that carried them are dropped while the head
//! is copied, a query parameter is cut out of the request line, and a cookie out of the
//! `Cookie` lines, which are then written again without it.
//!
//! Owns only byte rewriting over the already rendered upstream head and the client's buffer;
//! it decides nothing (the [`Wipe`] set comes from [`super::check`]). Headers and request lines
//! without a carrier are never touched.

use torii_protocol::apikey::percent_decode;

use super::check::{Slot, Wipe, COOKIE_SLOTS, HEADER_SLOTS, QUERY_SLOTS};
use crate::http1::{eq_ignore_case, HeaderField, RequestHead};

/// True when the client header `name` must not be forwarded: a carrier in `wipe`, or a
/// `Cookie` line that [`write_cookie_lines`] writes again.
pub fn drops_header(wipe: &Wipe<'_>, name: &[u8]) -> bool {
    if wipe.is_empty() {
        return false;
    }
    if wipe.touches_cookies() && eq_ignore_case(name, b"cookie") {
        return true;
    }
    if HEADER_SLOTS
        .iter()
        .any(|(slot, n)| wipe.has(*slot) && eq_ignore_case(n.as_bytes(), name))
    {
        return true;
    }
    match wipe.custom() {
        Some((id, secret)) => {
            (wipe.has(Slot::CustomId) && eq_ignore_case(id.as_bytes(), name))
                || (wipe.has(Slot::CustomSecret) && eq_ignore_case(secret.as_bytes(), name))
        }
        None => false,
    }
}

/// Appends to `out` the `&`-separated pairs of `query` whose (decoded) name is not a wiped
/// query carrier, each as sent.
pub fn filter_query(wipe: &Wipe<'_>, query: &[u8], out: &mut Vec<u8>) {
    for pair in query.split(|&b| b == b'&') {
        if pair.is_empty() {
            continue;
        }
        let name = pair.split(|&b| b == b'=').next().unwrap_or_default();
        let name = percent_decode(name, true);
        let wiped = QUERY_SLOTS
            .iter()
            .any(|(slot, n)| wipe.has(*slot) && name.as_ref() == n.as_bytes());
        if !wiped {
            if !out.is_empty() {
                out.push(b'&');
            }
            out.extend_from_slice(pair);
        }
    }
}

/// Rewrites the query of the request line at the start of `up` (rendered from `head` by
/// `copy_request_head`: method, space, a path of `path_len` bytes, `?`, the query) without the
/// wiped parameters, dropping the `?` when nothing is left. `scratch` is a reusable buffer.
pub fn rewrite_request_line(
    wipe: &Wipe<'_>,
    data: &[u8],
    head: &RequestHead,
    path_len: usize,
    up: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) {
    let Some(q) = head.query else { return };
    if !wipe.touches_query() {
        return;
    }
    let start = head.method_span.len() + 1 + path_len + 1;
    let end = start + q.len();
    let (Some(b'?'), Some(current)) = (
        start.checked_sub(1).and_then(|i| up.get(i)),
        up.get(start..end),
    ) else {
        return;
    };
    if current != q.get(data) {
        return;
    }
    scratch.clear();
    filter_query(wipe, q.get(data), scratch);
    if scratch.is_empty() {
        up.drain(start - 1..end);
    } else {
        up.splice(start..end, scratch.iter().copied());
    }
}

/// Appends each client `Cookie` line again, without the wiped cookies (a line left empty is
/// not written). Call only when [`Wipe::touches_cookies`]; [`drops_header`] dropped them.
pub fn write_cookie_lines(
    wipe: &Wipe<'_>,
    data: &[u8],
    headers: &[HeaderField],
    out: &mut Vec<u8>,
) {
    for h in headers {
        if !eq_ignore_case(h.name.get(data), b"cookie") {
            continue;
        }
        let line_start = out.len();
        out.extend_from_slice(b"cookie: ");
        let values_start = out.len();
        for part in h.value.get(data).split(|&b| b == b';') {
            let part = part.trim_ascii();
            if part.is_empty() {
                continue;
            }
            let name = part
                .split(|&b| b == b'=')
                .next()
                .unwrap_or_default()
                .trim_ascii();
            let wiped = COOKIE_SLOTS
                .iter()
                .any(|(slot, n)| wipe.has(*slot) && name == n.as_bytes());
            if wiped {
                continue;
            }
            if out.len() > values_start {
                out.extend_from_slice(b"; ");
            }
            out.extend_from_slice(part);
        }
        if out.len() == values_start {
            out.truncate(line_start);
        } else {
            out.extend_from_slice(b"\r\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::check::{check, HeadView};
    use crate::auth::{AuthState, RouteApiKeys};
    use crate::http1::{copy_request_head, parse_request_head, HeadLimits};
    use torii_protocol::apikey::{ApiKey, ApiKeyStore, Extractors};

    fn state() -> AuthState {
        let mut k = ApiKey::new("id", "sec", "n");
        k.routes = vec!["r".into()];
        k.allow_client_id_only = true;
        AuthState {
            store: ApiKeyStore::new(vec![k]).unwrap_or_default(),
            ..AuthState::default()
        }
    }

    /// Runs the check and renders the forwarded head as the proxy does.
    fn forwarded(raw: &[u8], wipe_credentials: bool) -> String {
        let auth = state();
        let route = RouteApiKeys {
            extractors: Extractors {
                custom: Some(("X-Id".into(), "X-Secret".into())),
                ..Extractors::default()
            },
            wipe_credentials,
            required: Default::default(),
        };
        let mut headers = Vec::new();
        let Ok(Some(head)) = parse_request_head(raw, &HeadLimits::default(), &mut headers) else {
            panic!("bad head")
        };
        let view = HeadView::new(raw, &headers, &head);
        let Ok(admitted) = check(&auth, &route, "r", &view, 0, None) else {
            panic!("refused")
        };
        let w = admitted.wipe;
        let mut up = Vec::new();
        let path = head.path.get(raw);
        copy_request_head(raw, &head, path, &headers, false, &mut up, |f| {
            drops_header(&w, f.name.get(raw))
        });
        rewrite_request_line(&w, raw, &head, path.len(), &mut up, &mut Vec::new());
        if w.touches_cookies() {
            write_cookie_lines(&w, raw, &headers, &mut up);
        }
        String::from_utf8_lossy(&up).into_owned()
    }

    #[test]
    fn query_carrier_is_cut_from_the_request_line() {
        let out = forwarded(
            b"GET /a?x=1&x-api-key=id&y=2 HTTP/1.1\r\nHost: h\r\n\r\n",
            true,
        );
        assert!(out.starts_with("GET /a?x=1&y=2 HTTP/1.1\r\n"), "{out}");
        let out = forwarded(b"GET /a?x%2Dapi-key=id HTTP/1.1\r\nHost: h\r\n\r\n", true);
        assert!(out.starts_with("GET /a HTTP/1.1\r\n"), "{out}");
        let out = forwarded(b"GET /a?x-api-key=id HTTP/1.1\r\nHost: h\r\n\r\n", false);
        assert!(out.starts_with("GET /a?x-api-key=id HTTP/1.1\r\n"), "{out}");
    }

    #[test]
    fn cookie_carrier_is_cut_from_the_cookie_line() {
        let out = forwarded(
            b"GET / HTTP/1.1\r\nHost: h\r\nCookie: a=1; x-api-key=id; b=2\r\nX-Other: o\r\n\r\n",
            true,
        );
        assert!(out.contains("cookie: a=1; b=2\r\n"), "{out}");
        assert!(!out.contains("x-api-key"), "{out}");
        assert!(out.contains("X-Other: o\r\n"), "{out}");
        let out = forwarded(
            b"GET / HTTP/1.1\r\nHost: h\r\nCookie: x-api-key=id\r\n\r\n",
            true,
        );
        assert!(!out.to_ascii_lowercase().contains("cookie"), "{out}");
    }

    #[test]
    fn header_carriers_are_dropped_others_kept() {
        let out = forwarded(
            b"GET / HTTP/1.1\r\nHost: h\r\nX-Id: id\r\nX-Secret: sec\r\nAuthorization: Digest x\r\n\r\n",
            true,
        );
        assert!(!out.contains("X-Id") && !out.contains("X-Secret"), "{out}");
        // An Authorization scheme no extractor reads is the backend's business.
        assert!(out.contains("Authorization: Digest x\r\n"), "{out}");
        let out = forwarded(
            b"GET / HTTP/1.1\r\nHost: h\r\nX-Id: id\r\nX-Secret: sec\r\n\r\n",
            false,
        );
        assert!(
            out.contains("X-Id: id\r\n") && out.contains("X-Secret: sec\r\n"),
            "{out}"
        );
    }
}
