//! Validation of the quota settings: `[quotas]` (the throttling window and the Redis store),
//! the per-key limits of `[[apikeys]]` (`throttling_quota`, `daily_quota`, `monthly_quota`) and
//! `[routes.rate_limit]` (docs/configuration.md, docs/quotas.md).
//!
//! Owns their typed form ([`QuotasSpec`], [`RedisSpec`], [`RateLimitSpec`]) and every check
//! that needs no network: durations, the `redis://` / `rediss://` URL shape and the secret
//! references embedded in it (each `${env.NAME}` must name a set variable), the key prefix and
//! the numeric bounds the counters can hold. It never resolves a secret and never connects:
//! the quota store does that when it starts.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::duration::Zero;
use super::error::{join, Collector};
use super::fields::duration;
use super::raw::{RawQuotas, RawRateLimit};
use super::secret::{check_secret, resolve_path, RawSecret};
use super::LoadEnv;

/// `quotas.window` default (Otoroshi's `app.throttlingWindow`, 10 s).
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(10);
/// Shortest accepted `quotas.window`.
pub const MIN_WINDOW: Duration = Duration::from_millis(100);
/// Longest accepted `quotas.window` (longer periods are what `daily_quota` is for).
pub const MAX_WINDOW: Duration = Duration::from_secs(86_400);
/// `quotas.sync_interval` default.
pub const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_millis(200);
/// Shortest accepted `quotas.sync_interval`.
pub const MIN_SYNC_INTERVAL: Duration = Duration::from_millis(10);
/// Longest accepted `quotas.sync_interval`.
pub const MAX_SYNC_INTERVAL: Duration = Duration::from_secs(60);
/// `quotas.key_prefix` default: Otoroshi's storage root, so both can share one Redis.
pub const DEFAULT_KEY_PREFIX: &str = "otoroshi";
/// Largest per-key quota: what a counter holds (40 bits).
pub const MAX_QUOTA: u64 = (1 << 40) - 1;
/// Largest `rate_limit.per_ip`: what an entry of the per-address table holds (24 bits).
pub const MAX_PER_IP: u64 = (1 << 24) - 1;

/// `quotas.on_redis_error`: what metered calls get while Redis cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnRedisError {
    /// Keep enforcing this host's counts (the default).
    #[default]
    Local,
    /// Answer 503 to every call counted against a key with quotas.
    Deny,
}

/// `[quotas]`, validated. Defaults when the section is absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotasSpec {
    /// The throttling window (calls per window: `throttling_quota`, `per_ip`).
    pub window: Duration,
    /// The shared store, when `redis` is set.
    pub redis: Option<RedisSpec>,
    /// What metered calls get while the store is unreachable.
    pub on_redis_error: OnRedisError,
}

impl Default for QuotasSpec {
    fn default() -> Self {
        Self {
            window: DEFAULT_WINDOW,
            redis: None,
            on_redis_error: OnRedisError::Local,
        }
    }
}

/// The Redis store of `[quotas]`. The URL is kept unresolved (its `${…}` references are
/// resolved when the store starts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSpec {
    /// `redis://[user:password@]host[:port][/db]` or `rediss://…`, references unresolved.
    pub url: RawSecret,
    /// True for `rediss://`.
    pub tls: bool,
    /// `host:port` (port 6379 when absent), for logs: never the credentials.
    pub display: String,
    /// PEM CA bundle for `rediss://`, absolute; `None`: the public web roots.
    pub ca: Option<PathBuf>,
    /// First part of every key: `{key_prefix}:apikey:quotas:{kind}:{client_id}`.
    pub key_prefix: String,
    /// Time between two exchanges.
    pub sync_interval: Duration,
}

/// `[routes.rate_limit]`, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitSpec {
    /// Calls per throttling window per client address.
    pub per_ip: u64,
}

