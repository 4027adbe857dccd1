//! The serving side: accept loops, TLS handshakes, protocol negotiation (ALPN, the h2c
//! preface), HTTP/1.1 client connections and HTTP/2 connections (one task per stream, each
//! stream served by the HTTP/1.1 connection code over `crate::h2`'s adapter). Sits above
//! `proxy/` (it hands each parsed request to the phases) and `worker/` (per-thread state).

pub mod conn;
pub mod h2_conn;
pub mod listener;
pub mod negotiate;
pub mod tls_accept;
