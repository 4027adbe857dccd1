//! Tests of the quota settings: `[quotas]`, the per-key limits of `[[apikeys]]`,
//! `routes.apikeys.update_quotas` / `quota_headers` and `[routes.rate_limit]`: the configuration
//! contract's lines verbatim, defaults, and every error with its key path.

use std::path::Path;
use std::time::Duration;

use super::tests::{errors, ok, MINIMAL};
use super::*;

/// The quota lines of the configuration contract's example, kept verbatim (key names operators
/// rely on), around a minimal file.
const CONTRACT_QUOTAS: &str = r#"
[gateway]
http = ["127.0.0.1:8080"]

[quotas]                             # absent: counters are local to each host
window = "10s"                       # the throttling window (Otoroshi's app.throttlingWindow)
redis = "redis://127.0.0.1:6379/0"   # optional; rediss://user:${env.REDIS_PASSWORD}@host:6380 for TLS
key_prefix = "otoroshi"              # Otoroshi's layout: {prefix}:apikey:quotas:{second|daily|monthly|global}:{client_id}
sync_interval = "200ms"
on_redis_error = "local"             # "local": keep enforcing this host's counts | "deny": 503

[[apikeys]]
client_id = "my-id"
client_secret = "${env.MY_SECRET}"
routes = ["myservice"]               # route ids this key may call
throttling_quota = 100               # calls per quotas.window; absent = unlimited
daily_quota = 10000                  # calls per UTC day
monthly_quota = 300000               # calls per UTC month

[[routes]]
id = "myservice"
domains = ["myservice.oto.tools"]
targets = ["http://127.0.0.1:9001"]

[routes.apikeys]                     # absent = public route
update_quotas = true                 # false: check the key's quotas without counting
quota_headers = false                # Otoroshi-Daily/Monthly-Calls-Remaining and RateLimit-* back

[routes.rate_limit]                  # absent = none
per_ip = 50                          # calls per quotas.window per client address
"#;

fn load_with(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
    let env = MapEnv::new(vars.iter().copied());
    load_str_with_env(text, Path::new("/etc/torii"), &env)
}

#[test]
fn contract_lines_parse_to_their_values() {
    let c = match load_with(CONTRACT_QUOTAS, &[("MY_SECRET", "s")]) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(c.quotas.window, Duration::from_secs(10));
    assert_eq!(c.quotas.on_redis_error, OnRedisError::Local);
    let redis = c.quotas.redis.as_ref().map(|r| {
        (
            r.url.expose_raw(),
            r.tls,
            r.display.as_str(),
            r.key_prefix.as_str(),
            r.sync_interval,
        )
    });
    assert_eq!(
        redis,
        Some((
            "redis://127.0.0.1:6379/0",
            false,
            "127.0.0.1:6379",
            "otoroshi",
            Duration::from_millis(200)
        ))
    );
    let k = &c.auth.apikeys[0];
    assert_eq!(
        (k.throttling_quota, k.daily_quota, k.monthly_quota),
        (Some(100), Some(10_000), Some(300_000))
    );
    let r = c.routes[0]
        .apikeys
        .as_ref()
        .map(|a| (a.update_quotas, a.quota_headers));
    assert_eq!(r, Some((true, false)));
    assert_eq!(c.routes[0].rate_limit, Some(RateLimitSpec { per_ip: 50 }));
}

#[test]
fn defaults_without_the_sections() {
    let c = ok(&format!(
        "{MINIMAL}[routes.apikeys]\n[[apikeys]]\nclient_id = \"k\"\nclient_secret = \"s\"\n"
    ));
    assert_eq!(c.quotas, QuotasSpec::default());
    assert_eq!(c.quotas.window, Duration::from_secs(10));
    assert!(c.quotas.redis.is_none());
    let k = &c.auth.apikeys[0];
    assert_eq!(
        (k.throttling_quota, k.daily_quota, k.monthly_quota),
        (None, None, None)
    );
    assert!(!k.is_metered());
    let r = c.routes[0]
        .apikeys
        .as_ref()
        .map(|a| (a.update_quotas, a.quota_headers));
    assert_eq!(r, Some((true, false)));
    assert_eq!(c.routes[0].rate_limit, None);
    // An empty [quotas] is the defaults too; redis defaults apply once redis is set.
    let c = ok(&format!("{MINIMAL}[quotas]\n"));
    assert_eq!(c.quotas, QuotasSpec::default());
    let c = ok(&format!(
        "{MINIMAL}[quotas]\nredis = \"rediss://h\"\nredis_ca = \"ca.pem\"\non_redis_error = \"deny\"\nwindow = \"1s\"\n"
    ));
    assert_eq!(c.quotas.on_redis_error, OnRedisError::Deny);
    assert_eq!(c.quotas.window, Duration::from_secs(1));
    let r = c.quotas.redis.as_ref();
    assert_eq!(r.map(|r| r.key_prefix.as_str()), Some("otoroshi"));
    assert_eq!(r.map(|r| r.sync_interval), Some(Duration::from_millis(200)));
    assert_eq!(
        r.and_then(|r| r.ca.clone()),
        Some("/etc/torii/ca.pem".into())
    );
    assert_eq!(
        r.map(|r| (r.tls, r.display.as_str())),
        Some((true, "h:6379"))
    );
}

