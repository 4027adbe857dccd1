//! Tests of parsing and top-level validation: the full example of every key operators rely on,
//! unknown-key paths, syntax errors, defaults, `[gateway]` and `[limits]`.

use std::path::Path;
use std::time::Duration;

use super::*;

/// The configuration contract's example, kept verbatim: every key name operators, scripts and
/// tests rely on. Keep it working as written; add keys beside it, never rename one.
pub(super) const CONTRACT_EXAMPLE: &str = r#"
[gateway]
workers = "auto"                     # or an integer; "auto" = one per core
http = ["127.0.0.1:8080"]            # plain listeners
https = ["127.0.0.1:8443"]           # TLS listeners (need [[certificates]])
admin = "127.0.0.1:9900"             # optional: /metrics, /health, /ready
drain_timeout = "10s"
insecure_allow_weak_keys = false

[limits]                             # defaults shown in docs/configuration.md
max_header_bytes = 16384
max_headers = 100
max_body_bytes = 10485760
client_header_timeout = "10s"
keepalive_timeout = "60s"
upstream_connect_timeout = "2s"
upstream_timeout = "30s"
websocket_idle_timeout = "5m"
max_websocket_tunnels_per_worker = 10000

[[certificates]]                     # served by SNI on https listeners; the first is the default
id = "gateway"
cert = "certs/gateway.pem"           # PEM chain
key = "certs/gateway.key"            # PEM private key

[[key_pairs]]                        # signing keys published in jwks.json
id = "otoroshi-jwt-signing"
private_key = "keys/signing.pem"     # PKCS#8 PEM, RSA or EC

[client_credentials]                 # the OAuth2 service; absent = off
domain = "oauth\\.oto\\.tools"       # anchored regex on the Host (no port)
expiration = "1h"
default_key_pair = "otoroshi-jwt-signing"
secure = true
issuer = "https://sts.example.com"   # optional fixed `iss`; default: scheme + request Host

[[apikeys]]
client_id = "my-id"
client_secret = "${env.MY_SECRET}"
name = "my app"
enabled = true
valid_until = "2030-01-01T00:00:00Z" # optional, RFC 3339
routes = ["myservice"]               # route ids this key may call
tags = ["team-a"]
metadata = { scope = "read write", "jwt-sign-keypair" = "otoroshi-jwt-signing" }

[[routes]]
id = "myservice"
name = "my-service"                  # used as `aud` of the tokens sent to the backend
domains = ["myservice.oto.tools", "*.api.oto.tools"]
paths = ["/"]                        # path prefixes
targets = ["http://127.0.0.1:9001", "https://inventory.internal:9009"]
websocket = true                     # carry WebSocket upgrades (default true)
# load_balancing = "round_robin"
# upstream_tls = { ca = "certs/ca.pem", client_cert = "...", client_key = "...", server_name = "..." }

[routes.challenge]                   # absent = no exchange protocol on this route
version = "v2"                       # "v1" | "v2"
ttl = "30s"
leeway = "10s"
request_header = "Otoroshi-State"
response_header = "Otoroshi-State-Resp"
algorithm = "HS512"                  # one algorithm/key for both directions, or split:
secret = "${env.CHALLENGE_SECRET}"   #   [routes.challenge.to_backend] / [routes.challenge.from_backend]

[routes.info_token]                  # absent = no Otoroshi-Claim
version = "latest"                   # "latest" | "legacy"
header = "Otoroshi-Claim"
ttl = "30s"
algorithm = "HS512"
secret = "${env.CLAIM_SHAREDKEY}"    # or private_key = "keys/claim.pem" for RS*/ES*/PS*

[routes.apikeys]                     # absent = public route
extractors = ["client_id", "headers", "bearer", "basic"]   # any subset, in this order
custom_headers = { client_id = "X-Client", client_secret = "X-Secret" }   # optional
wipe_credentials = true

