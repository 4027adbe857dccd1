//! WebSocket tunnel metrics: how each upgrade attempt ended ([`TunnelResult`]) and the names of
//! the byte counters' directions.
//!
//! Owns the result labels of `torii_websocket_tunnels_total{route,result}` and the direction
//! labels of `torii_websocket_bytes_total` (rendered by `crate::admin`). The counters themselves are
//! per route and worker, in [`super::RouteMetrics`]'s slots (written by one worker, summed at
//! scrape time); the open-tunnel gauge is per worker, in `shared::WorkerStats`. Nothing here
//! runs on the request path but the enum.

/// How an upgrade request that reached the tunnel limit or the backend's answer ended. One
/// count per upgrade attempt, made when it ends (a tunnel open for an hour is counted when it
/// closes; `torii_websocket_tunnels_active` shows the open ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelResult {
    /// `limits.max_websocket_tunnels_per_worker` was reached: 503, nothing sent upstream.
    OverLimit,
    /// The backend answered something other than `101`, relayed as an ordinary response.
    Refused,
    /// The backend's `101` failed a check (accept value, `Upgrade`, the challenge): 502.
    BadHandshake,
    /// The tunnel ended because the client closed (or reset) its side.
    ClientClosed,
    /// The tunnel ended because the backend closed (or reset) its side.
    UpstreamClosed,
    /// No byte either way for `limits.websocket_idle_timeout`.
    IdleTimeout,
    /// Still open at the end of `gateway.drain_timeout` during shutdown.
    Drain,
    /// Closed because a reload withdrew its admission (route removed or closed to WebSocket,
    /// key disabled, removed, expired or no longer allowed on the route).
    Revoked,
    /// Closed at `limits.websocket_max_lifetime`.
    MaxLifetime,
}

impl TunnelResult {
    /// Every result, in counter order.
    pub const ALL: [TunnelResult; 9] = [
        TunnelResult::OverLimit,
        TunnelResult::Refused,
        TunnelResult::BadHandshake,
        TunnelResult::ClientClosed,
        TunnelResult::UpstreamClosed,
        TunnelResult::IdleTimeout,
        TunnelResult::Drain,
        TunnelResult::Revoked,
        TunnelResult::MaxLifetime,
    ];

    /// The metric label (`result="…"`).
    pub fn label(self) -> &'static str {
        match self {
            TunnelResult::OverLimit => "over_limit",
            TunnelResult::Refused => "refused",
            TunnelResult::BadHandshake => "bad_handshake",
            TunnelResult::ClientClosed => "client_closed",
            TunnelResult::UpstreamClosed => "upstream_closed",
            TunnelResult::IdleTimeout => "idle_timeout",
            TunnelResult::Drain => "drain",
            TunnelResult::Revoked => "revoked",
            TunnelResult::MaxLifetime => "max_lifetime",
        }
    }

    /// Index in [`TunnelResult::ALL`].
    pub(super) fn index(self) -> usize {
        self as usize
    }
}

/// Directions of the byte counters, in counter order.
pub const DIRECTIONS: [&str; 2] = ["client_to_upstream", "upstream_to_client"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_unique_and_in_index_order() {
        for (i, r) in TunnelResult::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
        let labels: std::collections::HashSet<_> =
            TunnelResult::ALL.iter().map(|r| r.label()).collect();
        assert_eq!(labels.len(), TunnelResult::ALL.len());
    }
}
