//! The upstream keys of a `[[routes]]` entry as serde reads them: `targets` entries (a URL or
//! a table), `hash`, `timeouts`, `[routes.health_check]`, `[routes.outlier_detection]` and
//! `[routes.retry]`.
//!
//! Owns only the shape, loose like the rest of `raw` (optional keys, durations as
//! [`RawDuration`], counts as `i64`) so that validation (`validate_target`,
//! `validate_upstream`, `validate_health`) reports every bad value with its key path. Two
//! entries accept two forms and read them by hand ([`RawTarget`], [`RawStatus`]): a table
//! entry goes through serde's derived reader, so an unknown or mistyped key inside it is an
//! error at its own path (`routes[0].targets[1].wieght`), as anywhere else in the file.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::duration::RawDuration;

/// One entry of `targets`: `"http://host:port"`, or `{ url = "…", weight = 3, … }`.
#[derive(Debug, Clone, PartialEq)]
pub enum RawTarget {
    /// A URL alone (weight 1, not a backup, protocol from the scheme).
    Url(String),
    /// A URL with its settings.
    Table(RawTargetTable),
}

impl<'de> Deserialize<'de> for RawTarget {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawTarget;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a target URL string or a table such as { url = \"http://host:port\", weight = 2 }",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawTarget, E> {
                Ok(RawTarget::Url(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawTarget, A::Error> {
                // The derived reader of the table, fed the same map: its errors (unknown key,
                // wrong type) keep the key they concern.
                RawTargetTable::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawTarget::Table)
            }
        }
        d.deserialize_any(V)
    }
}

/// A `targets` entry written as a table (`schema` lists its keys under `routes.targets`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTargetTable {
    /// `http://`, `https://` or `h2c://` URL.
    pub url: Option<String>,
    /// Share of the traffic, 1–1000.
    pub weight: Option<i64>,
    /// Takes traffic only when no primary endpoint is available.
    pub backup: Option<bool>,
    /// `"http1"`, `"h2"`, `"h2c"` or `"auto"`.
    pub protocol: Option<String>,
}

/// `routes.hash`: what a `"hash"` policy hashes (exactly one key).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHash {
    /// A request header name.
    pub header: Option<String>,
    /// A cookie name.
    pub cookie: Option<String>,
    /// A query parameter name.
    pub query: Option<String>,
    /// `true`: the client address.
    pub client_ip: Option<bool>,
}

/// `routes.timeouts`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTimeouts {
    /// TCP connect plus TLS handshake.
    pub connect: Option<RawDuration>,
    /// From the request sent to the whole response head.
    pub response_header: Option<RawDuration>,
    /// Longest silence while the response body streams.
    pub idle: Option<RawDuration>,
}

/// `[routes.health_check]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealthCheck {
    /// Path (and query) probed with `GET`.
    pub path: Option<String>,
    /// Time between two probes of one endpoint.
    pub interval: Option<RawDuration>,
    /// Deadline of one probe.
    pub timeout: Option<RawDuration>,
    /// Good probes in a row that make an endpoint healthy.
    pub healthy_threshold: Option<i64>,
    /// Bad probes in a row that make an endpoint unhealthy.
    pub unhealthy_threshold: Option<i64>,
    /// Accepted statuses: codes and ranges.
    pub statuses: Option<Vec<RawStatus>>,
}

/// One entry of `health_check.statuses`: `200`, or `"200-299"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawStatus {
    /// An integer: one status.
    Code(i64),
    /// A string: a range `"from-to"` (validation says what else is wrong with it).
    Text(String),
}

impl<'de> Deserialize<'de> for RawStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawStatus;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a status (an integer) or a range such as \"200-299\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawStatus, E> {
                Ok(RawStatus::Text(v.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawStatus, E> {
                Ok(RawStatus::Code(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawStatus, E> {
                Ok(RawStatus::Code(i64::try_from(v).unwrap_or(i64::MAX)))
            }
        }
        d.deserialize_any(V)
    }
}

/// `[routes.outlier_detection]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutlier {
    /// 5xx answers in a row that eject an endpoint (0: off).
    pub consecutive_5xx: Option<i64>,
    /// Gateway failures in a row that eject an endpoint (0: off).
    pub consecutive_gateway_failure: Option<i64>,
    /// Length of a first ejection.
    pub base_ejection_time: Option<RawDuration>,
    /// Longest ejection.
    pub max_ejection_time: Option<RawDuration>,
    /// Share of the endpoints that may be ejected at once, percent.
    pub max_ejection_percent: Option<i64>,
}

/// `[routes.retry]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    /// Tries in all, the first included.
    pub attempts: Option<i64>,
    /// What is retried: `connect-failure`, `reset`, `502`, `503`, `504`.
    pub on: Option<Vec<String>>,
    /// Deadline of one try.
    pub per_try_timeout: Option<RawDuration>,
    /// Wait between tries.
    pub backoff: Option<RawBackoff>,
    /// Retries in flight, percent of the route's requests in flight.
    pub budget_percent: Option<i64>,
}

/// `routes.retry.backoff`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBackoff {
    /// First backoff bound.
    pub base: Option<RawDuration>,
    /// Largest backoff bound.
    pub max: Option<RawDuration>,
}
