//! A set of verification keys, and how one token picks its key from it.
//!
//! Owns [`KeySet`] (keys built once, from a secret, a PEM public key or a JWKS document) and
//! [`AlgSet`] (the algorithms a route allows, as a bit set). A set built from a JWKS is looked
//! up by `kid`; the token's `alg` then picks the key among those of that `kid` (a JWK without
//! its own `alg` gives one key per algorithm of its type). The same set can be shared by several
//! routes with different allow-lists: a key of an algorithm the route does not allow is never
//! used for it. Nothing here reads a clock or does IO; selection is a linear scan of a handful
//! of entries, no allocation.

use crate::jws::{Algorithm, JwtError, KeyFamily, PeekedHeader, VerifyingKey};

use super::jwks::parse_jwks;
use super::BuildError;

/// A set of [`Algorithm`]s, one bit each. `Copy`; membership is one AND.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlgSet(u16);

impl AlgSet {
    /// Every asymmetric algorithm (RS*, PS*, ES*): what a key set fetched from a URL is built
    /// for, since the routes sharing it may allow different ones.
    pub fn asymmetric() -> Self {
        Algorithm::ALL
            .iter()
            .filter(|a| a.family() != KeyFamily::Hmac)
            .copied()
            .collect()
    }

    /// Whether `alg` is in the set.
    #[inline]
    pub fn contains(self, alg: Algorithm) -> bool {
        self.0 & Self::bit(alg) != 0
    }

    /// The set with `alg` added.
    pub fn with(self, alg: Algorithm) -> Self {
        AlgSet(self.0 | Self::bit(alg))
    }

    /// The algorithms of the set, in [`Algorithm::ALL`] order.
    pub fn to_vec(self) -> Vec<Algorithm> {
        Algorithm::ALL
            .iter()
            .copied()
            .filter(|a| self.contains(*a))
            .collect()
    }

    #[inline]
    fn bit(alg: Algorithm) -> u16 {
        1 << (alg as u16)
    }
}

impl FromIterator<Algorithm> for AlgSet {
    fn from_iter<I: IntoIterator<Item = Algorithm>>(iter: I) -> Self {
        iter.into_iter().fold(AlgSet::default(), AlgSet::with)
    }
}

/// One verification key, with the `kid` it is looked up by (if any).
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) kid: Option<String>,
    pub(super) key: VerifyingKey,
}

/// Verification keys, immutable once built. Built at config load (secret, PEM, JWKS file) or by
/// a JWKS fetcher on its own thread; shared read-only by every worker.
#[derive(Debug)]
pub struct KeySet {
    entries: Vec<Entry>,
    /// Keys are chosen by the token's `kid` (a JWKS).
    by_kid: bool,
    /// Distinct keys (JWKs), for the "no `kid`, several keys" rule.
    distinct: usize,
}

/// The outcome of picking a key for a token.
#[derive(Debug)]
pub(super) enum Pick<'a> {
    /// Verify with this key.
    Key(&'a VerifyingKey),
    /// The token's `kid` names no key of the set.
    UnknownKid,
    /// The set holds several keys and the token has no `kid`.
    MissingKid,
    /// No key of the token's algorithm (or the route refuses it).
    Refused(JwtError),
}

impl KeySet {
    /// HS* keys for `algorithms` with `secret`. Secrets under 32 bytes are refused unless
    /// `allow_weak`.
    pub fn from_secret(
        algorithms: &[Algorithm],
        secret: &[u8],
        allow_weak: bool,
    ) -> Result<Self, BuildError> {
        let entries = algorithms
            .iter()
            .map(|&alg| {
                if alg.family() != KeyFamily::Hmac {
                    return Err(BuildError(format!("{} does not take a secret", alg.name())));
                }
                VerifyingKey::hmac(alg, secret, allow_weak)
                    .map(|key| Entry { kid: None, key })
                    .map_err(|e| BuildError(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(entries, false, 1)
    }

    /// RS*/PS*/ES* keys for `algorithms` from one PEM public key. Every algorithm listed must
    /// suit the key.
    pub fn from_public_pem(algorithms: &[Algorithm], pem: &str) -> Result<Self, BuildError> {
        let entries = algorithms
            .iter()
            .map(|&alg| {
                VerifyingKey::from_public_pem(alg, pem)
                    .map(|key| Entry { kid: None, key })
                    .map_err(|e| BuildError(format!("{}: {e}", alg.name())))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(entries, false, 1)
    }

    /// The keys of a JWKS document for `algorithms` (see [`parse_jwks`]: a malformed document,
    /// a broken or symmetric key, too many keys or no key for any allowed algorithm refuse the
    /// whole document).
    pub fn from_jwks(algorithms: &[Algorithm], json: &[u8]) -> Result<Self, BuildError> {
        let keys = parse_jwks(json, algorithms).map_err(BuildError)?;
        let distinct = keys.iter().map(|k| k.index).max().map_or(0, |i| i + 1);
        let entries = keys
            .into_iter()
            .map(|k| Entry {
                kid: k.kid,
                key: k.key,
            })
            .collect();
        Self::new(entries, true, distinct)
    }

    fn new(entries: Vec<Entry>, by_kid: bool, distinct: usize) -> Result<Self, BuildError> {
        if entries.is_empty() {
            return Err(BuildError("no usable key".to_owned()));
        }
        Ok(Self {
            entries,
            by_kid,
            distinct,
        })
    }

    /// Number of keys (one per algorithm and key).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Always false: a set has at least one key.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The algorithms the set has keys for.
    pub fn algorithms(&self) -> AlgSet {
        self.entries.iter().map(|e| e.key.algorithm()).collect()
    }

    /// The distinct `kid`s of the set, in document order (for logs).
    pub fn kids(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for kid in self.entries.iter().filter_map(|e| e.kid.as_deref()) {
            if !out.contains(&kid) {
                out.push(kid);
            }
        }
        out
    }

    /// Whether a token must be peeked at (its `kid` and `alg`) before a key is chosen: every
    /// case but a single key without a `kid` lookup, where [`crate::jws::verify`] checks the
    /// `alg` itself.
    #[inline]
    pub(super) fn needs_peek(&self) -> bool {
        self.by_kid || self.entries.len() > 1
    }

    /// The only key, when [`KeySet::needs_peek`] is false.
    #[inline]
    pub(super) fn single(&self) -> Option<&VerifyingKey> {
        self.entries.first().map(|e| &e.key)
    }

    /// Picks the key for a token whose header is `header`, among the keys of algorithms in
    /// `allowed`.
    pub(super) fn pick(&self, header: &PeekedHeader, allowed: AlgSet) -> Pick<'_> {
        let kid = if self.by_kid {
            match header.kid.as_deref() {
                Some(k) => Some(k),
                None if self.distinct > 1 => return Pick::MissingKid,
                None => None,
            }
        } else {
            None
        };
        let mut known = false;
        let alg = header.algorithm();
        for entry in &self.entries {
            if let Some(want) = kid {
                if entry.kid.as_deref() != Some(want) {
                    continue;
                }
            }
            known = true;
            match alg {
                Ok(a) if a == entry.key.algorithm() && allowed.contains(a) => {
                    return Pick::Key(&entry.key)
                }
                _ => {}
            }
        }
        if !known {
            return Pick::UnknownKid;
        }
        Pick::Refused(alg.err().unwrap_or(JwtError::AlgMismatch))
    }
}
