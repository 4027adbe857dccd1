//! Tests of the TLS and `[routes.jwt]` sections: required keys, enumerations, the checks across
//! keys (HS/RS mixing, exchange without an info token, strip with a query source, client_auth
//! listeners) and the defaults.

use super::tests::{errors, ok, MINIMAL};
use super::*;

const HTTPS: &str = r#"
[gateway]
https = ["127.0.0.1:8443", "127.0.0.1:9443"]
[[certificates]]
cert = "gw.pem"
key = "gw.key"
[[routes]]
id = "r"
domains = ["a.test"]
targets = ["https://127.0.0.1:9001"]
"#;

#[test]
fn https_listeners_and_certificates_load_with_defaults() {
    let c = ok(HTTPS);
    assert_eq!(c.gateway.https.len(), 2);
    assert!(c.gateway.http.is_empty());
    assert_eq!(c.certificates[0].id, "certificates[0]");
    assert_eq!(
        c.certificates[0].cert,
        std::path::Path::new("/etc/torii/gw.pem")
    );
    assert_eq!(
        c.limits.tls_handshake_timeout,
        defaults::TLS_HANDSHAKE_TIMEOUT
    );
    assert_eq!(c.routes[0].targets[0].scheme, Scheme::Https);
    assert_eq!(c.routes[0].targets[0].port, 9001);
    assert!(c
        .summary()
        .contains("listeners https 127.0.0.1:8443 127.0.0.1:9443"));
}

#[test]
fn https_without_certificates_and_incomplete_certificates() {
    let text = HTTPS.replace(
        "[[certificates]]\ncert = \"gw.pem\"\nkey = \"gw.key\"\n",
        "",
    );
    assert_eq!(
        errors(&text),
        ["gateway.https: https listeners need at least one [[certificates]] entry (a cert and key file pair)"]
    );
    let text = format!("{MINIMAL}[[certificates]]\nid = \"x\"\n[[certificates]]\nid = \"x\"\ncert = \"a\"\nkey = \"b\"\n");
    assert_eq!(
        errors(&text),
        [
            "certificates[0].cert: required",
            "certificates[0].key: required",
        ]
    );
}

#[test]
fn client_auth_checks() {
    // `[gateway.client_auth]` after the routes: TOML allows a sub-table anywhere.
    let ok_text = format!(
        "{HTTPS}[gateway.client_auth]\nca = \"ca.pem\"\nmode = \"optional\"\nlisteners = [\"127.0.0.1:9443\"]\n"
    );
    let c = ok(&ok_text);
    let ca = c.gateway.client_auth.as_ref().unwrap();
    assert!(!ca.required);
    assert!(ca.applies_to("127.0.0.1:9443".parse().unwrap()));
    assert!(!ca.applies_to("127.0.0.1:8443".parse().unwrap()));
    let bad = format!("{HTTPS}[gateway.client_auth]\nmode = \"sometimes\"\nlisteners = [\"127.0.0.1:1\", \"x\"]\n");
    assert_eq!(
        errors(&bad),
        [
            "gateway.client_auth.ca: required",
            "gateway.client_auth.mode: unknown mode \"sometimes\" (expected \"required\" or \"optional\")",
            "gateway.client_auth.listeners[0]: 127.0.0.1:1 is not one of gateway.https",
            "gateway.client_auth.listeners[1]: invalid address \"x\"",
        ]
    );
}

#[test]
fn upstream_tls_checks() {
    let text = format!("{HTTPS}upstream_tls = {{ ca = \"ca.pem\", client_cert = \"c.pem\", server_name = \"bad name\" }}\n");
    assert_eq!(
        errors(&text),
        [
            "routes[0].upstream_tls.client_key: required with client_cert",
            "routes[0].upstream_tls.server_name: \"bad name\" is not a valid DNS name or IP address",
        ]
    );
    let c = ok(&format!(
        "{HTTPS}upstream_tls = {{ ca = \"ca.pem\", server_name = \"Inventory.Internal\" }}\n"
    ));
    let t = c.routes[0].upstream_tls.as_ref().unwrap();
    assert_eq!(t.server_name.as_deref(), Some("inventory.internal"));
    assert_eq!(
        t.ca.as_deref(),
        Some(std::path::Path::new("/etc/torii/ca.pem"))
    );
}

