//! Warnings: setups that load but fail at request time, or are probably mistakes. `torii check`
//! prints them (exit 0), `torii run` logs them at start and after every successful reload.
//!
//! Owns the checks that look across sections of a validated [`Config`] (listeners against the
//! token service, API keys against routes, algorithms against their per-request cost) and
//! collects them with the warnings validation found on single keys (a secret written in shell
//! syntax), each placed at its line and column. Pure: the clock is a parameter, no file or
//! secret is read, nothing is logged here. Every rule below says what happens at request time
//! if the warning is ignored.

use std::collections::HashSet;

use super::error::ConfigWarning;
use super::{AlgoSpec, ChallengeVersion, Config};

/// Every warning for `config`, placed at its line and column, in a stable order: the ones
/// found while validating keys, then the cross-section ones. `now_unix` is the current time
/// (for keys whose `valid_until` has passed).
pub fn warnings(config: &Config, now_unix: u64) -> Vec<ConfigWarning> {
    let mut out = config.warnings.clone();
    token_service(config, &mut out);
    api_keys(config, now_unix, &mut out);
    routes_with_api_keys(config, &mut out);
    rsa_per_request(config, &mut out);
    header_clashes(config, &mut out);
    admin_exposed(config, &mut out);
    for w in &mut out {
        if let Some(at) = config.locations.describe(&w.path) {
            w.message = format!("{} {at}", w.message);
        }
    }
    out
}

fn push(out: &mut Vec<ConfigWarning>, path: impl Into<String>, message: impl Into<String>) {
    out.push(ConfigWarning {
        path: path.into(),
        message: message.into(),
    });
}

/// `[client_credentials]`: where its endpoints answer, what it signs with, who can use it.
fn token_service(config: &Config, out: &mut Vec<ConfigWarning>) {
    let Some(cc) = &config.auth.client_credentials else {
        return;
    };
    if cc.secure && config.gateway.https.is_empty() {
        // The endpoints refuse plain-HTTP connections (what Otoroshi's `secure` flag does).
        push(
            out,
            "client_credentials.secure",
            "secure = true (the default) and no gateway.https listener: every token request will be answered 400 \"use a secure channel\"; add an https listener, or set secure = false if TLS ends in front of Torii",
        );
    }
    if config.auth.apikeys.is_empty() {
        push(
            out,
            "client_credentials",
            "no [[apikeys]]: no client can authenticate, so no token can be issued",
        );
    }
    if config.auth.key_pairs.is_empty() {
        push(
            out,
            "client_credentials",
            format!(
                "no [[key_pairs]]: tokens are signed with an ephemeral P-256 key pair named {:?} made at start; they stop verifying when the process restarts (make a key with `torii keygen --kind ec-p256 --out FILE` and add it to [[key_pairs]])",
                cc.default_key_pair
            ),
        );
    }
}

/// `[[apikeys]]` that no request can use.
fn api_keys(config: &Config, now_unix: u64, out: &mut Vec<ConfigWarning>) {
    let with_keys: HashSet<&str> = config
        .routes
        .iter()
        .filter(|r| r.apikeys.is_some())
        .map(|r| r.id.as_str())
        .collect();
    for (i, key) in config.auth.apikeys.iter().enumerate() {
        let path = format!("apikeys[{i}]");
        if key.enabled && key.valid_until.is_some_and(|until| until <= now_unix) {
            push(
                out,
                format!("{path}.valid_until"),
                format!(
                    "key {:?} has expired: every request and token request with it is refused",
                    key.client_id
                ),
            );
        }
        // With the token service on, a key without routes still gets tokens (for services
        // that verify them with [routes.jwt], as in the service-to-service example).
        if key.routes.is_empty() && config.auth.client_credentials.is_none() {
            push(
                out,
                format!("{path}.routes"),
                format!(
                    "key {:?} may call no route (its routes list is empty) and there is no [client_credentials] to get a token from: it can never be used",
                    key.client_id
                ),
            );
        }
        for (j, route) in key.routes.iter().enumerate() {
            if !with_keys.contains(route.as_str()) {
                push(
                    out,
                    format!("{path}.routes[{j}]"),
                    format!(
                        "route {route:?} has no [routes.apikeys]: it is public, so this key is never asked for there (add [routes.apikeys] to the route to require a key)"
                    ),
                );
            }
        }
    }
}