[routes.jwt]                         # verify a token from an external issuer; absent = off
issuer = "https://sts.example.com"
audience = "inventory"
algorithms = ["RS256"]
jwks_file = "keys/sts-jwks.json"     # or public_key = "keys/sts.pem", or secret = ... for HS*
# jwks_url = "https://sts.example.com/oauth2/jwks"   # fetched and refreshed (Cache-Control, kid miss)
# jwks_ca = "certs/sts-ca.pem"       # private CA for jwks_url
# insecure_jwks_http = false         # true allows an http:// jwks_url (tests only)
required_scopes = ["place-order"]    # every one must be in the token's scope / scp
required_claims = { azp = "order-processing" }   # exact value, or a list of accepted values
source = { header = "Authorization", prefix = "Bearer " }   # or { query = "token" } / { cookie = "jwt" }
forward = "strip"                    # "pass" | "strip" | "exchange" (re-sign as the info token)
"#;

pub(crate) fn env() -> MapEnv {
    MapEnv::new([
        ("CHALLENGE_SECRET", "a-challenge-secret-of-32-bytes-or-more"),
        ("CLAIM_SHAREDKEY", "a-claim-secret-of-32-bytes-or-more!!"),
        ("MY_SECRET", "s"),
    ])
    .with_host("backend.internal", std::net::IpAddr::from([10, 0, 0, 7]))
    .with_host("inventory.internal", std::net::IpAddr::from([10, 0, 0, 8]))
}

pub(super) fn load(text: &str) -> Result<Config, ConfigErrors> {
    load_str_with_env(text, Path::new("/etc/torii"), &env())
}

/// Loads `text` and returns its errors as `path: message` lines, without the
/// `(line L, column C)` that ends most of them (see [`located_errors`]).
pub(super) fn errors(text: &str) -> Vec<String> {
    located_errors(text)
        .into_iter()
        .map(|e| {
            let at = e
                .rfind(" (line ")
                .or_else(|| e.rfind(" (missing from the table at line "));
            match at {
                Some(at) if e.ends_with(')') => e[..at].to_owned(),
                _ => e,
            }
        })
        .collect()
}

