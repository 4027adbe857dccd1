//! Validation of the machine-authentication sections: `[[apikeys]]`, `[[key_pairs]]`,
//! `[client_credentials]` and each route's `[routes.apikeys]` (docs/configuration.md,
//! docs/oauth2.md).
//!
//! Owns their typed form ([`AuthSpec`], [`RouteApiKeysSpec`]) and every check that needs no
//! file or secret: ids, RFC 3339 dates, the `domain` regex (compiled here, anchored), extractor
//! names, header names, and the cross references (a key's routes exist; every key pair named
//! by `default_key_pair` or `jwt-sign-keypair` is configured when key pairs are). Secrets stay
//! unresolved and PEM files unread: the snapshot builder (`crate::auth::build`) does that.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use torii_protocol::apikey::{ApiKey, META_JWT_SIGN_KEYPAIR};
use torii_protocol::jwt_verifier::RequiredClaims;

use super::duration::Zero;
use super::error::{index, join, Collector};
use super::fields::{duration, header_name, required_claims};
use super::quotas::quota;
use super::raw::{RawApiKey, RawClientCredentials, RawConfig, RawKeyPair, RawRouteApiKeys};
use super::schema::did_you_mean;
use super::secret::{resolve_path, secret, RawSecret};
use super::{LoadEnv, RouteConfig};

/// `client_credentials.expiration` default (1 hour).
pub const DEFAULT_EXPIRATION: Duration = Duration::from_secs(3600);
/// `client_credentials.default_key_pair` default (Otoroshi's id).
pub const DEFAULT_KEY_PAIR: &str = "otoroshi-jwt-signing";
/// `client_credentials.domain` default: every host.
pub const DEFAULT_DOMAIN: &str = ".*";

/// The top-level authentication sections, validated. Keys are not resolved yet.
#[derive(Debug, Clone, Default)]
pub struct AuthSpec {
    /// `[[apikeys]]`, in file order.
    pub apikeys: Vec<ApiKeySpec>,
    /// `[[key_pairs]]`, in file order.
    pub key_pairs: Vec<KeyPairSpec>,
    /// `[client_credentials]`, when present.
    pub client_credentials: Option<ClientCredentialsSpec>,
}

/// One `[[apikeys]]` entry: the protocol's key model with its secret still unresolved
/// (`${env.NAME}` / `${file:…}`); the snapshot builder resolves it with
/// [`ApiKey::map_secret`]. A new key field is declared once, in `torii_protocol::apikey::ApiKey`.
pub type ApiKeySpec = ApiKey<RawSecret>;

/// One `[[key_pairs]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPairSpec {
    /// Id (the tokens' `kid`).
    pub id: String,
    /// PEM private key path, absolute.
    pub private_key: PathBuf,
}

/// `[client_credentials]`, validated.
#[derive(Debug, Clone)]
pub struct ClientCredentialsSpec {
    /// `domain` compiled as `^(?i:domain)$`, matched against the Host without its port.
    pub domain: regex::Regex,
    /// Token lifetime.
    pub expiration: Duration,
    /// Key pair used when a key has no `jwt-sign-keypair`.
    pub default_key_pair: String,
    /// Refuse the endpoints over plain HTTP.
    pub secure: bool,
    /// A fixed `iss` for every token; `None`: `scheme://Host` of the token request.
    pub issuer: Option<String>,
}

/// `[routes.apikeys]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteApiKeysSpec {
    /// `client_id` extractor on.
    pub client_id: bool,
    /// `headers` extractor on.
    pub headers: bool,
    /// `bearer` extractor on.
    pub bearer: bool,
    /// `basic` extractor on.
    pub basic: bool,
    /// Custom (client id header, client secret header).
    pub custom: Option<(String, String)>,
    /// Remove credentials before forwarding (default true).
    pub wipe_credentials: bool,
    /// Scopes and bearer-token claims required (403 otherwise).
    pub required: RequiredClaims,
    /// Count the call against the key's quotas (default true; false: check without counting,
    /// Otoroshi's `update_quotas`).
    pub update_quotas: bool,
    /// Send the remaining-calls headers back to the client (default false).
    pub quota_headers: bool,
}

/// The extractor names of `routes.apikeys.extractors`, in Otoroshi's order.
pub const EXTRACTORS: [&str; 4] = ["client_id", "headers", "bearer", "basic"];