/// Routes with `[routes.apikeys]` that every request fails.
fn routes_with_api_keys(config: &Config, out: &mut Vec<ConfigWarning>) {
    let token_source =
        config.auth.client_credentials.is_some() || !config.auth.key_pairs.is_empty();
    for (i, route) in config.routes.iter().enumerate() {
        let Some(spec) = &route.apikeys else {
            continue;
        };
        let path = format!("routes[{i}].apikeys");
        let callers: Vec<_> = config
            .auth
            .apikeys
            .iter()
            .filter(|k| k.enabled && k.routes.contains(&route.id))
            .collect();
        if callers.is_empty() {
            push(
                out,
                path,
                format!(
                    "no enabled [[apikeys]] entry lists route {:?} in its routes: every request will be refused (401 without a key, 403 with one)",
                    route.id
                ),
            );
            continue;
        }
        // Which extractors can admit one of those keys at all.
        let others = spec.headers || spec.basic || spec.custom.is_some();
        let id_only = spec.client_id && callers.iter().any(|k| k.allow_client_id_only);
        let bearer = spec.bearer && token_source;
        if !(others || id_only || bearer) {
            let mut why = Vec::new();
            if spec.client_id {
                why.push("client_id admits only keys with allow_client_id_only = true, and no key allowed here has it");
            }
            if spec.bearer {
                why.push("bearer needs tokens, and there is no [client_credentials] or [[key_pairs]] to issue or verify them");
            }
            push(
                out,
                format!("{path}.extractors"),
                format!(
                    "no extractor of this route can admit a key ({}): every request will be refused",
                    why.join("; ")
                ),
            );
        }
    }
}

/// RS*/PS* signatures made on every request (the info token; the V2 challenge token).
fn rsa_per_request(config: &Config, out: &mut Vec<ConfigWarning>) {
    fn is_rsa(a: &AlgoSpec) -> bool {
        a.algorithm.starts_with("RS") || a.algorithm.starts_with("PS")
    }
    let cost = |what: &str, algorithm: &str| {
        format!(
            "{algorithm} signs the {what} with RSA on every request, about 0.6-0.8 ms of CPU each (docs/performance.md): ES256 (about 20 µs) or an HMAC algorithm such as HS512 (about 2 µs) cost far less"
        )
    };
    for (i, route) in config.routes.iter().enumerate() {
        if let Some(it) = &route.info_token {
            if is_rsa(&it.algo) {
                push(
                    out,
                    format!("routes[{i}].info_token.algorithm"),
                    cost("info token", &it.algo.algorithm),
                );
            }
        }
        if let Some(ch) = &route.challenge {
            if ch.version == ChallengeVersion::V2 && is_rsa(&ch.to_backend) {
                let split = format!("routes[{i}].challenge.to_backend.algorithm");
                let path = if config.locations.exact(&split).is_some() {
                    split
                } else {
                    format!("routes[{i}].challenge.algorithm")
                };
                push(out, path, cost("challenge token", &ch.to_backend.algorithm));
            }
        }
    }
}

/// Two features of a route writing the same request header.
fn header_clashes(config: &Config, out: &mut Vec<ConfigWarning>) {
    for (i, route) in config.routes.iter().enumerate() {
        let (Some(it), Some(ch)) = (&route.info_token, &route.challenge) else {
            continue;
        };
        if it.header.eq_ignore_ascii_case(&ch.request_header) {
            push(
                out,
                format!("routes[{i}].info_token.header"),
                format!(
                    "{:?} is also the challenge's request_header: the backend gets both tokens under one name and cannot tell them apart",
                    it.header
                ),
            );
        }
    }
}

/// An admin listener on every interface (it has no authentication).
fn admin_exposed(config: &Config, out: &mut Vec<ConfigWarning>) {
    if let Some(addr) = config.gateway.admin {
        if addr.ip().is_unspecified() {
            push(
                out,
                "gateway.admin",
                format!(
                    "{addr} listens on every interface and the admin endpoint (/metrics, /health, /ready, /quotas/{{client_id}}) has no authentication: bind it to loopback or a private address"
                ),
            );
        }
    }
}
