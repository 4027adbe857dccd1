//! Required scopes and claims: which callers a route lets through once their token verified
//! (`required_scopes`, `required_claims` on `[routes.jwt]` and `[routes.apikeys]`).
//!
//! Owns the matching rules, the same for every caller: a scope is found in the token's `scope`
//! claim (space-separated, RFC 8693 §4.2 / RFC 9068 §2.2.3) or its `scp` claim (an array of
//! strings, as Azure AD and Okta write it; a string there is read like `scope`); every required
//! scope must be present. A required claim matches when the token's claim is a string equal to
//! the configured value, or to one of the configured values; any other type (number, array,
//! object) does not match. What Envoy's `jwt_authn` and Kong's JWT plugin check, in the simplest
//! form. The failure says which rule failed, never a claim value. Pure: no IO, no allocation.

use serde_json::{Map, Value};

/// Why a verified token was not allowed through (answered 403).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClaimFailure {
    /// A required scope is missing from `scope` / `scp`.
    #[error("insufficient scope")]
    MissingScope,
    /// A required claim is absent or has a value not in the accepted list.
    #[error("claim not allowed")]
    ClaimNotAllowed,
}

impl ClaimFailure {
    /// A short stable label for logs and metrics.
    pub fn reason(self) -> &'static str {
        match self {
            ClaimFailure::MissingScope => "insufficient_scope",
            ClaimFailure::ClaimNotAllowed => "claim_not_allowed",
        }
    }
}

/// The scopes and claims a route requires. Empty (the default) requires nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequiredClaims {
    /// Scopes that must all be present.
    pub scopes: Vec<String>,
    /// Claim name → accepted string values (one or more).
    pub claims: Vec<(String, Vec<String>)>,
}

impl RequiredClaims {
    /// True when nothing is required (the check is skipped).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.scopes.is_empty() && self.claims.is_empty()
    }

    /// Checks a verified token's claims: scopes first, then each claim in configuration order.
    pub fn check(&self, claims: &Map<String, Value>) -> Result<(), ClaimFailure> {
        if !self.scopes.is_empty() {
            let scope = claims.get("scope");
            let scp = claims.get("scp");
            let granted = |want: &str| has_scope(scope, want) || has_scope(scp, want);
            if !self.scopes.iter().all(|s| granted(s)) {
                return Err(ClaimFailure::MissingScope);
            }
        }
        self.check_claims(claims)
    }

    /// Checks scopes given as one space-separated string (an API key's `scope` metadata),
    /// then the claims against `claims` (`None`: no token, so any required claim fails).
    pub fn check_with_scope(
        &self,
        scope: Option<&str>,
        claims: Option<&Map<String, Value>>,
    ) -> Result<(), ClaimFailure> {
        let granted = |want: &str| scope.is_some_and(|s| s.split(' ').any(|g| g == want));
        if !self.scopes.iter().all(|s| granted(s)) {
            return Err(ClaimFailure::MissingScope);
        }
        match claims {
            Some(c) => self.check_claims(c),
            None if self.claims.is_empty() => Ok(()),
            None => Err(ClaimFailure::ClaimNotAllowed),
        }
    }

    fn check_claims(&self, claims: &Map<String, Value>) -> Result<(), ClaimFailure> {
        for (name, accepted) in &self.claims {
            match claims.get(name) {
                Some(Value::String(v)) if accepted.iter().any(|a| a == v) => {}
                _ => return Err(ClaimFailure::ClaimNotAllowed),
            }
        }
        Ok(())
    }
}

