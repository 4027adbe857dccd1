//! The exchange protocol on one route: what goes out with the request and how the backend's
//! answer is checked (docs/compatibility.md §1, §4 and §7).
//!
//! Owns a route's compiled challenge: the V2 issuer and verifier with their keys (built once
//! per config load), the header names, and the excluded path patterns. Per request the proxy
//! asks [`RouteChallenge::applies`], renders the state header with
//! [`RouteChallenge::render_state_header`] and checks the answer with
//! [`RouteChallenge::check_answer`].

use regex::RegexSet;
use torii_protocol::challenge::{IssueError, JTI_LEN, STATE_LEN};
use torii_protocol::{verify_v1, ChallengeFailure, V2Issuer, V2Verifier};

use crate::config::{ChallengeSpec, ChallengeVersion, ConfigError};
use crate::secure::keys::{signing_key, verifying_key};

/// A route's compiled exchange protocol.
#[derive(Debug)]
pub struct RouteChallenge {
    v2: Option<(V2Issuer, V2Verifier)>,
    /// `<request header>: `, written before the state value.
    request_prefix: Vec<u8>,
    /// Lower-case name of the request header (incoming copies are dropped).
    pub request_header: Vec<u8>,
    /// Lower-case name of the response header (read, then removed from the response).
    pub response_header: Vec<u8>,
    exclude: Option<RegexSet>,
}

impl RouteChallenge {
    /// Builds the challenge of route `route_name` from its spec, written at `path`
    /// (`routes[i].challenge`). Errors are at the key they concern, as the file names it: a
    /// key shared by both directions is reported at the shared key.
    pub fn build(
        route_name: &str,
        path: &str,
        spec: &ChallengeSpec,
        allow_weak: bool,
    ) -> Result<Self, ConfigError> {
        let v2 = match spec.version {
            ChallengeVersion::V1 => None,
            ChallengeVersion::V2 => {
                let ttl = spec.ttl.as_secs().max(1);
                let sign = signing_key(&spec.to_backend, allow_weak)?;
                let verify = verifying_key(&spec.from_backend, allow_weak)?;
                Some((
                    V2Issuer::new(route_name, ttl, sign),
                    V2Verifier::new(verify, ttl, spec.leeway.as_secs()),
                ))
            }
        };
        let exclude = if spec.exclude.is_empty() {
            None
        } else {
            Some(
                RegexSet::new(spec.exclude.iter().map(|r| r.as_str()))
                    .map_err(|e| ConfigError::new(format!("{path}.exclude"), e.to_string()))?,
            )
        };
        let mut request_prefix = spec.request_header.as_bytes().to_vec();
        request_prefix.extend_from_slice(b": ");
        Ok(Self {
            v2,
            request_prefix,
            request_header: spec.request_header.to_ascii_lowercase().into_bytes(),
            response_header: spec.response_header.to_ascii_lowercase().into_bytes(),
            exclude,
        })
    }

    /// False when `path` matches one of the route's `exclude` patterns.
    #[inline]
    pub fn applies(&self, path: &[u8]) -> bool {
        match &self.exclude {
            None => true,
            Some(set) => !std::str::from_utf8(path).is_ok_and(|p| set.is_match(p)),
        }
    }

    /// Appends `<request header>: <state>\r\n` to `out`: the raw 128-character value (V1) or
    /// the signed state token (V2).
    pub fn render_state_header(
        &self,
        state: &[u8; STATE_LEN],
        jti: &[u8; JTI_LEN],
        now: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), IssueError> {
        let start = out.len();
        out.extend_from_slice(&self.request_prefix);
        match &self.v2 {
            None => out.extend_from_slice(state),
            Some((issuer, _)) => {
                if let Err(e) = issuer.issue_into(state, jti, now, out) {
                    out.truncate(start);
                    return Err(e);
                }
            }
        }
        out.extend_from_slice(b"\r\n");
        Ok(())
    }

    /// Checks the backend's answer (`None` when the response header is absent) against the
    /// state that was sent.
    #[inline]
    pub fn check_answer(
        &self,
        answer: Option<&[u8]>,
        state: &[u8; STATE_LEN],
        now: u64,
    ) -> Result<(), ChallengeFailure> {
        match &self.v2 {
            None => verify_v1(state, answer),
            Some((_, verifier)) => verifier.verify_header(answer, state, now),
        }
    }
}