/// Loads `text` and returns its errors as they are printed.
pub(super) fn located_errors(text: &str) -> Vec<String> {
    match load(text) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

pub(super) fn ok(text: &str) -> Config {
    match load(text) {
        Ok(c) => c,
        Err(e) => panic!("unexpected errors:\n{e}\nfor:\n{text}"),
    }
}

pub(super) const MINIMAL: &str = r#"
[gateway]
http = ["127.0.0.1:8080"]
[[routes]]
id = "r"
domains = ["a.test"]
targets = ["http://127.0.0.1:9001"]
"#;

#[test]
fn contract_example_parses_every_key() {
    let raw = match parse_raw(CONTRACT_EXAMPLE) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(raw.routes.len(), 1);
    assert_eq!(
        raw.apikeys[0].metadata.get("scope").map(String::as_str),
        Some("read write")
    );
    let jwt = raw.routes[0].jwt.as_ref();
    assert_eq!(
        jwt.and_then(|j| j.source.as_ref())
            .and_then(|s| s.prefix.as_deref()),
        Some("Bearer ")
    );
    assert_eq!(
        raw.client_credentials
            .as_ref()
            .and_then(|c| c.domain.as_deref()),
        Some("oauth\\.oto\\.tools")
    );
}

#[test]
fn contract_example_validates_whole() {
    // Every section of the example is supported: the example validates as written (files
    // are read when the snapshot is built, not here).
    let c = ok(CONTRACT_EXAMPLE);
    assert_eq!(c.certificates.len(), 1);
    assert_eq!(c.gateway.https.len(), 1);
    assert!(c.routes[0].jwt.is_some());
    assert!(c.routes[0].apikeys.is_some());
    assert_eq!(c.auth.apikeys.len(), 1);
    let required = c.routes[0].jwt.as_ref().map(|j| j.required.clone());
    assert_eq!(
        required,
        Some(torii_protocol::jwt_verifier::RequiredClaims {
            scopes: vec!["place-order".into()],
            claims: vec![("azp".into(), vec!["order-processing".into()])],
        })
    );
    let issuer = c
        .auth
        .client_credentials
        .as_ref()
        .map(|cc| cc.issuer.clone());
    assert_eq!(issuer, Some(Some("https://sts.example.com".to_owned())));
}

#[test]
fn contract_example_without_unsupported_sections_loads() {
    let supported: String = CONTRACT_EXAMPLE
        .split("\n[")
        .filter(|s| {
            !["[certificates]]", "routes.jwt]"]
                .iter()
                .any(|p| s.starts_with(p))
        })
        .collect::<Vec<_>>()
        .join("\n[")
        .replace("https = [\"127.0.0.1:8443\"]", "")
        .replace(", \"https://inventory.internal:9009\"", "");
    let c = ok(&supported);
    assert_eq!(c.routes[0].name, "my-service");
    assert_eq!(c.auth.apikeys[0].valid_until, Some(1_893_456_000));
    assert_eq!(
        c.auth.key_pairs[0].private_key,
        Path::new("/etc/torii/keys/signing.pem")
    );
    let cc = c
        .auth
        .client_credentials
        .as_ref()
        .map(|cc| cc.domain.is_match("OAuth.oto.tools"));
    assert_eq!(cc, Some(true));
    let keys = c.routes[0]
        .apikeys
        .as_ref()
        .map(|a| (a.basic, a.custom.is_some()));
    assert_eq!(keys, Some((true, true)));
    assert_eq!(
        c.routes[0].domains,
        ["myservice.oto.tools", "*.api.oto.tools"]
    );
    let ch = c.routes[0]
        .challenge
        .as_ref()
        .map(|ch| (ch.version, ch.ttl, ch.to_backend.algorithm.clone()));
    assert_eq!(
        ch,
        Some((
            ChallengeVersion::V2,
            Duration::from_secs(30),
            "HS512".to_owned()
        ))
    );
    let it = c.routes[0]
        .info_token
        .as_ref()
        .map(|i| (i.version, i.header.clone()));
    assert_eq!(
        it,
        Some((InfoTokenVersion::Latest, "Otoroshi-Claim".to_owned()))
    );
    assert_eq!(c.gateway.admin, "127.0.0.1:9900".parse().ok());
}

#[test]
fn unknown_key_paths() {
    let top = format!("bogus = 1\n{MINIMAL}");
    assert_eq!(errors(&top), ["bogus: unknown key"]);
    let table = MINIMAL.replace("[gateway]", "[gateway]\nworkerz = 2");
    assert_eq!(
        errors(&table),
        ["gateway.workerz: unknown key (did you mean `workers`?)"]
    );
    let three = format!(
        "{MINIMAL}{}{}",
        MINIMAL
            .split("[[routes]]")
            .nth(1)
            .map(|r| format!("[[routes]]{r}"))
            .unwrap_or_default()
            .replace("\"r\"", "\"r2\""),
        "[[routes]]\nid = \"r3\"\n[routes.challenge]\ntll = \"5s\"\n"
    );
    // The rest of the file is validated too (this one has more problems): the unknown key
    // comes first.
    assert_eq!(
        errors(&three)[0],
        "routes[2].challenge.tll: unknown key (did you mean `ttl`?)"
    );
    let split = format!("{MINIMAL}[routes.challenge.to_backend]\nsecrett = \"x\"\n");
    assert_eq!(
        errors(&split),
        [
            "routes[0].challenge.to_backend.secrett: unknown key (did you mean `secret`?)",
            // The table brings no key of its own: both directions need the shared one.
            "routes[0].challenge.secret: required for HS512",
        ]
    );
    let inline = format!("{MINIMAL}upstream_tls = {{ ca = \"x\", cacert = \"y\" }}\n");
    assert_eq!(
        errors(&inline),
        [
            "routes[0].upstream_tls.cacert: unknown key",
            "routes[0].upstream_tls: applies to https:// targets only, and the route has none",
        ]
    );
    let apikey =
        format!("{MINIMAL}[[apikeys]]\nclient_id = \"a\"\n[[apikeys]]\nclient_idd = \"b\"\n");
    assert_eq!(
        errors(&apikey)[0],
        "apikeys[1].client_idd: unknown key (did you mean `client_id`?)"
    );
}

#[test]
fn unknown_key_error_never_quotes_the_line() {
    let text = format!("{MINIMAL}[routes.challenge]\nsecrett = \"hunter2-literal\"\n");
    let all = errors(&text).join("\n");
    assert!(!all.contains("hunter2"), "{all}");
}

#[test]
fn wrong_type_reports_path_and_position() {
    let text = MINIMAL.replace(
        "[gateway]",
        "[gateway]\nmax_connections_per_worker = \"many\"",
    );
    let errs = located_errors(&text);
    assert_eq!(
        errs,
        ["gateway.max_connections_per_worker: invalid type: string, expected i64 (line 3, column 1)"]
    );
}

#[test]
fn every_error_says_where_its_key_is() {
    let text = "[gateway]\nhttp = [\"127.0.0.1:8080\"]\nworkerz = 2\n\n[[routes]]\nid = \"r\"\ndomains = [\"a.test\"]\ntargets = [\"ftp://x\"]\n[routes.challenge]\nttl = \"1 h\"\n";
    assert_eq!(
        located_errors(text),
        [
            "gateway.workerz: unknown key (did you mean `workers`?) (line 3, column 1)",
            "routes[0].targets[0]: target \"ftp://x\" must start with http://, https:// or h2c:// (line 8, column 12)",
            "routes[0].challenge.ttl: invalid duration \"1 h\": a unit is required; expected a number and a unit (ms, s, m, h, d), or several from the largest unit to the smallest, such as \"30s\", \"1h30m\" or \"1.5s\" (line 10, column 1)",
            // Not written: said to be missing from the table it belongs in, at its header.
            "routes[0].challenge.secret: required for HS512 (missing from the table at line 9, column 1)",
        ]
    );
}

#[test]
fn syntax_error_reports_line_and_column() {
    let errs = errors("[gateway]\nhttp = [\"127.0.0.1:8080\"\nadmin = 3\n");
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("invalid TOML at line "), "{errs:?}");
    let errs = errors("[gateway]\nhttp = = 1\n");
    assert!(
        errs[0].starts_with("invalid TOML at line 2, column "),
        "{errs:?}"
    );
}

