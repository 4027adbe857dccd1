//! `torii-loadtest`: an HTTP/1.1 load generator on monoio (io_uring, epoll fallback), a
//! WebSocket echo load, and the scenario suite that compares the Torii gateway against its
//! backend and nginx.
//!
//! The crate is a library so the suite and the tests drive the generator in process; the binary
//! (`main.rs`) only parses the command line. From `torii-engine` it uses the runtime builder and
//! the TLS helpers (ring provider, PEM reading, the plain-or-TLS stream); the suite talks to the
//! `torii` binary as a child process.

pub mod cli;
pub mod conn;
pub mod cpu;
pub mod generator;
pub mod report;
pub mod response;
pub mod schedule;
pub mod stats;
pub mod suite;
pub mod target;
pub mod tls;
pub mod websocket;