#[test]
fn quotas_errors_have_paths() {
    let e = errors(&format!(
        "{MINIMAL}[quotas]\nwindow = \"50ms\"\nsync_interval = \"0s\"\nkey_prefix = \"a b\"\n\
         on_redis_error = \"panic\"\nredis = \"http://h\"\n"
    ));
    assert_eq!(
        e,
        [
            "quotas.window: must be between 100ms and 24h",
            "quotas.sync_interval: duration must be greater than zero",
            "quotas.key_prefix: must be non-empty, without spaces or control characters",
            "quotas.on_redis_error: expected \"local\" or \"deny\", got \"panic\"",
            "quotas.redis: must start with redis:// or rediss://",
        ]
    );
    let e = errors(&format!(
        "{MINIMAL}[quotas]\nwindow = \"25h\"\nsync_interval = \"2m\"\non_redis_error = \"deny\"\nredis_ca = \"ca.pem\"\n"
    ));
    assert_eq!(
        e,
        [
            "quotas.window: must be between 100ms and 24h",
            "quotas.sync_interval: must be between 10ms and 60s",
            "quotas.redis_ca: needs quotas.redis",
            "quotas.on_redis_error: \"deny\" needs quotas.redis (without a store there is nothing to be down)",
        ]
    );
    let e = errors(&format!(
        "{MINIMAL}[quotas]\nredis = \"redis://u:${{env.NOT_SET}}@h\"\n"
    ));
    assert_eq!(e, ["quotas.redis: environment variable NOT_SET is not set"]);
    let e = errors(&format!(
        "{MINIMAL}[quotas]\nredis = \"redis://h\"\nredis_ca = \"ca.pem\"\n"
    ));
    assert_eq!(e, ["quotas.redis_ca: applies to rediss:// only"]);
    let e = errors(&format!("{MINIMAL}[quotas]\nwindw = \"1s\"\n"));
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("quotas.windw: unknown"), "{e:?}");
}

#[test]
fn redis_url_secrets_are_checked_and_never_shown() {
    let text = format!(
        "{MINIMAL}[quotas]\nredis = \"rediss://user:${{env.REDIS_PASSWORD}}@cache:6380/1\"\n"
    );
    let c = match load_with(&text, &[("REDIS_PASSWORD", "hunter2-secret")]) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    let r = c.quotas.redis.as_ref();
    assert_eq!(r.map(|r| r.display.as_str()), Some("cache:6380"));
    let debug = format!("{:?}", c.quotas);
    assert!(
        !debug.contains("REDIS_PASSWORD") && !debug.contains("hunter2"),
        "{debug}"
    );
    // A literal password in the URL is not shown in errors either.
    let bad = format!("{MINIMAL}[quotas]\nredis = \"redis://u:literal-pw@h:70000\"\n");
    let e = errors(&bad);
    assert_eq!(e, ["quotas.redis: invalid port (1-65535)"]);
}

#[test]
fn key_quota_errors_have_paths() {
    let e = errors(&format!(
        "{MINIMAL}[[apikeys]]\nclient_id = \"a\"\nclient_secret = \"s\"\nthrottling_quota = -1\n\
         daily_quota = 1099511627776\nmonthly_quota = 0\n"
    ));
    assert_eq!(
        e,
        [
            "apikeys[0].throttling_quota: must be between 0 and 1099511627775",
            "apikeys[0].daily_quota: must be between 0 and 1099511627775",
        ]
    );
    // Zero is a valid limit: every call is refused.
    let c = ok(&format!(
        "{MINIMAL}[[apikeys]]\nclient_id = \"a\"\nclient_secret = \"s\"\nmonthly_quota = 0\n"
    ));
    assert_eq!(c.auth.apikeys[0].monthly_quota, Some(0));
    assert!(c.auth.apikeys[0].is_metered());
    let e = errors(&format!(
        "{MINIMAL}[[apikeys]]\nclient_id = \"a\"\nclient_secret = \"s\"\ndaily_quota = \"10\"\n"
    ));
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("apikeys[0].daily_quota: "), "{e:?}");
}

#[test]
fn route_settings_and_their_errors() {
    let c = ok(&format!(
        "{MINIMAL}[routes.apikeys]\nupdate_quotas = false\nquota_headers = true\n[routes.rate_limit]\nper_ip = 16777215\n"
    ));
    let r = c.routes[0]
        .apikeys
        .as_ref()
        .map(|a| (a.update_quotas, a.quota_headers));
    assert_eq!(r, Some((false, true)));
    assert_eq!(
        c.routes[0].rate_limit,
        Some(RateLimitSpec { per_ip: 16_777_215 })
    );
    assert_eq!(
        errors(&format!("{MINIMAL}[routes.rate_limit]\n")),
        ["routes[0].rate_limit.per_ip: required"]
    );
    for bad in ["0", "-3", "16777216"] {
        assert_eq!(
            errors(&format!("{MINIMAL}[routes.rate_limit]\nper_ip = {bad}\n")),
            ["routes[0].rate_limit.per_ip: must be between 1 and 16777215"],
            "{bad}"
        );
    }
    let e = errors(&format!("{MINIMAL}[routes.rate_limit]\nper_ipp = 3\n"));
    assert!(
        e[0].starts_with("routes[0].rate_limit.per_ipp: unknown"),
        "{e:?}"
    );
    let e = errors(&format!("{MINIMAL}[routes.apikeys]\nupdate_quota = true\n"));
    assert!(
        e[0].starts_with("routes[0].apikeys.update_quota: unknown"),
        "{e:?}"
    );
}