#[test]
fn defaults() {
    let c = ok(MINIMAL);
    assert_eq!(c.limits, Limits::default());
    assert_eq!(c.gateway.drain_timeout, defaults::DRAIN_TIMEOUT);
    assert_eq!(c.gateway.max_connections_per_worker, 10_000);
    assert!(!c.gateway.insecure_allow_weak_keys);
    assert!(c.gateway.workers >= 1);
    assert_eq!(c.gateway.admin, None);
    assert_eq!(c.routes[0].name, "r");
    assert_eq!(c.routes[0].paths, ["/"]);
    assert!(c.routes[0].challenge.is_none() && c.routes[0].info_token.is_none());
    assert_eq!(c.source, None);
}

#[test]
fn summary_line() {
    let c = ok(&MINIMAL.replace("[gateway]", "[gateway]\nworkers = 2"));
    assert_eq!(
        c.summary(),
        "ok: 1 route, 2 workers, listeners http 127.0.0.1:8080, admin -, drain 10s"
    );
}

#[test]
fn gateway_errors_are_all_collected() {
    let text = r#"
[gateway]
workers = 0
http = ["127.0.0.1", "127.0.0.1:80", "127.0.0.1:80"]
admin = "localhost:9900"
drain_timeout = 10
max_connections_per_worker = -1
"#;
    assert_eq!(
        errors(text),
        [
            "gateway.workers: must be \"auto\" or an integer from 1 to 1024",
            "gateway.http[0]: invalid address \"127.0.0.1\": expected IP:port, such as \"127.0.0.1:8080\" or \"[::1]:8080\"",
            "gateway.http[2]: address 127.0.0.1:80 is already used by gateway.http[1]",
            "gateway.admin: invalid address \"localhost:9900\": expected IP:port, such as \"127.0.0.1:8080\" or \"[::1]:8080\"",
            "gateway.drain_timeout: a duration must be a string: a number and a unit (ms, s, m, h, d), or several from the largest unit to the smallest, such as \"30s\", \"1h30m\" or \"1.5s\"",
            "gateway.max_connections_per_worker: must be greater than zero",
        ]
    );
}

