//! Required scopes and claims on a route protected by API keys (`[routes.apikeys]`
//! `required_scopes`, `required_claims`), checked after the key was authenticated and found
//! authorised on the route.
//!
//! Where the scopes come from: a bearer token from Torii's own token service carries the scope
//! it was granted (its `scope` claim: the key's `metadata.scope`, or the subset the client asked
//! for), so a token asked for with fewer scopes does not get the key's others back; a key that
//! authenticated without a token (client id and secret, Basic) is judged on its
//! `metadata.scope`. Required claims are read from the bearer token; without a token there is
//! nothing to match, so a route with `required_claims` refuses such requests (403). Pure: the
//! matching rules are [`crate::jwt_verifier::RequiredClaims`]'s.

use super::extract::Authenticated;
use super::validate::ApiKeyError;
use crate::jwt_verifier::RequiredClaims;

/// Checks what `auth` presented against `required`: `Ok` when nothing is required or all of it
/// is there, else [`ApiKeyError::Forbidden`] (403; the message names no scope or claim value).
pub fn check_required(
    auth: &Authenticated<'_>,
    required: &RequiredClaims,
) -> Result<(), ApiKeyError> {
    if required.is_empty() {
        return Ok(());
    }
    let result = match &auth.token {
        Some(token) => required.check_with_scope(token.claim_str("scope"), Some(token.claims())),
        None => {
            let scope = auth.key.key().metadata.get(super::META_SCOPE);
            required.check_with_scope(scope.map(String::as_str), None)
        }
    };
    result.map_err(ApiKeyError::Forbidden)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::{authenticate, extract, ApiKey, ApiKeyStore, Extractors, SimpleRequest};
    use super::*;
    use crate::jwt_verifier::ClaimFailure;

    fn store(scope: Option<&str>) -> ApiKeyStore {
        let mut key = ApiKey::new("id", "secret", "app");
        key.routes = vec!["r".into()];
        if let Some(s) = scope {
            key.metadata.insert("scope".into(), s.into());
        }
        ApiKeyStore::new(vec![key]).unwrap()
    }

    fn check(store: &ApiKeyStore, required: &RequiredClaims) -> Result<(), ApiKeyError> {
        let req = SimpleRequest::new()
            .with_header("Otoroshi-Client-Id", "id")
            .with_header("Otoroshi-Client-Secret", "secret");
        let ex = Extractors::default();
        let found = extract(&req, &ex);
        let auth = authenticate(store, None, found.found.as_ref(), "r", 1).unwrap();
        check_required(&auth, required)
    }

    #[test]
    fn key_metadata_scope_is_used_without_a_token() {
        let need = RequiredClaims {
            scopes: vec!["place-order".into()],
            claims: Vec::new(),
        };
        assert_eq!(check(&store(Some("read place-order")), &need), Ok(()));
        let e = check(&store(Some("read")), &need).unwrap_err();
        assert_eq!(e, ApiKeyError::Forbidden(ClaimFailure::MissingScope));
        assert_eq!((e.status(), e.message()), (403, "Insufficient scope"));
        assert!(e.www_authenticate().unwrap().contains("insufficient_scope"));
        assert!(check(&store(None), &need).is_err());
        assert_eq!(check(&store(None), &RequiredClaims::default()), Ok(()));
    }

    #[test]
    fn required_claims_need_a_token() {
        let need = RequiredClaims {
            scopes: Vec::new(),
            claims: vec![("cid".into(), vec!["id".into()])],
        };
        let e = check(&store(Some("x")), &need).unwrap_err();
        assert_eq!(e, ApiKeyError::Forbidden(ClaimFailure::ClaimNotAllowed));
        assert_eq!(e.status(), 403);
        assert_eq!(e.body(), "{\"Otoroshi-Error\":\"Claim not allowed\"}");
    }
}