fn jwt(body: &str) -> String {
    format!("{MINIMAL}[routes.jwt]\n{body}")
}

#[test]
fn jwt_defaults() {
    let c = ok(&jwt("algorithms = [\"RS256\"]\npublic_key = \"sts.pem\"\n"));
    let j = c.routes[0].jwt.as_ref().unwrap();
    assert_eq!(j.forward, JwtForward::Pass);
    assert_eq!(j.leeway, defaults::JWT_LEEWAY);
    assert_eq!(
        j.source,
        JwtSourceSpec::Header {
            name: "Authorization".to_owned(),
            prefix: "Bearer ".to_owned()
        }
    );
    assert_eq!(j.keys, JwtKeysSpec::PublicKey("/etc/torii/sts.pem".into()));
}

#[test]
fn jwt_key_confusion_is_a_config_error() {
    assert_eq!(
        errors(&jwt("algorithms = [\"HS256\", \"RS256\"]\npublic_key = \"k.pem\"\n")),
        [
            "routes[0].jwt.algorithms: HS* algorithms cannot be mixed with RS*/PS*/ES* ones (key confusion)",
            "routes[0].jwt.algorithms: HS* algorithms need a secret, not public keys (key confusion)",
        ]
    );
    assert_eq!(
        errors(&jwt("algorithms = [\"RS256\"]\nsecret = \"${env.CHALLENGE_SECRET}\"\n")),
        ["routes[0].jwt.secret: a secret verifies HS* algorithms only (list HS256/HS384/HS512 in algorithms)"]
    );
    assert_eq!(
        errors(&jwt("algorithms = [\"none\"]\npublic_key = \"k.pem\"\njwks_file = \"j.json\"\n")),
        [
            "routes[0].jwt.algorithms[0]: unknown algorithm \"none\" (expected one of HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384)",
            "routes[0].jwt: only one of jwks_file, jwks_url, public_key or secret may be set",
        ]
    );
}

#[test]
fn jwt_source_and_forward_rules() {
    assert_eq!(
        errors(&jwt("algorithms = [\"RS256\"]\npublic_key = \"k\"\nsource = { query = \"t\" }\nforward = \"strip\"\n")),
        ["routes[0].jwt.forward: strip and exchange need a header source (a token in a query string or a cookie can only be passed)"]
    );
    assert_eq!(
        errors(&jwt("algorithms = [\"RS256\"]\npublic_key = \"k\"\nsource = { query = \"t\", cookie = \"c\", prefix = \"B\" }\nforward = \"swap\"\n")),
        [
            "routes[0].jwt.source: exactly one of header, query or cookie is required",
            "routes[0].jwt.source.prefix: only applies to a header source",
            "routes[0].jwt.forward: unknown value \"swap\" (expected \"pass\", \"strip\" or \"exchange\")",
        ]
    );
    assert_eq!(
        errors(&jwt("algorithms = [\"RS256\"]\npublic_key = \"k\"\nforward = \"exchange\"\n")),
        ["routes[0].jwt.forward: exchange needs [routes.info_token]: the external token is replaced by the route's info token"]
    );
    // A type error does not hide the other problems of the file.
    let both: Vec<String> = errors(&jwt(
        "algorithms = [\"RS256\"]\npublic_key = \"k\"\nleeway = \"1x\"\nissuer = 3\n",
    ))
    .into_iter()
    .map(|e| e.split(':').next().unwrap_or_default().to_owned())
    .collect();
    assert_eq!(both, ["routes[0].jwt.issuer", "routes[0].jwt.leeway"]);
}
