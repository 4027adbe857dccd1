//! The security sections of a route: `[routes.challenge]` (the exchange protocol, V1/V2, with
//! optional per-direction keys) and `[routes.info_token]`.
//!
//! Owns the rules that tie an algorithm to its key material (HS → secret; RS/PS/ES → PEM files,
//! private to sign, public or private to verify) and where each problem is reported. Secrets
//! stay unresolved and files unread: the snapshot builder does that.

use std::path::Path;

use super::duration::Zero;
use super::error::{index, join, Collector};
use super::fields::{compile_regex, duration, header_name, ALGORITHMS};
use super::raw::{RawAlgo, RawChallenge, RawInfoToken};
use super::secret::{resolve_path, secret, RawSecret};
use super::{
    defaults, AlgoSpec, ChallengeSpec, ChallengeVersion, InfoTokenSpec, InfoTokenVersion, LoadEnv,
};

fn algorithm(c: &mut Collector, path: &str, raw: Option<&String>) -> String {
    match raw {
        None => defaults::ALGORITHM.to_owned(),
        Some(a) if ALGORITHMS.contains(&a.as_str()) => a.clone(),
        Some(a) => {
            c.push(
                path,
                format!(
                    "unknown algorithm {a:?} (expected one of {})",
                    ALGORITHMS.join(", ")
                ),
            );
            defaults::ALGORITHM.to_owned()
        }
    }
}

/// Which keys a direction needs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Need {
    /// Signs: HS → secret, others → private_key.
    Sign,
    /// Verifies: HS → secret, others → public_key (or private_key, whose public half is used).
    Verify,
    /// Not used (V1): only consistency is checked.
    Nothing,
}

/// Where one direction's algorithm and key are written: the table of its `algorithm` and the
/// table of its `secret`/`private_key`/`public_key` (the shared one when a direction table
/// only names an algorithm).
struct At<'a> {
    algorithm: &'a str,
    keys: &'a str,
}

/// Builds one [`AlgoSpec`] from `algo` (the section's keys), checking key material against the
/// algorithm. Problems are reported at the key they concern, under `at`.
fn algo_spec(
    c: &mut Collector,
    at: At<'_>,
    algo: &RawAlgo,
    default_algorithm: Option<&String>,
    need: Need,
    base_dir: &Path,
    env: &dyn LoadEnv,
) -> AlgoSpec {
    let p = |k: &str| join(at.keys, k);
    let algorithm = algorithm(
        c,
        &join(at.algorithm, "algorithm"),
        algo.algorithm.as_ref().or(default_algorithm),
    );
    let secret: Option<RawSecret> = algo
        .secret
        .as_ref()
        .and_then(|s| secret(c, &p("secret"), s, base_dir, env));
    let private_key = algo
        .private_key
        .as_deref()
        .map(|k| resolve_path(base_dir, k));
    let public_key = algo
        .public_key
        .as_deref()
        .map(|k| resolve_path(base_dir, k));
    let hmac = algorithm.starts_with("HS");
    if hmac {
        for (key, set) in [
            ("private_key", private_key.is_some()),
            ("public_key", public_key.is_some()),
        ] {
            if set {
                c.push(p(key), format!("{algorithm} takes a secret, not key files"));
            }
        }
        if algo.secret.is_none() && need != Need::Nothing {
            c.push(p("secret"), format!("required for {algorithm}"));
        }
    } else {
        if algo.secret.is_some() {
            c.push(
                p("secret"),
                format!("{algorithm} takes private_key/public_key files, not a secret"),
            );
        }
        match need {
            Need::Sign if private_key.is_none() => {
                c.push(p("private_key"), format!("required for {algorithm}"))
            }
            Need::Verify if public_key.is_none() && private_key.is_none() => {
                c.push(p("public_key"), format!("required for {algorithm}"))
            }
            _ => {}
        }
    }
    AlgoSpec {
        algorithm,
        secret,
        private_key,
        public_key,
        key_path: at.keys.to_owned(),
    }
}