#[test]
fn workers_values() {
    let w = |v: &str| {
        load(&MINIMAL.replace("[gateway]", &format!("[gateway]\nworkers = {v}")))
            .map(|c| c.gateway.workers)
    };
    assert_eq!(w("1"), Ok(1));
    assert_eq!(w("1024"), Ok(1024));
    assert!(w("1025").is_err());
    assert!(w("-3").is_err());
    assert!(w("\"all\"").is_err());
    assert!(matches!(w("\"auto\""), Ok(n) if n >= 1));
}

#[test]
fn listeners_required_and_admin_conflict() {
    assert_eq!(
        errors("[gateway]\n"),
        ["gateway.http: at least one http or https listener is required"]
    );
    let text = MINIMAL.replace("[gateway]", "[gateway]\nadmin = \"127.0.0.1:8080\"");
    assert_eq!(
        errors(&text),
        ["gateway.admin: address 127.0.0.1:8080 is already used by gateway.http[0]"]
    );
    let v6 = ok(&MINIMAL.replace("127.0.0.1:8080", "[::1]:8080"));
    assert_eq!(
        v6.gateway.http,
        ["[::1]:8080"
            .parse()
            .ok()
            .into_iter()
            .collect::<Vec<SocketAddr>>()[0]]
    );
}

#[test]
fn limits_are_checked() {
    let text = format!(
        "{MINIMAL}[limits]\nmax_header_bytes = 0\nmax_headers = 5000\nmax_request_line_bytes = 4096\nmax_body_bytes = -5\n\
         client_header_timeout = \"0s\"\nkeepalive_timeout = \"5\"\nupstream_connect_timeout = \"250ms\"\nupstream_timeout = \"2m\"\n\
         body_idle_timeout = \"1x\"\nbody_min_rate = 0\nbody_min_rate_grace = \"0s\"\n\
         response_min_rate = -1\nresponse_min_rate_grace = \"1x\"\n"
    );
    assert_eq!(
        errors(&text),
        [
            "limits.max_header_bytes: must be greater than zero",
            "limits.max_headers: must be between 1 and 1024",
            "limits.max_body_bytes: must be greater than zero",
            "limits.client_header_timeout: duration must be greater than zero",
            "limits.keepalive_timeout: invalid duration \"5\": a unit is required; expected a number and a unit (ms, s, m, h, d), or several from the largest unit to the smallest, such as \"30s\", \"1h30m\" or \"1.5s\"",
            "limits.body_idle_timeout: invalid duration \"1x\": unknown unit \"x\"; expected a number and a unit (ms, s, m, h, d), or several from the largest unit to the smallest, such as \"30s\", \"1h30m\" or \"1.5s\"",
            "limits.response_min_rate: must be between 0 and 9223372036854775807",
            "limits.response_min_rate_grace: invalid duration \"1x\": unknown unit \"x\"; expected a number and a unit (ms, s, m, h, d), or several from the largest unit to the smallest, such as \"30s\", \"1h30m\" or \"1.5s\"",
        ]
    );
    let good = format!("{MINIMAL}[limits]\nupstream_connect_timeout = \"250ms\"\nupstream_timeout = \"2m\"\nbody_min_rate = 0\nmax_request_line_bytes = 4096\nresponse_min_rate = 0\nresponse_min_rate_grace = \"0s\"\n");
    let l = ok(&good).limits;
    assert_eq!(l.upstream_connect_timeout, Duration::from_millis(250));
    assert_eq!(l.upstream_timeout, Duration::from_secs(120));
    assert_eq!(l.body_min_rate, 0);
    assert_eq!(
        (l.response_min_rate, l.response_min_rate_grace),
        (0, Duration::ZERO)
    );
    assert_eq!(
        (
            Limits::default().response_min_rate,
            Limits::default().response_min_rate_grace
        ),
        (1024, Duration::from_secs(5))
    );
    assert_eq!(l.max_request_line_bytes, 4096);
}

