//! `torii-engine`: the gateway's runtime, HTTP/1.1 path, routing, proxying and control plane.
pub mod http1;