/// Validates `[quotas]` (absent: the defaults).
pub(super) fn quotas(
    c: &mut Collector,
    raw: Option<&RawQuotas>,
    base_dir: &Path,
    env: &dyn LoadEnv,
) -> QuotasSpec {
    let Some(raw) = raw else {
        return QuotasSpec::default();
    };
    let window = duration(
        c,
        "quotas.window",
        &raw.window,
        DEFAULT_WINDOW,
        Zero::Rejected,
    );
    if window < MIN_WINDOW || window > MAX_WINDOW {
        c.push("quotas.window", "must be between 100ms and 24h");
    }
    let sync_interval = duration(
        c,
        "quotas.sync_interval",
        &raw.sync_interval,
        DEFAULT_SYNC_INTERVAL,
        Zero::Rejected,
    );
    if sync_interval < MIN_SYNC_INTERVAL || sync_interval > MAX_SYNC_INTERVAL {
        c.push("quotas.sync_interval", "must be between 10ms and 60s");
    }
    let key_prefix = match raw.key_prefix.as_deref() {
        None => DEFAULT_KEY_PREFIX.to_owned(),
        Some(p) if p.is_empty() || p.bytes().any(|b| b <= b' ' || b == 0x7f) => {
            c.push(
                "quotas.key_prefix",
                "must be non-empty, without spaces or control characters",
            );
            DEFAULT_KEY_PREFIX.to_owned()
        }
        Some(p) => p.to_owned(),
    };
    let on_redis_error = match raw.on_redis_error.as_deref() {
        None | Some("local") => OnRedisError::Local,
        Some("deny") => OnRedisError::Deny,
        Some(other) => {
            c.push(
                "quotas.on_redis_error",
                format!("expected \"local\" or \"deny\", got {other:?}"),
            );
            OnRedisError::Local
        }
    };
    let redis = raw.redis.as_ref().and_then(|url| {
        let (url, tls, display) = c.check("quotas.redis", check_redis_url(url, base_dir, env))?;
        let ca = raw.redis_ca.as_deref().map(|p| resolve_path(base_dir, p));
        if ca.is_some() && !tls {
            c.push("quotas.redis_ca", "applies to rediss:// only");
        }
        Some(RedisSpec {
            url,
            tls,
            display,
            ca,
            key_prefix: key_prefix.clone(),
            sync_interval,
        })
    });
    if raw.redis.is_none() {
        if raw.redis_ca.is_some() {
            c.push("quotas.redis_ca", "needs quotas.redis");
        }
        if on_redis_error == OnRedisError::Deny {
            c.push(
                "quotas.on_redis_error",
                "\"deny\" needs quotas.redis (without a store there is nothing to be down)",
            );
        }
    }
    QuotasSpec {
        window,
        redis,
        on_redis_error,
    }
}

/// Checks the shape of a Redis URL and the secret references embedded in it; returns the URL
/// with relative `${file:…}` paths made absolute, whether it is `rediss://`, and `host:port`
/// for logs. Messages never contain the URL's credentials.
fn check_redis_url(
    url: &RawSecret,
    base_dir: &Path,
    env: &dyn LoadEnv,
) -> Result<(RawSecret, bool, String), String> {
    let text = url.expose_raw();
    // The shape is checked with each reference replaced by a marker character (a
    // `${file:…}` path holds slashes); a marker left in the host, port or path is refused.
    let mut shape = text.to_owned();
    for reference in embedded_references(text)? {
        shape = shape.replacen(reference, "\u{1}", 1);
    }
    let (tls, rest) = if let Some(r) = shape.strip_prefix("redis://") {
        (false, r)
    } else if let Some(r) = shape.strip_prefix("rediss://") {
        (true, r)
    } else {
        return Err("must start with redis:// or rediss://".to_owned());
    };
    let mut absolute = text.to_owned();
    for reference in embedded_references(text)? {
        let checked = check_secret(&RawSecret::new(reference), base_dir, env)?;
        absolute = absolute.replacen(reference, checked.expose_raw(), 1);
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    let hostport = match authority.rfind('@') {
        Some(i) => &authority[i + 1..],
        None => authority,
    };
    let (host, port) = match hostport.strip_prefix('[') {
        Some(v6) => {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| "unclosed '[' in the host".to_owned())?;
            (format!("[{h}]"), after.strip_prefix(':'))
        }
        None => match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (hostport.to_owned(), None),
        },
    };
    if host.is_empty() || host.contains('\u{1}') {
        return Err("needs a host (secrets may only appear in the user and password)".to_owned());
    }
    if hostport.contains('\u{1}') || path.contains('\u{1}') {
        return Err("secrets may only appear in the user and password".to_owned());
    }
    let port = match port {
        None => 6379,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err("invalid port (1-65535)".to_owned()),
        },
    };
    let db = path.split(['?', '#']).next().unwrap_or("");
    if !db.is_empty() && db.parse::<u32>().is_err() {
        return Err("the path must be a database number, such as /0".to_owned());
    }
    Ok((RawSecret::new(absolute), tls, format!("{host}:{port}")))
}