#[test]
fn websocket_limits_and_route_switch() {
    let c = ok(MINIMAL);
    assert_eq!(c.limits.websocket_idle_timeout, Duration::from_secs(300));
    assert_eq!(c.limits.max_websocket_tunnels_per_worker, 10_000);
    assert!(c.routes[0].websocket, "carried by default, as in Otoroshi");
    let text = format!(
        "{MINIMAL}websocket = false\n[limits]\nwebsocket_idle_timeout = \"1m30s\"\nmax_websocket_tunnels_per_worker = 0\n"
    );
    let c = ok(&text);
    assert!(!c.routes[0].websocket);
    assert_eq!(c.limits.websocket_idle_timeout, Duration::from_secs(90));
    assert_eq!(c.limits.max_websocket_tunnels_per_worker, 0);
    let bad = format!(
        "{MINIMAL}websocket = \"yes\"\n[limits]\nwebsocket_idle_timeout = \"0s\"\nmax_websocket_tunnels_per_worker = 2000000\n"
    );
    let errs = errors(&bad);
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(errs[0].starts_with("routes[0].websocket: "), "{errs:?}");
    assert_eq!(
        errs[1..],
        [
            "limits.websocket_idle_timeout: duration must be greater than zero",
            "limits.max_websocket_tunnels_per_worker: must be between 0 and 1000000",
        ]
    );
}

#[test]
fn secrets_never_in_debug_or_errors() {
    let text =
        format!("{MINIMAL}[routes.challenge]\nsecret = \"literal-hunter2-secret\"\nttl = \"x\"\n");
    let all = errors(&text).join("\n");
    assert!(!all.contains("hunter2"));
    let c = ok(&format!(
        "{MINIMAL}[routes.challenge]\nsecret = \"literal-hunter2-secret\"\n"
    ));
    assert!(!format!("{c:?}").contains("hunter2"));
}

#[test]
fn load_file_reads_and_reports() {
    let dir = std::env::temp_dir().join(format!("torii-config-test-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let file = dir.join("t.toml");
    if std::fs::write(&file, MINIMAL).is_err() {
        return;
    }
    let c = load_file_with_env(&file, &env());
    assert_eq!(c.map(|c| c.source), Ok(Some(file.clone())));
    let missing = load_file(&dir.join("missing.toml"));
    assert!(matches!(missing, Err(e) if e.0[0].message.starts_with("cannot read")));
    let _ = std::fs::remove_dir_all(&dir);
}
#[test]
fn type_errors_do_not_quote_strings_or_name_rust_types() {
    let text = format!("{MINIMAL}[routes.challenge]\nto_backend = \"literal-hunter2\"\n");
    let errs = errors(&text);
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert_eq!(errs[1], "routes[0].challenge.secret: required for HS512");
    assert!(
        errs.iter()
            .all(|e| !e.contains("hunter2") && !e.contains("Raw")),
        "{errs:?}"
    );
    assert!(
        errs[0]
            .starts_with("routes[0].challenge.to_backend: invalid type: string, expected a table"),
        "{errs:?}"
    );
}

#[test]
fn access_log_section() {
    let c = ok(&format!(
        "{MINIMAL}\n[access_log]\npath = \"logs/access.log\"\n"
    ));
    assert_eq!(
        c.access_log,
        Some(super::AccessLogTarget::File(
            std::path::Path::new("/etc/torii").join("logs/access.log")
        ))
    );
    let c = ok(&format!(
        "{MINIMAL}\n[access_log]\npath = \"stdout\"\nformat = \"json\"\n"
    ));
    assert_eq!(c.access_log, Some(super::AccessLogTarget::Stdout));
    assert_eq!(ok(MINIMAL).access_log, None);
    let errs = errors(&format!(
        "{MINIMAL}\n[access_log]\nformat = \"clf\"\nfile = \"x\"\n"
    ));
    // The unknown key and what validation finds in the rest of the section, at once.
    assert_eq!(
        errs,
        [
            "access_log.file: unknown key",
            "access_log.format: must be \"json\"",
            "access_log.path: required: a file path or \"stdout\"",
        ]
    );
    let errs = errors(&format!("{MINIMAL}\n[access_log]\nformat = \"clf\"\n"));
    assert_eq!(
        errs,
        [
            "access_log.format: must be \"json\"",
            "access_log.path: required: a file path or \"stdout\""
        ]
    );
}

#[test]
fn connection_steering_is_hash_unless_cpu_is_asked() {
    assert_eq!(
        ok(MINIMAL).gateway.connection_steering,
        ConnectionSteering::Hash
    );
    let with = |v: &str| {
        MINIMAL.replace(
            "[gateway]\n",
            &format!("[gateway]\nconnection_steering = {v}\n"),
        )
    };
    assert_eq!(
        ok(&with("\"cpu\"")).gateway.connection_steering,
        ConnectionSteering::Cpu
    );
    assert_eq!(
        ok(&with("\"hash\"")).gateway.connection_steering,
        ConnectionSteering::Hash
    );
    assert_eq!(
        errors(&with("\"numa\"")),
        ["gateway.connection_steering: expected \"hash\" or \"cpu\", got \"numa\""]
    );
    // More workers than CPUs the process may use: the extra workers would never be chosen.
    let cores = crate::cpus::allowed_cpus().len();
    let too_many = with("\"cpu\"").replace(
        "[gateway]\n",
        &format!("[gateway]\nworkers = {}\n", cores + 1),
    );
    let errs = errors(&too_many);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0]
            .starts_with("gateway.connection_steering: \"cpu\" needs at most one worker per CPU the process may use"),
        "{errs:?}"
    );
    let fits = with("\"cpu\"").replace("[gateway]\n", &format!("[gateway]\nworkers = {cores}\n"));
    // Without pinning no worker is on a CPU to steer to.
    let unpinned = with("\"cpu\"").replace("[gateway]\n", "[gateway]\npin_workers = false\n");
    assert_eq!(
        errors(&unpinned),
        ["gateway.connection_steering: \"cpu\" hands a connection to the worker pinned to the CPU that received it, and gateway.pin_workers = false pins none"]
    );
    assert!(ok(MINIMAL).gateway.pin_workers);
    assert!(
        !ok(&MINIMAL.replace("[gateway]\n", "[gateway]\npin_workers = false\n"))
            .gateway
            .pin_workers
    );
    assert_eq!(
        ok(&fits).gateway.connection_steering,
        ConnectionSteering::Cpu
    );
}

