//! `torii demo`: a gateway on an embedded config in front of built-in secured backends, with
//! the `curl` commands to try, as in Otoroshi's tutorial "Secure the communication between a
//! backend app and Otoroshi".
//!
//! Owns the demo's set-up: a random shared secret, three in-process `torii mirror` backends on
//! loopback (a V1 responder, a V2 responder that also verifies the info token, and a plain one
//! that does not answer the challenge), the embedded config (`demo.toml`) filled with their
//! addresses, an API key with a random secret for the API-key route and the client-credentials
//! service (tutorial "Secure an app with OAuth2 client_credential flow"), and the printed
//! walk-through. The gateway then runs exactly as `torii run` does.

use std::net::SocketAddr;

use torii_protocol::StateGenerator;

use crate::config;
use crate::mirror::secured::{ChallengeMode, MirrorSecurity, Misbehave};
use crate::mirror::{self, MirrorOptions};

/// The embedded demo configuration (a template).
pub const DEMO_CONFIG: &str = include_str!("demo.toml");

fn random_secret() -> Result<String, String> {
    let mut rng = StateGenerator::from_os().map_err(|e| format!("no OS entropy: {e}"))?;
    let mut jti = [0u8; 36];
    rng.fill_jti(&mut jti);
    let mut more = [0u8; 36];
    rng.fill_jti(&mut more);
    let hex: String = jti
        .iter()
        .chain(more.iter())
        .filter(|b| b.is_ascii_hexdigit())
        .map(|&b| b as char)
        .take(64)
        .collect();
    Ok(hex)
}

fn start_mirror(security: Option<MirrorSecurity>) -> Result<SocketAddr, String> {
    let handle = mirror::start(MirrorOptions {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        workers: 1,
        security,
        fixed_body: None,
    })?;
    Ok(handle.addr)
}

/// The demo API key's client id.
pub const DEMO_CLIENT_ID: &str = "demo-client";

/// Fills the template with the listener, the secrets and the backends' addresses.
pub fn render_config(
    listen: SocketAddr,
    secret: &str,
    apikey_secret: &str,
    v1: SocketAddr,
    v2: SocketAddr,
    plain: SocketAddr,
) -> String {
    DEMO_CONFIG
        .replace("{LISTEN}", &listen.to_string())
        .replace("{SECRET}", secret)
        .replace("{APIKEY_SECRET}", apikey_secret)
        .replace("{V1}", &v1.to_string())
        .replace("{V2}", &v2.to_string())
        .replace("{PLAIN}", &plain.to_string())
}

