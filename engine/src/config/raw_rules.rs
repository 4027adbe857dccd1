//! The request and response rules of a `[[routes]]` entry as serde reads them: `rewrite`,
//! `redirect`, `request_headers`, `response_headers` and `[routes.cors]` (the plain keys,
//! `strip_prefix`, `target_root`, `methods`, `allow_ips`… are fields of `RawRoute` itself).
//!
//! Owns only the shape, loose like the rest of `raw` (every key optional, statuses as `i64`,
//! `max_age` as a [`RawDuration`]) so that `validate_rules` and `validate_cors` report every
//! bad value with its key path. Header tables are free maps (`name = "value"`): their names
//! are checked by validation, not by serde. Re-exported from `raw`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::duration::RawDuration;

/// `rewrite = { from = "^/v1/(.*)$", to = "/v2/$1" }`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRewrite {
    /// A regex on the path sent upstream (after `strip_prefix`).
    pub from: Option<String>,
    /// The replacement, with `$1`, `${1}` or `${name}` for the groups of `from`.
    pub to: Option<String>,
}

/// `redirect = { to = "https://new.example.com${path}", status = 308 }`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedirect {
    /// The `Location`, with `${path}`, `${query}` and `${host}`.
    pub to: Option<String>,
    /// 301, 302, 303, 307 or 308.
    pub status: Option<i64>,
}

/// `request_headers = { … }` and `response_headers = { … }`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeaderRules {
    /// Name → value: replaces every line of that name.
    pub set: Option<BTreeMap<String, String>>,
    /// Name → value: written only when no line of that name is there.
    pub set_if_missing: Option<BTreeMap<String, String>>,
    /// Name → value: one more line, whatever is there.
    pub add: Option<BTreeMap<String, String>>,
    /// Names whose lines are removed.
    pub remove: Option<Vec<String>>,
}

/// `[routes.cors]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCors {
    /// Exact origins, `https://*.suffix` patterns, or `"*"`.
    pub allow_origins: Option<Vec<String>>,
    /// Methods a preflight may ask for.
    pub allow_methods: Option<Vec<String>>,
    /// Request headers a preflight may ask for.
    pub allow_headers: Option<Vec<String>>,
    /// Response headers scripts may read.
    pub expose_headers: Option<Vec<String>>,
    /// `Access-Control-Allow-Credentials: true`.
    pub allow_credentials: Option<bool>,
    /// How long a browser may cache a preflight answer.
    pub max_age: Option<RawDuration>,
}
