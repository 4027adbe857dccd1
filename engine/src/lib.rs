//! `torii-engine`: the gateway's runtime, HTTP/1.1 path, routing, proxying and control plane.

pub mod config;
pub mod http1;
pub mod routing;