/// Validates the top-level sections. `routes` are the validated routes (for the key → route
/// references).
pub(super) fn auth(
    c: &mut Collector,
    raw: &RawConfig,
    routes: &[RouteConfig],
    base_dir: &Path,
    env: &dyn LoadEnv,
) -> AuthSpec {
    // In file order, so that a suggestion between equally near ids is always the same.
    let route_ids: Vec<&str> = routes.iter().map(|r| r.id.as_str()).collect();
    let mut seen: HashSet<String> = HashSet::new();
    let apikeys = raw
        .apikeys
        .iter()
        .enumerate()
        .filter_map(|(i, k)| {
            apikey(
                c,
                &index("apikeys", i),
                k,
                &route_ids,
                &mut seen,
                base_dir,
                env,
            )
        })
        .collect::<Vec<_>>();
    let mut ids: HashSet<String> = HashSet::new();
    let key_pair_ids: Vec<&str> = raw
        .key_pairs
        .iter()
        .filter_map(|kp| kp.id.as_deref())
        .collect();
    let key_pairs: Vec<KeyPairSpec> = raw
        .key_pairs
        .iter()
        .enumerate()
        .filter_map(|(i, kp)| key_pair(c, &index("key_pairs", i), kp, &mut ids, base_dir))
        .collect();
    let client_credentials = raw
        .client_credentials
        .as_ref()
        .and_then(|cc| client_credentials(c, cc));
    // Key pairs named by keys or the service must exist. With no key pair configured at all,
    // the service signs with one ephemeral pair named `default_key_pair`.
    let default = client_credentials
        .as_ref()
        .map(|cc| cc.default_key_pair.as_str());
    for (i, k) in apikeys.iter().enumerate() {
        let Some(kp) = k.metadata.get(META_JWT_SIGN_KEYPAIR) else {
            continue;
        };
        let known = if raw.key_pairs.is_empty() {
            default == Some(kp.as_str())
        } else {
            ids.contains(kp)
        };
        if !known {
            c.push(
                join(&index("apikeys", i), "metadata.jwt-sign-keypair"),
                unknown_id(
                    &format!("no key pair {kp:?} is configured in [[key_pairs]]"),
                    kp,
                    &key_pair_ids,
                ),
            );
        }
    }
    if let Some(d) = default {
        if !raw.key_pairs.is_empty() && !ids.contains(d) {
            c.push(
                "client_credentials.default_key_pair",
                unknown_id(
                    &format!("no key pair {d:?} is configured in [[key_pairs]]"),
                    d,
                    &key_pair_ids,
                ),
            );
        }
    }
    AuthSpec {
        apikeys,
        key_pairs,
        client_credentials,
    }
}

/// `message` about an id that names nothing, with the nearest of `known` when one is close
/// (`… (did you mean `orders`?)`, as for a misspelt key).
fn unknown_id(message: &str, id: &str, known: &[&str]) -> String {
    match did_you_mean(id, known) {
        Some(near) => format!("{message} (did you mean `{near}`?)"),
        None => message.to_owned(),
    }
}

fn apikey(
    c: &mut Collector,
    path: &str,
    raw: &RawApiKey,
    route_ids: &[&str],
    seen: &mut HashSet<String>,
    base_dir: &Path,
    env: &dyn LoadEnv,
) -> Option<ApiKeySpec> {
    let p = |k: &str| join(path, k);
    let client_id = match raw.client_id.as_deref() {
        None => {
            c.push(p("client_id"), "required");
            None
        }
        Some(id) if id.trim().is_empty() => {
            c.push(p("client_id"), "must not be blank");
            None
        }
        Some(id) if id.bytes().any(|b| b.is_ascii_control()) => {
            c.push(p("client_id"), "must not contain control characters");
            None
        }
        Some(id) if !seen.insert(id.to_owned()) => {
            c.push(p("client_id"), format!("duplicate client_id {id:?}"));
            None
        }
        Some(id) => Some(id.to_owned()),
    };
    let client_secret = match &raw.client_secret {
        None => {
            c.push(p("client_secret"), "required");
            None
        }
        Some(s) if s.expose_raw().is_empty() => {
            c.push(p("client_secret"), "must not be empty");
            None
        }
        Some(s) => secret(c, &p("client_secret"), s, base_dir, env),
    };
    let valid_until = raw
        .valid_until
        .as_deref()
        .and_then(|v| c.check(&p("valid_until"), parse_rfc3339(v)));
    for (i, r) in raw.routes.iter().enumerate() {
        if !route_ids.contains(&r.as_str()) {
            c.push(
                index(&p("routes"), i),
                unknown_id(&format!("no route has the id {r:?}"), r, route_ids),
            );
        }
    }
    let throttling_quota = quota(c, &p("throttling_quota"), raw.throttling_quota);
    let daily_quota = quota(c, &p("daily_quota"), raw.daily_quota);
    let monthly_quota = quota(c, &p("monthly_quota"), raw.monthly_quota);
    let client_id = client_id?;
    Some(ApiKeySpec {
        name: raw.name.clone().unwrap_or_else(|| client_id.clone()),
        client_id,
        client_secret: client_secret?,
        enabled: raw.enabled.unwrap_or(true),
        valid_until,
        routes: raw.routes.clone(),
        tags: raw.tags.clone(),
        metadata: raw.metadata.clone(),
        allow_client_id_only: raw.allow_client_id_only.unwrap_or(false),
        throttling_quota,
        daily_quota,
        monthly_quota,
    })
}

