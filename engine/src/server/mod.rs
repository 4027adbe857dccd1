//! The serving side: accept loops, TLS handshakes and HTTP/1.1 client connections. Sits above
//! `proxy/` (it hands each parsed request to the phases) and `worker/` (per-thread state).

pub mod conn;
pub mod listener;
pub mod tls_accept;