/// The `${…}` references of `text`, each as a whole reference string.
pub(crate) fn embedded_references(text: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    let mut offset = 0;
    while let Some(start) = rest.find("${") {
        let end = rest[start..]
            .find('}')
            .ok_or_else(|| "unclosed \"${\" in the URL".to_owned())?;
        out.push(&text[offset + start..offset + start + end + 1]);
        offset += start + end + 1;
        rest = &text[offset..];
    }
    Ok(out)
}

/// A per-key quota (`throttling_quota`, `daily_quota`, `monthly_quota`): absent = unlimited.
pub(super) fn quota(c: &mut Collector, path: &str, raw: Option<i64>) -> Option<u64> {
    let v = raw?;
    match u64::try_from(v) {
        Ok(v) if v <= MAX_QUOTA => Some(v),
        _ => {
            c.push(path, format!("must be between 0 and {MAX_QUOTA}"));
            None
        }
    }
}

/// `[routes.rate_limit]`.
pub(super) fn rate_limit(
    c: &mut Collector,
    path: &str,
    raw: &RawRateLimit,
) -> Option<RateLimitSpec> {
    let p = join(path, "per_ip");
    match raw.per_ip {
        None => {
            c.push(p, "required");
            None
        }
        Some(v) => match u64::try_from(v) {
            Ok(v) if (1..=MAX_PER_IP).contains(&v) => Some(RateLimitSpec { per_ip: v }),
            _ => {
                c.push(p, format!("must be between 1 and {MAX_PER_IP}"));
                None
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MapEnv;

    fn url(s: &str) -> Result<(bool, String), String> {
        let env = MapEnv::new([("REDIS_PASSWORD", "p@ss:/word")]);
        check_redis_url(&RawSecret::new(s), Path::new("/etc/torii"), &env).map(|(_, t, d)| (t, d))
    }

    #[test]
    fn relative_secret_files_become_absolute() {
        let env = MapEnv::default();
        let raw = RawSecret::new("redis://u:${file:secrets/pw}@h");
        let (url, _, _) =
            check_redis_url(&raw, Path::new("/etc/torii"), &env).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            url.expose_raw(),
            "redis://u:${file:/etc/torii/secrets/pw}@h"
        );
    }

    #[test]
    fn redis_urls() {
        assert_eq!(
            url("redis://127.0.0.1:6379/0"),
            Ok((false, "127.0.0.1:6379".into()))
        );
        assert_eq!(url("redis://cache"), Ok((false, "cache:6379".into())));
        assert_eq!(
            url("rediss://user:${env.REDIS_PASSWORD}@host:6380"),
            Ok((true, "host:6380".into()))
        );
        assert_eq!(
            url("redis://[::1]:7000/2"),
            Ok((false, "[::1]:7000".into()))
        );
        for bad in [
            "http://x",
            "redis://",
            "redis://:6379",
            "redis://h:0",
            "redis://h:99999",
            "redis://h/db",
            "redis://u:${env.UNSET}@h",
            "redis://u:${env.REDIS_PASSWORD@h",
            "redis://${env.REDIS_PASSWORD}:6379",
            "redis://[::1",
        ] {
            let e = url(bad).err();
            assert!(e.is_some(), "{bad}");
            assert!(!e.unwrap_or_default().contains("p@ss"), "{bad}");
        }
    }

    #[test]
    fn references_are_found() {
        assert_eq!(
            embedded_references("redis://${env.A}:${file:/x}@h"),
            Ok(vec!["${env.A}", "${file:/x}"])
        );
        assert_eq!(embedded_references("redis://h"), Ok(vec![]));
        assert!(embedded_references("redis://${env.A").is_err());
    }
}