/// Whether a `scope` (space-separated string) or `scp` (array of strings, or a string) value
/// grants `want`.
fn has_scope(value: Option<&Value>, want: &str) -> bool {
    match value {
        Some(Value::String(s)) => s.split(' ').any(|g| g == want),
        Some(Value::Array(items)) => items.iter().any(|i| i.as_str() == Some(want)),
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn scopes(s: &[&str]) -> RequiredClaims {
        RequiredClaims {
            scopes: s.iter().map(|s| (*s).to_owned()).collect(),
            claims: Vec::new(),
        }
    }

    #[test]
    fn nothing_required_passes_anything() {
        let r = RequiredClaims::default();
        assert!(r.is_empty());
        assert_eq!(r.check(&map(json!({}))), Ok(()));
    }

    #[test]
    fn scope_string_must_hold_every_required_scope() {
        let r = scopes(&["place-order", "read"]);
        assert_eq!(
            r.check(&map(json!({"scope": "read place-order x"}))),
            Ok(())
        );
        assert_eq!(
            r.check(&map(json!({"scope": "read"}))),
            Err(ClaimFailure::MissingScope)
        );
        // Whole words only: "place-orders" is not "place-order".
        assert_eq!(
            r.check(&map(json!({"scope": "place-orders read"}))),
            Err(ClaimFailure::MissingScope)
        );
        assert_eq!(r.check(&map(json!({}))), Err(ClaimFailure::MissingScope));
        assert_eq!(
            r.check(&map(json!({"scope": 3}))),
            Err(ClaimFailure::MissingScope)
        );
    }

    #[test]
    fn scp_array_or_string_counts_too() {
        let r = scopes(&["place-order"]);
        assert_eq!(r.check(&map(json!({"scp": ["a", "place-order"]}))), Ok(()));
        assert_eq!(r.check(&map(json!({"scp": "place-order"}))), Ok(()));
        assert_eq!(
            r.check(&map(json!({"scp": ["a", 1]}))),
            Err(ClaimFailure::MissingScope)
        );
        // Spread over both claims.
        let r = scopes(&["a", "b"]);
        assert_eq!(r.check(&map(json!({"scope": "a", "scp": ["b"]}))), Ok(()));
    }

    #[test]
    fn claims_match_exactly_or_one_of_a_list() {
        let r = RequiredClaims {
            scopes: Vec::new(),
            claims: vec![
                ("azp".into(), vec!["order-processing".into()]),
                ("tenant".into(), vec!["a".into(), "b".into()]),
            ],
        };
        let ok = json!({"azp": "order-processing", "tenant": "b"});
        assert_eq!(r.check(&map(ok)), Ok(()));
        for bad in [
            json!({"azp": "order-processing", "tenant": "c"}),
            json!({"azp": "Order-Processing", "tenant": "a"}),
            json!({"tenant": "a"}),
            json!({"azp": ["order-processing"], "tenant": "a"}),
            json!({"azp": "order-processing", "tenant": 1}),
        ] {
            assert_eq!(
                r.check(&map(bad.clone())),
                Err(ClaimFailure::ClaimNotAllowed),
                "{bad}"
            );
        }
    }

    #[test]
    fn api_key_scope_metadata_and_claims() {
        let r = scopes(&["place-order"]);
        assert_eq!(r.check_with_scope(Some("x place-order"), None), Ok(()));
        assert_eq!(
            r.check_with_scope(Some("x"), None),
            Err(ClaimFailure::MissingScope)
        );
        assert_eq!(
            r.check_with_scope(None, None),
            Err(ClaimFailure::MissingScope)
        );
        let r = RequiredClaims {
            scopes: Vec::new(),
            claims: vec![("cid".into(), vec!["me".into()])],
        };
        let token = map(json!({"cid": "me"}));
        assert_eq!(r.check_with_scope(None, Some(&token)), Ok(()));
        // No token (a client id and secret): nothing can satisfy a required claim.
        assert_eq!(
            r.check_with_scope(None, None),
            Err(ClaimFailure::ClaimNotAllowed)
        );
    }

    #[test]
    fn failures_name_no_value() {
        for f in [ClaimFailure::MissingScope, ClaimFailure::ClaimNotAllowed] {
            assert!(!f.to_string().contains("order"));
            assert!(!f.reason().is_empty());
        }
    }
}
