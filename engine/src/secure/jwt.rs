//! External JWT verification on a route (`[routes.jwt]`): the route's compiled verifier and the
//! per-request steps around it: find the token (header with prefix, query parameter or
//! cookie), verify it, and prepare what the request forwards (`pass`, `strip`, or `exchange`
//! for the route's info token carrying the external `sub`, `scope` and `iss`).
//!
//! Owns the reading of key files (JWKS, PEM) and secrets when the snapshot is built, and the
//! choice between keys fixed at load and a set fetched from `jwks_url` (`crate::jwks`: the
//! route holds the URL's shared source and loads its current set per request, one lock-free
//! load; a token whose `kid` the set lacks asks the fetcher for a refetch without waiting).
//! Per request it only scans the already-parsed head (no allocation unless the token is
//! exchanged or its query value is percent-encoded), refuses a token whose place occurs more
//! than once, and calls `torii_protocol::jwt_verifier`, which also checks the route's required
//! scopes and claims. It must not write responses: the proxy answers.

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::{Map, Value};
use torii_protocol::apikey::{cookie, cow_bytes, query_param, Occurs};
use torii_protocol::info_token::ExtraClaims;
use torii_protocol::jws::{Algorithm, VerifiedToken};
use torii_protocol::jwt_verifier::{
    BuildError, ExternalJwtError, ExternalRules, JwtVerifier, KeySet, RouteCheck,
};

use crate::config::{io_reason, ConfigError, JwtForward, JwtKeysSpec, JwtSourceSpec, JwtSpec};
use crate::http1::{eq_ignore_case, HeaderField, RequestHead};
use crate::jwks::{JwksMode, JwksSource};
use crate::secure::keys::hmac_secret;
use crate::secure::token_cache::{CacheUse, Purpose};

/// Largest key file read (JWKS or PEM), bytes.
const MAX_KEY_FILE_BYTES: u64 = 256 * 1024;

/// Where the token is, with names ready for byte comparison.
#[derive(Debug)]
enum Source {
    Header { name: Vec<u8>, prefix: Vec<u8> },
    Query(String),
    Cookie(String),
}

/// The keys a route verifies with.
#[derive(Debug)]
enum Keys {
    /// Fixed at load (secret, PEM public key, JWKS file).
    Fixed(JwtVerifier),
    /// The current set of a `jwks_url`, with what the route accepts.
    Fetched {
        source: Arc<JwksSource>,
        check: RouteCheck,
    },
}

/// A route's compiled `[routes.jwt]`.
#[derive(Debug)]
pub struct RouteJwt {
    keys: Keys,
    source: Source,
    /// What happens to a verified token.
    pub forward: JwtForward,
}