/// The walk-through printed once the demo listens on `addr`; `apikey_secret` is the demo key's
/// secret (hex, so it needs no quoting or URL-encoding).
pub fn walkthrough(addr: SocketAddr, apikey_secret: &str) -> String {
    let base = format!("http://{addr}");
    let id = DEMO_CLIENT_ID;
    let s = apikey_secret;
    let oauth = format!("{base}/.well-known/otoroshi/oauth");
    format!(
        "\nTorii demo is running on {base}\n\n\
         # A plain route (the backend describes the request it received):\n\
         curl -s -H 'Host: plain.oto.tools' {base}/hello\n\n\
         # The exchange protocol V1: the backend echoes the 128-character Otoroshi-State:\n\
         curl -s -H 'Host: v1.oto.tools' {base}/hello\n\n\
         # V2 and the info token: the backend verified the state token and the Otoroshi-Claim,\n\
         # and shows the decoded claim under \"token\":\n\
         curl -s -H 'Host: v2.oto.tools' {base}/hello\n\n\
         # A path excluded from the challenge on the V2 route:\n\
         curl -s -H 'Host: v2.oto.tools' {base}/health\n\n\
         # WebSocket through the same V2 route: the backend answers the challenge on its 101 and\n\
         # echoes the frames a WebSocket client sends. curl shows the handshake (the 101 and its\n\
         # Sec-WebSocket-Accept), then stops after 2 s, since it does not send frames:\n\
         curl -si -N --max-time 2 -H 'Host: v2.oto.tools' -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' {base}/chat\n\n\
         # A backend that does not answer the challenge: Torii answers 502 and never forwards\n\
         # the backend's response:\n\
         curl -si -H 'Host: unsecured.oto.tools' {base}/hello\n\n\
         # No route for this host:\n\
         curl -si -H 'Host: nowhere.oto.tools' {base}/\n\n\
         # API keys: a route that needs one answers 401 without it:\n\
         curl -si -H 'Host: api.oto.tools' {base}/hello\n\n\
         # ...and passes with the key's id and secret (the backend never sees them):\n\
         curl -s -H 'Host: api.oto.tools' -H 'Otoroshi-Client-Id: {id}' -H 'Otoroshi-Client-Secret: {s}' {base}/hello\n\n\
         # OAuth2 client credentials: get an access token (JSON body, as in Otoroshi's tutorial).\n\
         # The demo signs tokens with a key pair made at start: they stop verifying when it restarts.\n\
         curl -s -X POST -H 'Host: oauth.oto.tools' -H 'Content-Type: application/json' -d '{{\"grant_type\":\"client_credentials\",\"client_id\":\"{id}\",\"client_secret\":\"{s}\"}}' {oauth}/token\n\n\
         # ...or as a form with HTTP Basic client authentication, kept in a variable:\n\
         TOKEN=$(curl -s -u '{id}:{s}' -H 'Host: oauth.oto.tools' -d grant_type=client_credentials {oauth}/token | sed -E 's/.*\"access_token\":\"([^\"]+)\".*/\\1/')\n\n\
         # Call the API with the token:\n\
         curl -s -H 'Host: api.oto.tools' -H \"Authorization: Bearer $TOKEN\" {base}/hello\n\n\
         # Introspect it (RFC 7662), and fetch the public keys that verify it:\n\
         curl -s -u '{id}:{s}' -H 'Host: oauth.oto.tools' -d \"token=$TOKEN\" {oauth}/token/introspect\n\
         curl -s -H 'Host: oauth.oto.tools' {oauth}/jwks.json\n\n\
         # Quotas: limited-client may make 3 calls per 10 s. The first three pass and show the\n\
         # remaining calls (Otoroshi-Daily-Calls-Remaining, RateLimit-*); the fourth gets 429\n\
         # with Retry-After, and never reaches the backend:\n\
         for i in 1 2 3 4; do curl -si -H 'Host: limited.oto.tools' -H 'Otoroshi-Client-Id: limited-client' -H 'Otoroshi-Client-Secret: {s}' {base}/hello | grep -iE '^(HTTP|ratelimit|otoroshi-daily|retry-after)'; done\n\n\
         Stop with Ctrl-C.\n"
    )
}

/// `torii demo`: starts the backends and the gateway, prints the walk-through, serves until
/// SIGTERM/SIGINT.
pub fn run(listen: SocketAddr) -> Result<(), String> {
    let secret = random_secret()?;
    let v1 = start_mirror(Some(MirrorSecurity {
        challenge: Some(ChallengeMode::V1),
        secret: Vec::new(),
        claim_secret: None,
        misbehave: Misbehave::None,
    }))?;
    let v2 = start_mirror(Some(MirrorSecurity {
        challenge: Some(ChallengeMode::V2),
        secret: secret.as_bytes().to_vec(),
        claim_secret: Some(secret.as_bytes().to_vec()),
        misbehave: Misbehave::None,
    }))?;
    let plain = start_mirror(None)?;
    let apikey_secret: String = random_secret()?.chars().take(32).collect();
    let text = render_config(listen, &secret, &apikey_secret, v1, v2, plain);
    let cfg = config::load_str(&text, std::path::Path::new("."))
        .map_err(|e| format!("demo config: {e}"))?;
    crate::control::serve(cfg, None, |addrs| {
        if let Some(addr) = addrs.first() {
            println!("{}", walkthrough(*addr, &apikey_secret));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_config_is_valid() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap_or_else(|_| unreachable!());
        let secret = random_secret().unwrap_or_default();
        assert_eq!(secret.len(), 64);
        let text = render_config(SocketAddr::from(([127, 0, 0, 1], 0)), &secret, "k", a, a, a);
        let cfg = config::load_str(&text, std::path::Path::new("."));
        assert!(cfg.is_ok(), "{:?}", cfg.err().map(|e| e.to_string()));
        // The one warning its config has is intended: the walk-through says it instead.
        let cfg = cfg.unwrap_or_else(|e| panic!("{e}"));
        let warned: Vec<String> = config::warnings(&cfg, 0)
            .into_iter()
            .map(|w| w.path)
            .collect();
        assert_eq!(warned, ["client_credentials"]);
        assert!(crate::sysd::descriptors_needed(&cfg) <= 1024);
        let text = walkthrough(a, "k");
        assert!(text.contains("key pair made at start"));
        for host in ["plain", "v1", "v2", "unsecured", "api", "oauth"] {
            assert!(text.contains(&format!("Host: {host}.oto.tools")));
        }
    }
}
