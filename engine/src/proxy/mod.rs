//! The request phases of the gateway, from a parsed head to the end of the response.
//!
//! Three kinds of state, each in its own place: the worker (`crate::worker`: pools, RNG,
//! caches), the connection ([`client::ClientConn`]: stream and buffers) and the request
//! ([`context::RequestCtx`]: everything about one request). [`phases::handle_request`] runs the
//! phases in order (the table is in [`phases`]); they answer the client through
//! [`downstream::Downstream`]; every error is a [`error::ProxyError`], answered by
//! [`answer::answer`] (every answer Torii makes itself goes through [`answer::respond`]); the
//! connection's fate is an [`context::Outcome`].
//!
//! This module never imports `server/` (which drives it) and imports `worker/` from below.

pub mod answer;
pub mod authenticate;
pub mod body;
pub mod body_rate;
pub mod client;
pub mod connect;
pub mod context;
pub mod downstream;
pub mod downstream_h1;
pub mod error;
pub mod grpc;
pub mod h2_pipe;
pub mod h2_response;
pub mod hash_key;
pub mod head;
pub mod oauth_endpoint;
pub mod phases;
pub mod record;
pub mod relay_h1;
pub mod respond;
pub mod response;
pub mod route;
pub mod route_rules;
pub mod upgrade;
pub mod upstream_call;
pub mod upstream_h2;
pub mod upstream_head;
pub mod upstream_head_h2;
pub mod upstream_response;
