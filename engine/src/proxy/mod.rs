//! The request phases of the gateway, from a parsed head to the end of the response.
//!
//! Owns the order of the phases (design.md "The request path"): route → local answers →
//! upstream connection → request head and body → response head → response body → connection
//! reuse. Each phase lives in its own submodule; this one only sequences them and decides
//! whether the client connection stays open. It returns `true` when the connection can serve
//! another request.

pub mod body;
pub mod respond;
pub mod response;
pub mod upstream_call;

use std::rc::Rc;
use std::sync::Arc;

use crate::http1::{BodyFraming, RequestHead};
use crate::io::{write_all_timeout, Stream};
use crate::server::conn::ClientState;
use crate::server::worker::Worker;
use crate::snapshot::Snapshot;

use respond::{write_error, NO_ROUTE};

/// Handles one request whose head is at the start of `st.rbuf`. Returns whether the client
/// connection may be kept alive.
pub async fn handle_request<C: Stream>(
    worker: &Rc<Worker>,
    snap: &Rc<Arc<Snapshot>>,
    client: &mut C,
    st: &mut ClientState,
    head: RequestHead,
) -> bool {
    let data = st.rbuf.data();
    let host = head.host.map(|s| s.get(data)).unwrap_or(b"");
    let path = head.path.get(data);
    let Some(route_idx) = snap.table.find(host, path) else {
        return answer_locally(worker, snap, client, st, &head, 404, NO_ROUTE).await;
    };
    if let BodyFraming::Length(n) = head.body {
        if n > snap.limits.max_body_bytes {
            return answer_locally(
                worker,
                snap,
                client,
                st,
                &head,
                413,
                "Request body too large",
            )
            .await;
        }
    }
    upstream_call::forward(worker, snap, route_idx, client, st, head).await
}

/// True when the request has a body that has not been read.
fn has_unread_body(head: &RequestHead) -> bool {
    match head.body {
        BodyFraming::None | BodyFraming::Length(0) => false,
        BodyFraming::Length(_) | BodyFraming::Chunked => true,
    }
}

/// Answers a request with one of Torii's own errors, before its body was read. When a body
/// follows the head, the connection is closed after the answer, so that the body is never read
/// as the next request (hardening.md "Connection reuse").
pub async fn answer_locally<C: Stream>(
    worker: &Worker,
    snap: &Snapshot,
    client: &mut C,
    st: &mut ClientState,
    head: &RequestHead,
    status: u16,
    message: &str,
) -> bool {
    let close = has_unread_body(head) || !head.keep_alive || worker.is_draining();
    st.rbuf.consume(head.head_len);
    st.wbuf.clear();
    write_error(&mut st.wbuf, status, message, close, &[]);
    if write_all_timeout(client, &mut st.wbuf, snap.limits.body_timeout)
        .await
        .is_err()
    {
        return false;
    }
    !close
}