/// `[routes.challenge]`.
pub(super) fn challenge(
    c: &mut Collector,
    path: &str,
    raw: &RawChallenge,
    base_dir: &Path,
    env: &dyn LoadEnv,
) -> ChallengeSpec {
    let p = |k: &str| join(path, k);
    let version = match raw.version.as_deref() {
        None | Some("v2") => ChallengeVersion::V2,
        Some("v1") => ChallengeVersion::V1,
        Some(v) => {
            c.push(
                p("version"),
                format!("unknown version {v:?} (expected \"v1\" or \"v2\")"),
            );
            ChallengeVersion::V2
        }
    };
    let ttl = duration(c, &p("ttl"), &raw.ttl, defaults::TOKEN_TTL, Zero::Rejected);
    let leeway = duration(
        c,
        &p("leeway"),
        &raw.leeway,
        defaults::CHALLENGE_LEEWAY,
        Zero::Allowed,
    );
    let request_header = header_name(
        c,
        &p("request_header"),
        &raw.request_header,
        defaults::CHALLENGE_REQUEST_HEADER,
    );
    let response_header = header_name(
        c,
        &p("response_header"),
        &raw.response_header,
        defaults::CHALLENGE_RESPONSE_HEADER,
    );
    if request_header.eq_ignore_ascii_case(&response_header) {
        c.push(p("response_header"), "must differ from request_header");
    }
    let shared = RawAlgo {
        algorithm: raw.algorithm.clone(),
        secret: raw.secret.clone(),
        private_key: raw.private_key.clone(),
        public_key: raw.public_key.clone(),
    };
    let v2 = version == ChallengeVersion::V2;
    let direction = |c: &mut Collector, name: &str, split: &Option<RawAlgo>, need: Need| {
        let need = if v2 { need } else { Need::Nothing };
        match split {
            // A direction table brings its own key; its algorithm falls back to the shared one.
            Some(d) if d.secret.is_some() || d.private_key.is_some() || d.public_key.is_some() => {
                let own = p(name);
                let at = At {
                    algorithm: &own,
                    keys: &own,
                };
                algo_spec(c, at, d, raw.algorithm.as_ref(), need, base_dir, env)
            }
            // A direction table with only an algorithm uses the shared key.
            Some(d) => {
                let merged = RawAlgo {
                    algorithm: d.algorithm.clone().or_else(|| raw.algorithm.clone()),
                    ..clone_keys(&shared)
                };
                let own = p(name);
                let at = At {
                    algorithm: &own,
                    keys: path,
                };
                algo_spec(c, at, &merged, None, need, base_dir, env)
            }
            None => {
                let at = At {
                    algorithm: path,
                    keys: path,
                };
                algo_spec(c, at, &shared, None, need, base_dir, env)
            }
        }
    };
    // With no split tables both directions share the keys: report each problem once.
    let mut local = Collector::default();
    let to_backend = direction(&mut local, "to_backend", &raw.to_backend, Need::Sign);
    let from_backend = direction(&mut local, "from_backend", &raw.from_backend, Need::Verify);
    c.absorb_unique(local);
    let exclude = raw
        .exclude
        .iter()
        .enumerate()
        .filter_map(|(i, re)| c.check(&index(&p("exclude"), i), compile_regex(re)))
        .collect();
    ChallengeSpec {
        version,
        ttl,
        leeway,
        request_header,
        response_header,
        to_backend,
        from_backend,
        exclude,
    }
}

fn clone_keys(a: &RawAlgo) -> RawAlgo {
    RawAlgo {
        algorithm: None,
        secret: a.secret.clone(),
        private_key: a.private_key.clone(),
        public_key: a.public_key.clone(),
    }
}

/// `[routes.info_token]`.
pub(super) fn info_token(
    c: &mut Collector,
    path: &str,
    raw: &RawInfoToken,
    base_dir: &Path,
    env: &dyn LoadEnv,
) -> InfoTokenSpec {
    let p = |k: &str| join(path, k);
    let version = match raw.version.as_deref() {
        None | Some("latest") => InfoTokenVersion::Latest,
        Some("legacy") => InfoTokenVersion::Legacy,
        Some("url") => {
            c.push(
                p("version"),
                "the \"url\" layout is not supported (use \"latest\" or \"legacy\")",
            );
            InfoTokenVersion::Latest
        }
        Some(v) => {
            c.push(
                p("version"),
                format!("unknown version {v:?} (expected \"latest\" or \"legacy\")"),
            );
            InfoTokenVersion::Latest
        }
    };
    let header = header_name(c, &p("header"), &raw.header, defaults::INFO_TOKEN_HEADER);
    let ttl = duration(c, &p("ttl"), &raw.ttl, defaults::TOKEN_TTL, Zero::Rejected);
    let algo = RawAlgo {
        algorithm: raw.algorithm.clone(),
        secret: raw.secret.clone(),
        private_key: raw.private_key.clone(),
        public_key: None,
    };
    let at = At {
        algorithm: path,
        keys: path,
    };
    let algo = algo_spec(c, at, &algo, None, Need::Sign, base_dir, env);
    InfoTokenSpec {
        version,
        header,
        ttl,
        algo,
    }
}
