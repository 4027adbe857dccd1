//! `torii-engine`: the gateway's runtime, HTTP/1.1 path, routing, proxying and control plane,
//! and the `torii` binary's commands.
//!
//! Request path and module map: `docs/architecture.md`.

pub mod access_log;
pub mod admin;
pub mod auth;
pub mod cli;
pub mod config;
pub mod control;
pub mod cpus;
pub mod demo;
pub mod h2;
pub mod health;
pub mod http1;
pub mod io;
pub mod jwks;
pub mod logging;
pub mod metrics;
pub mod mirror;
pub mod proxy;
pub mod quota;
pub mod routing;
pub mod rules;
pub mod runtime;
pub mod secure;
pub mod server;
pub mod shared;
pub mod snapshot;
pub mod sysd;
pub mod tls;
pub mod tunnel;
pub mod upstream;
pub mod worker;