#[test]
fn underscores_in_headers_forms() {
    let u = |v: &str| {
        load(&MINIMAL.replace(
            "[gateway]",
            &format!("[gateway]\nunderscores_in_headers = {v}"),
        ))
        .map(|c| c.gateway.underscores_in_headers)
    };
    let any: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    assert_eq!(u("false"), Ok(UnderscoreHeaders::Drop));
    assert_eq!(u("true"), Ok(UnderscoreHeaders::Pass));
    assert!(!UnderscoreHeaders::Drop.allows(any));
    assert!(UnderscoreHeaders::Pass.allows(any));
    assert_eq!(
        load(MINIMAL).map(|c| c.gateway.underscores_in_headers),
        Ok(UnderscoreHeaders::Drop)
    );
    let listed = load(&MINIMAL.replace(
        "[gateway]",
        "[gateway]\nunderscores_in_headers = [\"127.0.0.1:8080\"]",
    ))
    .unwrap();
    let listed = listed.gateway.underscores_in_headers;
    assert!(listed.allows(any));
    assert!(!listed.allows("127.0.0.1:9".parse().unwrap()));
    let text = MINIMAL.replace(
        "[gateway]",
        "[gateway]\nunderscores_in_headers = [\"127.0.0.1:1\", \"nope\"]",
    );
    assert_eq!(
        errors(&text),
        [
            "gateway.underscores_in_headers[0]: \"127.0.0.1:1\" is not a gateway.http or gateway.https listener",
            "gateway.underscores_in_headers[1]: \"nope\" is not a listener address (ip:port)",
        ]
    );
    let text = MINIMAL.replace("[gateway]", "[gateway]\nunderscores_in_headers = \"yes\"");
    assert_eq!(
        errors(&text),
        ["gateway.underscores_in_headers: \"yes\": expected true, false, or a list of listener addresses"]
    );
}
