//! Tests of the newer `[routes.jwt]` keys (`jwks_url` and its settings, required scopes
//! and claims), the same two settings on `[routes.apikeys]`, and `[client_credentials] issuer`:
//! defaults, and every error with its key path.

use std::time::Duration;

use super::tests::{errors, ok, MINIMAL};
use super::*;

fn jwt(body: &str) -> String {
    format!("{MINIMAL}[routes.jwt]\nalgorithms = [\"RS256\"]\n{body}")
}

#[test]
fn jwks_url_defaults() {
    let c = ok(&jwt("jwks_url = \"https://sts.test/jwks\"\n"));
    let Some(JwtKeysSpec::JwksUrl(spec)) = c.routes[0].jwt.as_ref().map(|j| j.keys.clone()) else {
        panic!("not a jwks_url")
    };
    assert_eq!(
        spec,
        JwksUrlSpec {
            url: "https://sts.test/jwks".into(),
            ca: None,
            refresh_min: defaults::JWKS_REFRESH_MIN,
            refresh_max: defaults::JWKS_REFRESH_MAX,
        }
    );
    let c = ok(&jwt(
        "jwks_url = \"http://127.0.0.1:1/j\"\ninsecure_jwks_http = true\njwks_ca = \"ca.pem\"\n\
         jwks_refresh_min = \"1s\"\njwks_refresh_max = \"5s\"\n",
    ));
    let Some(JwtKeysSpec::JwksUrl(spec)) = c.routes[0].jwt.as_ref().map(|j| j.keys.clone()) else {
        panic!("not a jwks_url")
    };
    assert_eq!(spec.ca, Some("/etc/torii/ca.pem".into()));
    assert_eq!(
        (spec.refresh_min, spec.refresh_max),
        (Duration::from_secs(1), Duration::from_secs(5))
    );
}

#[test]
fn jwks_url_errors() {
    let p = "routes[0].jwt.jwks_url: ";
    for (url, why) in [
        (
            "http://sts.test/j",
            "http:// is refused: use https://, or set insecure_jwks_http = true (tests only)",
        ),
        ("ftp://sts.test/j", "must be an https:// URL"),
        (
            "https://user:pw@sts.test/j",
            "must not carry user information (it would show in logs)",
        ),
        ("https://sts.test/j#frag", "must not have a fragment"),
        ("/jwks", "needs a host"),
    ] {
        assert_eq!(
            errors(&jwt(&format!("jwks_url = \"{url}\"\n"))),
            [format!("{p}{why}")],
            "{url}"
        );
    }
    assert_eq!(
        errors(&jwt("jwks_url = \"https://s/j\"\njwks_refresh_min = \"500ms\"\njwks_refresh_max = \"200ms\"\n")),
        [
            "routes[0].jwt.jwks_refresh_min: must be at least 1s (it also bounds the fetches a flood of unknown kids causes)",
            "routes[0].jwt.jwks_refresh_max: must not be shorter than jwks_refresh_min",
        ]
    );
    assert_eq!(
        errors(&jwt(
            "public_key = \"k.pem\"\njwks_ca = \"ca.pem\"\ninsecure_jwks_http = false\n"
        )),
        [
            "routes[0].jwt.jwks_ca: only applies with jwks_url",
            "routes[0].jwt.insecure_jwks_http: only applies with jwks_url",
        ]
    );
    assert_eq!(
        errors(&jwt("jwks_url = \"https://s/j\"\njwks_file = \"f.json\"\n")),
        ["routes[0].jwt: only one of jwks_file, jwks_url, public_key or secret may be set"]
    );
    assert_eq!(
        errors(&format!(
            "{MINIMAL}[routes.jwt]\nalgorithms = [\"HS256\"]\njwks_url = \"https://s/j\"\n"
        )),
        ["routes[0].jwt.algorithms: HS* algorithms need a secret, not public keys (key confusion)"]
    );
}