fn key_pair(
    c: &mut Collector,
    path: &str,
    raw: &RawKeyPair,
    ids: &mut HashSet<String>,
    base_dir: &Path,
) -> Option<KeyPairSpec> {
    let id = match raw.id.as_deref() {
        None => {
            c.push(join(path, "id"), "required");
            None
        }
        Some(id) if id.trim().is_empty() => {
            c.push(join(path, "id"), "must not be blank");
            None
        }
        Some(id) if !ids.insert(id.to_owned()) => {
            c.push(join(path, "id"), format!("duplicate key pair id {id:?}"));
            None
        }
        Some(id) => Some(id.to_owned()),
    };
    let private_key = match raw.private_key.as_deref() {
        None | Some("") => {
            c.push(join(path, "private_key"), "required");
            None
        }
        Some(k) => Some(resolve_path(base_dir, k)),
    };
    Some(KeyPairSpec {
        id: id?,
        private_key: private_key?,
    })
}

fn client_credentials(
    c: &mut Collector,
    raw: &RawClientCredentials,
) -> Option<ClientCredentialsSpec> {
    let path = "client_credentials";
    let p = |k: &str| join(path, k);
    let domain_src = raw.domain.as_deref().unwrap_or(DEFAULT_DOMAIN);
    // Host names are case-insensitive.
    let anchored = format!("^(?i:{domain_src})$");
    let domain = c.check(&p("domain"), super::fields::compile_regex(&anchored));
    let expiration = duration(
        c,
        &p("expiration"),
        &raw.expiration,
        DEFAULT_EXPIRATION,
        Zero::Rejected,
    );
    let default_key_pair = match raw.default_key_pair.as_deref() {
        None => DEFAULT_KEY_PAIR.to_owned(),
        Some(id) if id.trim().is_empty() => {
            c.push(p("default_key_pair"), "must not be blank");
            DEFAULT_KEY_PAIR.to_owned()
        }
        Some(id) => id.to_owned(),
    };
    let issuer = match raw.issuer.as_deref() {
        Some(iss) if iss.trim().is_empty() || iss.chars().any(char::is_control) => {
            c.push(
                p("issuer"),
                "must be a non-blank string without control characters",
            );
            None
        }
        other => other.map(str::to_owned),
    };
    // An invalid regex is in the collector already: the config is refused as a whole.
    Some(ClientCredentialsSpec {
        domain: domain?,
        expiration,
        default_key_pair,
        secure: raw.secure.unwrap_or(true),
        issuer,
    })
}