impl RouteJwt {
    /// Reads the keys and builds the verifier; with `jwks_url`, obtains the URL's key set as
    /// `mode` says (`crate::jwks::obtain`). `path` is the section's key path (`routes[i].jwt`);
    /// errors are at the key they concern (`….secret`, `….jwks_url`, `….algorithms`).
    pub fn build(
        path: &str,
        spec: &JwtSpec,
        allow_weak: bool,
        mode: JwksMode,
    ) -> Result<Self, ConfigError> {
        let at = |key: &'static str| at_key(path, key);
        let algorithms = spec
            .algorithms
            .iter()
            .map(|a| {
                a.parse::<Algorithm>()
                    .map_err(|_| format!("unsupported algorithm {a:?}"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(at("algorithms"))?;
        let rules = ExternalRules {
            issuer: spec.issuer.clone(),
            audience: spec.audience.clone(),
            leeway: spec.leeway.as_secs(),
            required: spec.required.clone(),
        };
        let fixed = |v: Result<JwtVerifier, BuildError>| v.map(Keys::Fixed).map_err(|e| e.0);
        let keys = match &spec.keys {
            JwtKeysSpec::JwksUrl(url) => {
                let source = crate::jwks::obtain(url, mode)
                    .map_err(|e| format!("{}: {e}", url.url))
                    .map_err(at("jwks_url"))?;
                let check = RouteCheck::new(&algorithms, &rules);
                usable_for(&source, &check, mode).map_err(at("jwks_url"))?;
                Keys::Fetched { source, check }
            }
            JwtKeysSpec::Secret(raw) => {
                let secret = hmac_secret(raw, allow_weak).map_err(at("secret"))?;
                fixed(JwtVerifier::from_secret(
                    &algorithms,
                    &secret,
                    allow_weak,
                    &rules,
                ))
                .map_err(at("secret"))?
            }
            JwtKeysSpec::PublicKey(file) => {
                let pem = read_key_file(file)
                    .and_then(|bytes| {
                        String::from_utf8(bytes)
                            .map_err(|_| format!("{}: not UTF-8 PEM", file.display()))
                    })
                    .map_err(at("public_key"))?;
                fixed(
                    JwtVerifier::from_public_pem(&algorithms, &pem, &rules)
                        .map_err(|e| BuildError(format!("{}: {e}", file.display()))),
                )
                .map_err(at("public_key"))?
            }
            JwtKeysSpec::JwksFile(file) => {
                let json = read_key_file(file).map_err(at("jwks_file"))?;
                fixed(
                    JwtVerifier::from_jwks(&algorithms, &json, &rules)
                        .map_err(|e| BuildError(format!("{}: {e}", file.display()))),
                )
                .map_err(at("jwks_file"))?
            }
        };
        let source = match &spec.source {
            JwtSourceSpec::Header { name, prefix } => Source::Header {
                name: name.to_ascii_lowercase().into_bytes(),
                prefix: prefix.as_bytes().to_vec(),
            },
            JwtSourceSpec::Query(q) => Source::Query(q.clone()),
            JwtSourceSpec::Cookie(c) => Source::Cookie(c.clone()),
        };
        Ok(Self {
            keys,
            source,
            forward: spec.forward,
        })
    }

    /// Verifies `token` at `now` with the route's keys and rules (signature, claims, required
    /// scopes and claims). With a fetched set: one lock-free load of the current set; before
    /// the first good fetch, [`ExternalJwtError::KeysUnavailable`]; an unknown `kid` also asks
    /// the fetcher for a refetch (never waited for: this token is refused).
    #[inline]
    pub fn verify(&self, token: &[u8], now: u64) -> Result<VerifiedToken, ExternalJwtError> {
        match &self.keys {
            Keys::Fixed(verifier) => verifier.verify(token, now),
            Keys::Fetched { source, .. } => {
                let set = source.keys();
                self.verify_in(set.as_deref(), token, now)
            }
        }
    }

    /// [`RouteJwt::verify`] with `set`, the fetched set loaded for this request (`None` for
    /// fixed keys, or before the first good fetch).
    fn verify_in(
        &self,
        set: Option<&KeySet>,
        token: &[u8],
        now: u64,
    ) -> Result<VerifiedToken, ExternalJwtError> {
        match (&self.keys, set) {
            (Keys::Fixed(verifier), _) => verifier.verify(token, now),
            (Keys::Fetched { source, check }, Some(keys)) => {
                let result = check.verify(keys, token, now);
                if matches!(result, Err(ExternalJwtError::UnknownKid)) {
                    source.kid_miss();
                }
                result
            }
            (Keys::Fetched { .. }, None) => Err(ExternalJwtError::KeysUnavailable),
        }
    }

    /// The time rules alone for a token this route verified earlier (a cache hit).
    fn check_times(&self, token: &VerifiedToken, now: u64) -> Result<(), ExternalJwtError> {
        match &self.keys {
            Keys::Fixed(verifier) => verifier.check_times(token, now),
            Keys::Fetched { check, .. } => check.check_times(token, now),
        }
    }

    /// A route over an already-built source (benches and tests): `algorithms` and `rules` as
    /// the route would have them, the token in `Authorization: Bearer`, passed on.
    pub fn with_source(
        source: Arc<JwksSource>,
        algorithms: &[Algorithm],
        rules: &ExternalRules,
    ) -> Self {
        RouteJwt {
            keys: Keys::Fetched {
                source,
                check: RouteCheck::new(algorithms, rules),
            },
            source: default_source(),
            forward: JwtForward::Pass,
        }
    }

    /// A route over fixed keys (benches and tests), otherwise as [`RouteJwt::with_source`].
    pub fn with_keys(keys: KeySet, algorithms: &[Algorithm], rules: &ExternalRules) -> Self {
        RouteJwt {
            keys: Keys::Fixed(JwtVerifier::new(keys, algorithms, rules)),
            source: default_source(),
            forward: JwtForward::Pass,
        }
    }

    /// Finds the token in the request head (`data` holds the head, `headers` its fields):
    /// `Missing` when its place is absent or empty, `Duplicate` when the place occurs more
    /// than once — every header line counts, a query name counts after percent-decoding
    /// (`%74oken` is `token`), a cookie counts over every `Cookie` line — whatever the copies
    /// hold, since backends disagree on which copy they read (Flask and Go the first query
    /// value, Django and PHP the last, Python's `SimpleCookie` the last cookie).
    pub fn token<'a>(
        &self,
        data: &'a [u8],
        head: &RequestHead,
        headers: &[HeaderField],
    ) -> Result<Cow<'a, [u8]>, ExternalJwtError> {
        let found = match &self.source {
            Source::Header { name, prefix } => {
                let found: Occurs<&[u8]> = headers
                    .iter()
                    .filter(|h| eq_ignore_case(h.name.get(data), name))
                    .map(|h| h.value.get(data))
                    .collect();
                found.map(|value| {
                    let rest = if prefix.is_empty() {
                        Some(value)
                    } else if value.len() >= prefix.len()
                        && eq_ignore_case(&value[..prefix.len()], prefix)
                    {
                        Some(&value[prefix.len()..])
                    } else {
                        None
                    };
                    rest.map(|r| Cow::Borrowed(r.trim_ascii()))
                })
            }
            Source::Query(name) => match head.query {
                Some(q) => query_param(q.get(data), name).map(|v| Some(cow_bytes(v))),
                None => Occurs::Absent,
            },
            Source::Cookie(name) => {
                let lines = headers
                    .iter()
                    .filter(|h| eq_ignore_case(h.name.get(data), b"cookie"))
                    .map(|h| h.value.get(data));
                cookie(lines, name).map(|v| Some(Cow::Borrowed(v)))
            }
        };
        match found {
            Occurs::Repeated => Err(ExternalJwtError::Duplicate),
            Occurs::Once(Some(t)) if !t.is_empty() => Ok(t),
            _ => Err(ExternalJwtError::Missing),
        }
    }

    /// Checks the request's token at `now`. On success returns the claims to put in the info
    /// token when the route exchanges tokens (`None` otherwise). With `cache` (the worker's
    /// verified tokens and this route's index), a token verified before under the same snapshot
    /// and key set costs a lookup and the time rules instead of a signature check.
    pub fn check(
        &self,
        data: &[u8],
        head: &RequestHead,
        headers: &[HeaderField],
        now: u64,
        cache: Option<(CacheUse<'_>, usize)>,
        sub: &mut Vec<u8>,
    ) -> Result<Option<ExtraClaims>, ExternalJwtError> {
        sub.clear();
        let token = self.token(data, head, headers)?;
        let token = token.as_ref();
        let Some((c, route)) = cache.filter(|(c, _)| c.cap > 0) else {
            let verified = self.verify(token, now)?;
            copy_sub(&verified, sub);
            return Ok(self.exchanged(&verified));
        };
        let guard = match &self.keys {
            Keys::Fetched { source, .. } => Some(source.keys()),
            Keys::Fixed(_) => None,
        };
        let held: Option<&Arc<KeySet>> = guard.as_ref().and_then(|g| g.as_ref());
        let purpose = Purpose::RouteJwt(route);
        {
            let mut cache = c.cache.borrow_mut();
            if let Some(verified) = cache.get(c.version, purpose, held.map(|a| &**a), token) {
                self.check_times(verified, now)?;
                copy_sub(verified, sub);
                return Ok(self.exchanged(verified));
            }
        }
        let verified = self.verify_in(held.map(|a| &**a), token, now)?;
        copy_sub(&verified, sub);
        let extra = self.exchanged(&verified);
        c.cache
            .borrow_mut()
            .insert(c.version, c.cap, purpose, held.cloned(), token, verified);
        Ok(extra)
    }

    /// The claims a verified token carries into the info token (`forward = "exchange"`):
    /// string `sub` and `iss`, and `scope`.
    fn exchanged(&self, verified: &VerifiedToken) -> Option<ExtraClaims> {
        if self.forward != JwtForward::Exchange {
            return None;
        }
        let mut extra = Map::new();
        for name in ["sub", "iss", "scope"] {
            match verified.claims().get(name) {
                Some(v @ Value::String(_)) => {
                    extra.insert(name.to_owned(), v.clone());
                }
                Some(v) if name == "scope" => {
                    extra.insert(name.to_owned(), v.clone());
                }
                _ => {}
            }
        }
        // Only string sub/iss and any scope are copied, so this cannot fail on a reserved name.
        ExtraClaims::new(&extra).ok()
    }

    /// True when the request header `name` carries the token and must not be forwarded
    /// (`strip` and `exchange`).
    pub fn strips_header(&self, name: &[u8]) -> bool {
        match &self.source {
            Source::Header { name: n, .. } => {
                self.forward != JwtForward::Pass && eq_ignore_case(name, n)
            }
            _ => false,
        }
    }
}

fn default_source() -> Source {
    Source::Header {
        name: b"authorization".to_vec(),
        prefix: b"Bearer ".to_vec(),
    }
}

/// Whether the set of `source`, when fetched, has a key for an algorithm the route allows: an
/// error for `torii check`, a warning when serving (the identity server may add one later).
fn usable_for(source: &JwksSource, check: &RouteCheck, mode: JwksMode) -> Result<(), String> {
    let keys = source.keys();
    let Some(keys) = keys.as_deref() else {
        return Ok(());
    };
    if check
        .allowed()
        .to_vec()
        .iter()
        .any(|a| keys.algorithms().contains(*a))
    {
        return Ok(());
    }
    let why = format!(
        "{}: the key set has no key for the allowed algorithms",
        source.url()
    );
    match mode {
        JwksMode::Check => Err(why),
        JwksMode::Serve => {
            tracing::warn!("{why}: tokens are refused until it has one");
            Ok(())
        }
    }
}

/// Turns a message about `key` of the section at `path` into its error.
fn at_key<'a>(path: &'a str, key: &'a str) -> impl Fn(String) -> ConfigError + 'a {
    move |message| ConfigError::new(format!("{path}.{key}"), message)
}

fn read_key_file(path: &std::path::Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let shown = path.display();
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot read {shown}: {}", io_reason(&e)))?;
    let mut bytes = Vec::new();
    file.take(MAX_KEY_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {shown}: {}", io_reason(&e)))?;
    if bytes.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(format!("{shown} is larger than {MAX_KEY_FILE_BYTES} bytes"));
    }
    Ok(bytes)
}

/// Copies a verified token's string `sub` into `out` (the `${token.sub}` of header rules;
/// left empty when the claim is absent or not a string). No allocation once `out` has room.
fn copy_sub(verified: &VerifiedToken, out: &mut Vec<u8>) {
    if let Some(Value::String(sub)) = verified.claims().get("sub") {
        out.extend_from_slice(sub.as_bytes());
    }
}