#[test]
fn routes_sharing_a_url_must_agree_on_fetching_it() {
    let route = |id: &str, host: &str, extra: &str| {
        format!(
            "[[routes]]\nid = \"{id}\"\ndomains = [\"{host}\"]\ntargets = [\"http://127.0.0.1:1\"]\n\
             [routes.jwt]\nalgorithms = [\"RS256\"]\njwks_url = \"https://sts.test/j\"\n{extra}"
        )
    };
    let base = "[gateway]\nhttp = [\"127.0.0.1:8080\"]\n";
    ok(&format!(
        "{base}{}{}",
        route("a", "a.test", ""),
        route("b", "b.test", "")
    ));
    assert_eq!(
        errors(&format!(
            "{base}{}{}",
            route("a", "a.test", ""),
            route("b", "b.test", "jwks_refresh_min = \"5s\"\n")
        )),
        ["routes[1].jwt: routes[0] fetches the same jwks_url with another jwks_ca, jwks_refresh_min or jwks_refresh_max: one fetcher serves both, so they must agree"]
    );
}

#[test]
fn required_scopes_and_claims() {
    let c = ok(&jwt(
        "public_key = \"k.pem\"\nrequired_scopes = [\"place-order\", \"read\", \"read\"]\n\
         required_claims = { azp = \"op\", tenant = [\"a\", \"b\"] }\n",
    ));
    let r = c.routes[0]
        .jwt
        .as_ref()
        .map(|j| j.required.clone())
        .unwrap_or_default();
    assert_eq!(r.scopes, ["place-order", "read"]);
    assert_eq!(
        r.claims,
        [
            ("azp".to_owned(), vec!["op".to_owned()]),
            ("tenant".to_owned(), vec!["a".to_owned(), "b".to_owned()])
        ]
    );
    assert_eq!(
        errors(&jwt(
            "public_key = \"k.pem\"\nrequired_scopes = [\"a b\", \"\"]\n\
             required_claims = { azp = [], x = \"\" }\n"
        )),
        [
            "routes[0].jwt.required_scopes[0]: a scope is one non-empty word (the token's scope is split on spaces)",
            "routes[0].jwt.required_scopes[1]: a scope is one non-empty word (the token's scope is split on spaces)",
            "routes[0].jwt.required_claims.azp: list at least one accepted value",
            "routes[0].jwt.required_claims.x: accepted values must not be empty",
        ]
    );
}

#[test]
fn route_apikeys_required_scopes_and_claims() {
    let c = ok(&format!(
        "{MINIMAL}[routes.apikeys]\nrequired_scopes = [\"place-order\"]\nrequired_claims = {{ cid = \"op\" }}\n"
    ));
    let r = c.routes[0]
        .apikeys
        .as_ref()
        .map(|a| a.required.clone())
        .unwrap_or_default();
    assert_eq!(r.scopes, ["place-order"]);
    assert_eq!(
        errors(&format!(
            "{MINIMAL}[routes.apikeys]\nextractors = [\"headers\"]\nrequired_claims = {{ cid = \"op\" }}\n"
        )),
        ["routes[0].apikeys.required_claims: claims are read from bearer tokens: enable the bearer extractor"]
    );
}

#[test]
fn client_credentials_issuer() {
    let c = ok(&format!("{MINIMAL}[client_credentials]\n"));
    assert_eq!(c.auth.client_credentials.map(|cc| cc.issuer), Some(None));
    let c = ok(&format!(
        "{MINIMAL}[client_credentials]\nissuer = \"https://sts.example.com\"\n"
    ));
    assert_eq!(
        c.auth.client_credentials.map(|cc| cc.issuer),
        Some(Some("https://sts.example.com".to_owned()))
    );
    assert_eq!(
        errors(&format!("{MINIMAL}[client_credentials]\nissuer = \" \"\n")),
        ["client_credentials.issuer: must be a non-blank string without control characters"]
    );
}