/// `[routes.apikeys]`.
pub(super) fn route_apikeys(
    c: &mut Collector,
    path: &str,
    raw: &RawRouteApiKeys,
) -> RouteApiKeysSpec {
    let p = |k: &str| join(path, k);
    let mut spec = RouteApiKeysSpec {
        client_id: true,
        headers: true,
        bearer: true,
        basic: true,
        custom: None,
        wipe_credentials: raw.wipe_credentials.unwrap_or(true),
        required: required_claims(c, path, &raw.required_scopes, &raw.required_claims),
        update_quotas: raw.update_quotas.unwrap_or(true),
        quota_headers: raw.quota_headers.unwrap_or(false),
    };
    if let Some(list) = &raw.extractors {
        spec.client_id = false;
        spec.headers = false;
        spec.bearer = false;
        spec.basic = false;
        for (i, name) in list.iter().enumerate() {
            let slot = match name.as_str() {
                "client_id" => &mut spec.client_id,
                "headers" => &mut spec.headers,
                "bearer" => &mut spec.bearer,
                "basic" => &mut spec.basic,
                other => {
                    c.push(
                        index(&p("extractors"), i),
                        format!(
                            "unknown extractor {other:?} (expected one of {})",
                            EXTRACTORS.join(", ")
                        ),
                    );
                    continue;
                }
            };
            if *slot {
                c.push(
                    index(&p("extractors"), i),
                    format!("duplicate extractor {name:?}"),
                );
            }
            *slot = true;
        }
    }
    if let Some(custom) = &raw.custom_headers {
        let cp = p("custom_headers");
        match (&custom.client_id, &custom.client_secret) {
            (Some(_), Some(_)) => {
                let id = header_name(c, &join(&cp, "client_id"), &custom.client_id, "");
                let secret = header_name(c, &join(&cp, "client_secret"), &custom.client_secret, "");
                if !id.is_empty() && id.eq_ignore_ascii_case(&secret) {
                    c.push(join(&cp, "client_secret"), "must differ from client_id");
                }
                spec.custom = Some((id, secret));
            }
            (None, _) => c.push(join(&cp, "client_id"), "required with client_secret"),
            (_, None) => c.push(join(&cp, "client_secret"), "required with client_id"),
        }
    }
    let any = spec.client_id || spec.headers || spec.bearer || spec.basic || spec.custom.is_some();
    if !any {
        c.push(
            p("extractors"),
            "no extractor and no custom_headers: no request could ever pass",
        );
    }
    if !spec.required.claims.is_empty() && !spec.bearer {
        c.push(
            p("required_claims"),
            "claims are read from bearer tokens: enable the bearer extractor",
        );
    }
    spec
}

/// Parses an RFC 3339 date-time (`2030-01-01T00:00:00Z`, `…+02:00`, fractional seconds
/// ignored) into Unix seconds. Dates before 1970 are refused.
pub fn parse_rfc3339(s: &str) -> Result<u64, String> {
    let bad = || format!("{s:?} is not an RFC 3339 date-time such as \"2030-01-01T00:00:00Z\"");
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Result<i64, String> {
        let part = b.get(from..from + len).ok_or_else(bad)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        part.iter()
            .try_fold(0i64, |n, &d| Some(n * 10 + i64::from(d - b'0')))
            .ok_or_else(bad)
    };
    let sep = |at: usize, ok: &[u8]| -> Result<(), String> {
        match b.get(at) {
            Some(x) if ok.contains(x) => Ok(()),
            _ => Err(bad()),
        }
    };
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    sep(4, b"-")?;
    sep(7, b"-")?;
    sep(10, b"Tt ")?;
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    sep(13, b":")?;
    sep(16, b":")?;
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let digits = b[i..].iter().take_while(|d| d.is_ascii_digit()).count();
        if digits == 0 {
            return Err(bad());
        }
        i += digits;
    }
    let offset = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() => {
            sep(i + 3, b":")?;
            let (oh, om) = (num(i + 1, 2)?, num(i + 4, 2)?);
            if oh > 23 || om > 59 {
                return Err(bad());
            }
            let o = oh * 3600 + om * 60;
            if sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return Err(bad()),
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    if day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 60 {
        return Err(bad());
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second.min(59) - offset;
    u64::try_from(secs).map_err(|_| format!("{s:?} is before 1970"))
}

#[cfg(test)]
mod tests {
    use super::parse_rfc3339;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_rfc3339("2030-01-01T00:00:00Z"), Ok(1_893_456_000));
        assert_eq!(
            parse_rfc3339("2030-01-01T02:00:00+02:00"),
            Ok(1_893_456_000)
        );
        assert_eq!(
            parse_rfc3339("2029-12-31T23:00:00.123-01:00"),
            Ok(1_893_456_000)
        );
        assert_eq!(parse_rfc3339("2024-02-29T00:00:00Z"), Ok(1_709_164_800));
        for bad in [
            "",
            "2030-01-01",
            "2030-01-01T00:00:00",
            "2030-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2030-01-01T24:00:00Z",
            "2030-01-01T00:00:00.Z",
            "2030-01-01T00:00:00+0200",
            "1969-12-31T23:59:59Z",
            "２030-01-01T00:00:00Z",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
    }
}
