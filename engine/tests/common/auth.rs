//! Fixtures of the API-key and OAuth2 tests: a gateway with the token service, key pairs on
//! disk (a fresh ES256 one from `torii keygen`'s generator and the protocol's RSA test key),
//! API keys in every state, and helpers to mint tokens independently with `jsonwebtoken`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use super::{gateway, mirror, request, Response};
use torii_engine::auth::keygen::{generate_pem, KeyKind};
use torii_engine::control::Gateway;

/// Secret of `my-client`: `:`, `+` and a literal `%3A` (Basic must keep them apart).
pub const SECRET: &str = "s3cr:et+x%3Ay-0123456789";
/// Host of the protected route.
pub const API: &str = "api.test";
/// Host of the token service.
pub const OAUTH: &str = "oauth.test";
/// The RSA key of the protocol's tests (PKCS#8).
pub fn rsa_pem_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../protocol/tests/keys/rsa2048.pem")
}

/// A directory for this test's files.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("torii-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Everything a test needs: the gateway, the ES256 PEM, the config text and its file.
pub struct AuthGateway {
    pub gw: Gateway,
    pub addr: SocketAddr,
    pub ec_pem: String,
    pub config_path: PathBuf,
    pub config: String,
}

/// The config: token service on `oauth.test` (secure as given), route `api` on `api.test`
/// (all extractors plus custom headers), route `other` on `other.test`, and keys:
/// `my-client` (scope read write), `rsa-client` (signed by `rsa`), `other-client` (route
/// `other` only), `disabled`, `expired`, `idonly` (client id alone allowed), all but
/// `my-client` and `rsa-client` allowing the client id alone.
pub fn config_text(dir: &Path, backend: SocketAddr, secure: bool, extra: &str) -> String {
    let ec = dir.join("ec.pem");
    format!(
        r#"{header}
[client_credentials]
domain = "oauth\\.test"
secure = {secure}
expiration = "1h"

[[key_pairs]]
id = "otoroshi-jwt-signing"
private_key = "{ec}"

[[key_pairs]]
id = "rsa"
private_key = "{rsa}"

[[apikeys]]
client_id = "my-client"
client_secret = "{SECRET}"
name = "My client"
routes = ["api"]
tags = ["team-a"]
metadata = {{ scope = "read write" }}
{extra}
[[apikeys]]
client_id = "rsa-client"
client_secret = "rsa-secret"
routes = ["api"]
metadata = {{ "jwt-sign-keypair" = "rsa" }}

[[apikeys]]
client_id = "other-client"
client_secret = "other-secret"
routes = ["other"]
allow_client_id_only = true

[[apikeys]]
client_id = "disabled"
client_secret = "disabled-secret"
enabled = false
routes = ["api"]
allow_client_id_only = true

[[apikeys]]
client_id = "expired"
client_secret = "expired-secret"
valid_until = "2020-01-01T00:00:00Z"
routes = ["api"]
allow_client_id_only = true

[[apikeys]]
client_id = "idonly"
client_secret = "idonly-secret"
routes = ["api"]
allow_client_id_only = true

[[routes]]
id = "api"
name = "api-service"
domains = ["{API}"]
targets = ["http://{backend}"]
[routes.apikeys]
custom_headers = {{ client_id = "X-Client", client_secret = "X-Secret" }}

[[routes]]
id = "other"
domains = ["other.test"]
targets = ["http://{backend}"]
[routes.apikeys]
"#,
        header = super::gateway_header(""),
        ec = ec.display(),
        rsa = rsa_pem_path().display(),
    )
}

/// Starts a mirror and a gateway on [`config_text`]; the config is also written to a file
/// (for reload tests).
pub fn start(name: &str, secure: bool) -> AuthGateway {
    let dir = temp_dir(name);
    let ec_pem = generate_pem(KeyKind::EcP256).unwrap();
    std::fs::write(dir.join("ec.pem"), &ec_pem).unwrap();
    let backend = mirror();
    let config = config_text(&dir, backend, secure, "");
    let config_path = dir.join("torii.toml");
    std::fs::write(&config_path, &config).unwrap();
    let gw = gateway(&config);
    let addr = gw.addrs[0];
    AuthGateway {
        gw,
        addr,
        ec_pem,
        config_path,
        config,
    }
}

/// `Basic base64(id:secret)`.
pub fn basic(id: &str, secret: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    format!("Basic {b64}")
}

/// RFC 6749 form-URL-encoding of one value.
pub fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `POST path` on `host` with a body and extra header lines (each ending in CRLF).
pub fn post(
    addr: SocketAddr,
    host: &str,
    path: &str,
    ctype: &str,
    extra: &str,
    body: &str,
) -> Response {
    request(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {ctype}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// A token from the service with JSON body client authentication.
pub fn token_json(addr: SocketAddr, id: &str, secret: &str) -> Response {
    let body = serde_json::json!({
        "grant_type": "client_credentials", "client_id": id, "client_secret": secret,
    })
    .to_string();
    post(
        addr,
        OAUTH,
        "/.well-known/otoroshi/oauth/token",
        "application/json",
        "",
        &body,
    )
}

/// Mints an access token independently (jsonwebtoken, ES256) for `cid`, signed by `pem`.
pub fn mint(pem: &str, kid: &str, cid: &str, exp_in: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = serde_json::json!({
        "iss": "http://oauth.test", "sub": cid, "cid": cid, "aud": "otoroshi",
        "iat": now, "nbf": now, "exp": now + exp_in, "jti": "minted",
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    let key = jsonwebtoken::EncodingKey::from_ec_pem(pem.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}
