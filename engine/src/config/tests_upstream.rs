//! Tests of a route's upstream keys: `targets` as URLs and tables (weight, backup, protocol,
//! `h2c://`), `load_balancing` and `hash`, `resolve_interval`, `timeouts`,
//! `[routes.health_check]`, `[routes.outlier_detection]` and `[routes.retry]`: every key
//! accepted, every refusal with its message and key path, the defaults, and the warnings for
//! settings that cannot do anything.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use super::tests::{env, errors, located_errors, ok};
use super::*;

/// A route on `a.test` with `targets = [{targets}]`, then `rest` (route keys, then sections).
fn route(targets: &str, rest: &str) -> String {
    format!(
        "[gateway]\nhttp = [\"127.0.0.1:8080\"]\n[[routes]]\nid = \"r\"\ndomains = [\"a.test\"]\ntargets = [{targets}]\n{rest}\n"
    )
}

/// A route with one IP target and `rest`.
fn plain(rest: &str) -> String {
    route("\"http://127.0.0.1:9001\"", rest)
}

/// The upstream settings of the first route of `text`.
fn spec(text: &str) -> UpstreamSpec {
    ok(text).routes[0].upstream.clone()
}

/// The warnings of `text` as printed, without their positions.
fn warned(text: &str) -> Vec<String> {
    warnings(&ok(text), 0)
        .iter()
        .map(|w| {
            let s = w.to_string();
            match s.rfind(" (line ") {
                Some(at) => s[..at].to_owned(),
                None => s,
            }
        })
        .collect()
}

const MS: fn(u64) -> Duration = Duration::from_millis;
const S: fn(u64) -> Duration = Duration::from_secs;

/// The contract of the issue, as operators write it.
const CONTRACT: &str = r#"
[gateway]
http = ["127.0.0.1:8080"]

[[routes]]
id = "app"
domains = ["app.test"]
targets = [
  { url = "http://app-a.internal:9000", weight = 3 },
  { url = "h2c://grpc.internal:50051", protocol = "h2c" },    # protocol: "http1" | "h2" | "h2c" | "auto"
  { url = "http://standby.internal:9000", backup = true },
]
load_balancing = "least_request"     # "round_robin" | "least_request" | "random" | "hash"
hash = { header = "X-User" }         # with "hash": { header | cookie | query | client_ip }
resolve_interval = "30s"             # re-resolve names (TTL honoured within bounds)
timeouts = { connect = "2s", response_header = "15s", idle = "60s" }

[routes.health_check]
path = "/health"
interval = "5s"
timeout = "1s"
healthy_threshold = 2
unhealthy_threshold = 3
statuses = [200]                     # or ranges, documented

[routes.outlier_detection]
consecutive_5xx = 5
consecutive_gateway_failure = 5
base_ejection_time = "30s"
max_ejection_percent = 50

[routes.retry]
attempts = 2
on = ["connect-failure", "reset", "502", "503", "504"]
per_try_timeout = "2s"
backoff = { base = "25ms", max = "250ms" }
budget_percent = 20
"#;

fn contract_env() -> MapEnv {
    env()
        .with_addresses(
            "app-a.internal",
            [IpAddr::from([10, 1, 0, 1]), IpAddr::from([10, 1, 0, 2])],
        )
        .with_host("grpc.internal", IpAddr::from([10, 2, 0, 1]))
        .with_host("standby.internal", IpAddr::from([10, 3, 0, 1]))
}

fn load_contract(text: &str) -> Result<Config, ConfigErrors> {
    load_str_with_env(text, Path::new("/etc/torii"), &contract_env())
}

#[test]
fn the_contract_loads_as_written_with_one_warning_for_hash_beside_least_request() {
    // As written, `hash` sits beside "least_request": it loads (operators rely on the example
    // as written), and `hash` is reported as doing nothing.
    let c = load_contract(CONTRACT).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.routes[0].upstream.load_balancing,
        LoadBalancing::LeastRequest
    );
    let said: Vec<String> = crate::config::warnings(&c, 0)
        .iter()
        .map(|w| w.to_string())
        .collect();
    assert!(
        said.iter().any(|w| w.starts_with("routes[0].hash: does nothing here: it applies to load_balancing = \"hash\" only, and this route's policy is \"least_request\"")),
        "{said:?}"
    );
}

#[test]
fn every_key_of_the_contract_is_read() {
    let text = CONTRACT.replace("\"least_request\"", "\"hash\"");
    let c = load_contract(&text).unwrap_or_else(|e| panic!("{e}"));
    let r = &c.routes[0];
    let t = &r.targets;
    assert_eq!(t.len(), 3);
    assert_eq!(
        (t[0].weight, t[0].backup, t[0].protocol),
        (3, false, TargetProtocol::Http1)
    );
    assert_eq!(
        (t[1].scheme, t[1].protocol, t[1].port, t[1].url.as_str()),
        (
            Scheme::Http,
            TargetProtocol::H2c,
            50051,
            "h2c://grpc.internal:50051"
        )
    );
    assert_eq!((t[2].weight, t[2].backup), (1, true));
    let u = &r.upstream;
    assert_eq!(
        u.load_balancing,
        LoadBalancing::Hash(HashOn::Header("x-user".into()))
    );
    assert_eq!(u.resolve_interval, S(30));
    assert_eq!(
        u.timeouts,
        UpstreamTimeouts {
            connect: S(2),
            response_header: S(15),
            idle: S(60)
        }
    );
    assert_eq!(
        u.health_check,
        Some(HealthCheckSpec {
            path: "/health".into(),
            interval: S(5),
            timeout: S(1),
            healthy_threshold: 2,
            unhealthy_threshold: 3,
            statuses: vec![StatusRange { from: 200, to: 200 }],
        })
    );
    assert_eq!(
        u.outlier_detection,
        Some(OutlierSpec {
            consecutive_5xx: 5,
            consecutive_gateway_failure: 5,
            base_ejection_time: S(30),
            max_ejection_time: upstream_defaults::MAX_EJECTION_TIME,
            max_ejection_percent: 50,
        })
    );
    assert_eq!(
        u.retry,
        RetrySpec {
            attempts: 2,
            on: RetryCondition::ALL.to_vec(),
            per_try_timeout: Some(S(2)),
            backoff_base: MS(25),
            backoff_max: MS(250),
            budget_percent: 20,
        }
    );
    // An h2c target gets HTTP/2: no warning.
    let said = warnings(&c, 0);
    assert!(said.is_empty(), "{said:?}");
    // "auto" is negotiated by ALPN (`upstream::h2_client`): no warning either.
    let auto = text_with_auto_target();
    let c = load_contract(&auto).unwrap_or_else(|e| panic!("{e}"));
    let said: Vec<_> = warnings(&c, 0)
        .into_iter()
        .filter(|w| w.path.contains("targets"))
        .collect();
    assert!(said.is_empty(), "{said:?}");
}

/// The contract with its h2c target made an `https://` target with `protocol = "auto"`.
fn text_with_auto_target() -> String {
    CONTRACT.replace(
        "{ url = \"h2c://grpc.internal:50051\", protocol = \"h2c\" }",
        "{ url = \"https://grpc.internal:50051\", protocol = \"auto\" }",
    )
}

#[test]
fn a_name_keeps_every_address_it_resolves_to() {
    let text = CONTRACT.replace("\"least_request\"", "\"hash\"");
    let c = load_contract(&text).unwrap_or_else(|e| panic!("{e}"));
    let a = &c.routes[0].targets[0];
    assert!(a.named);
    assert_eq!(
        a.addrs,
        [
            SocketAddr::from(([10, 1, 0, 1], 9000)),
            SocketAddr::from(([10, 1, 0, 2], 9000)),
        ]
    );
    assert_eq!(a.addr, a.addrs[0]);
    // The same name as a plain string keeps them too; an IP literal is one address.
    let env = contract_env();
    let text = route("\"http://app-a.internal:9000\", \"http://10.9.9.9\"", "");
    let c = load_str_with_env(&text, Path::new("/"), &env).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.routes[0].targets[0].addrs.len(), 2);
    assert_eq!(
        (
            c.routes[0].targets[1].named,
            c.routes[0].targets[1].addrs.len()
        ),
        (false, 1)
    );
}

#[test]
fn strings_and_tables_mix_and_tables_default_like_strings() {
    let c = ok(&route(
        "\"http://127.0.0.1:1\", { url = \"http://127.0.0.1:2\" }, { url = \"https://127.0.0.1:3\", weight = 1000, protocol = \"auto\" }, \"h2c://127.0.0.1\"",
        "",
    ));
    let t = &c.routes[0].targets;
    let seen: Vec<(u16, u32, bool, TargetProtocol)> = t
        .iter()
        .map(|t| (t.port, t.weight, t.backup, t.protocol))
        .collect();
    assert_eq!(
        seen,
        [
            (1, 1, false, TargetProtocol::Http1),
            (2, 1, false, TargetProtocol::Http1),
            (3, 1000, false, TargetProtocol::Auto),
            (80, 1, false, TargetProtocol::H2c),
        ]
    );
    assert_eq!(t[3].url, "h2c://127.0.0.1");
    assert_eq!(t[3].host_header, "127.0.0.1");
    assert_eq!(t[1], {
        let mut first = t[0].clone();
        first.port = 2;
        first.addr = SocketAddr::from(([127, 0, 0, 1], 2));
        first.addrs = vec![first.addr];
        first.host_header = "127.0.0.1:2".into();
        first.url = "http://127.0.0.1:2".into();
        first
    });
}

#[test]
fn protocols_go_with_their_schemes() {
    let c = ok(&route(
        "{ url = \"http://127.0.0.1:1\", protocol = \"h2c\" }, { url = \"https://127.0.0.1:2\", protocol = \"h2\" }, { url = \"h2c://127.0.0.1:3\", protocol = \"h2c\" }, { url = \"https://127.0.0.1:4\", protocol = \"http1\" }",
        "",
    ));
    let t = &c.routes[0].targets;
    assert_eq!(
        t.iter().map(|t| (t.scheme, t.protocol)).collect::<Vec<_>>(),
        [
            (Scheme::Http, TargetProtocol::H2c),
            (Scheme::Https, TargetProtocol::H2),
            (Scheme::Http, TargetProtocol::H2c),
            (Scheme::Https, TargetProtocol::Http1),
        ]
    );
    // HTTP/2 over plain TCP shows as h2c:// in logs, however it was written.
    assert_eq!(t[0].url, "h2c://127.0.0.1:1");
    let bad = route(
        "{ url = \"https://127.0.0.1\", protocol = \"h2c\" }, { url = \"http://127.0.0.1\", protocol = \"h2\" }, { url = \"http://127.0.0.1\", protocol = \"auto\" }, { url = \"h2c://127.0.0.1\", protocol = \"http1\" }, { url = \"http://127.0.0.1\", protocol = \"http2\" }, { url = \"h2c://127.0.0.1\", protocol = \"h2\" }",
        "",
    );
    assert_eq!(
        errors(&bad),
        [
            "routes[0].targets[0].protocol: \"h2c\" is HTTP/2 over plain TCP and this target is https://: write \"h2\" (or \"auto\") for HTTP/2 over TLS, or an http:// or h2c:// URL",
            "routes[0].targets[1].protocol: \"h2\" is HTTP/2 over TLS and needs an https:// target; HTTP/2 over plain TCP is \"h2c\"",
            "routes[0].targets[2].protocol: \"auto\" lets the TLS handshake (ALPN) choose and needs an https:// target; HTTP/2 over plain TCP is \"h2c\"",
            "routes[0].targets[3].protocol: \"http1\" on an h2c:// target, which speaks HTTP/2 with prior knowledge: write http:// for HTTP/1.1",
            "routes[0].targets[4].protocol: unknown protocol \"http2\" (expected \"http1\", \"h2\", \"h2c\" or \"auto\")",
            "routes[0].targets[5].protocol: \"h2\" is HTTP/2 over TLS and needs an https:// target; HTTP/2 over plain TCP is \"h2c\"",
        ]
    );
}

#[test]
fn target_table_refusals_are_placed_at_their_keys() {
    let text = route(
        "{ url = \"http://127.0.0.1\", weight = 0 }, { url = \"http://127.0.0.1\", weight = 1001 }, { weight = 2 }, { url = \"ftp://127.0.0.1\", weight = -1 }, { url = \"http://nowhere.invalid\" }",
        "",
    );
    assert_eq!(
        errors(&text),
        [
            "routes[0].targets[0].weight: must be between 1 and 1000",
            "routes[0].targets[1].weight: must be between 1 and 1000",
            "routes[0].targets[2].url: required: the target's URL, such as \"http://app.internal:9000\"",
            "routes[0].targets[3].url: target \"ftp://127.0.0.1\" must start with http://, https:// or h2c://",
            "routes[0].targets[3].weight: must be between 1 and 1000",
            "routes[0].targets[4].url: cannot resolve \"nowhere.invalid\": name not known",
        ]
    );
    // Placed at the key inside the inline table; a missing url at the table's `{`.
    let located = located_errors(&text);
    assert!(
        located[0].ends_with("(line 6, column 40)"),
        "{}",
        located[0]
    );
    assert!(
        located[2].ends_with("(missing from the table at line 6, column 99)"),
        "{}",
        located[2]
    );
}

#[test]
fn unknown_keys_and_wrong_types_in_a_target_table_name_the_key() {
    let text = route(
        "\"http://127.0.0.1:1\", { url = \"http://127.0.0.1:2\", wieght = 2 }, { url = \"http://127.0.0.1:3\", backup = \"yes\" }",
        "",
    );
    assert_eq!(
        located_errors(&text),
        [
            "routes[0].targets[1].wieght: unknown key (did you mean `weight`?) (line 6, column 64)",
            "routes[0].targets[2].backup: invalid type: string, expected a boolean (line 6, column 108)",
        ]
    );
    assert_eq!(
        errors(&route("5", "")),
        ["routes[0].targets[0]: invalid type: integer, expected a target URL string or a table such as { url = \"http://host:port\", weight = 2 }"]
    );
}

#[test]
fn at_least_one_target_is_not_a_backup() {
    assert_eq!(
        errors(&route(
            "{ url = \"http://127.0.0.1:1\", backup = true }, { url = \"http://127.0.0.1:2\", backup = true }",
            "",
        )),
        ["routes[0].targets: every target is a backup: at least one must not be (backup targets take traffic only when no other endpoint is available)"]
    );
    let c = ok(&route(
        "{ url = \"http://127.0.0.1:1\", backup = true }, { url = \"http://127.0.0.1:2\", backup = false }",
        "",
    ));
    assert_eq!(
        c.routes[0]
            .targets
            .iter()
            .map(|t| t.backup)
            .collect::<Vec<_>>(),
        [true, false]
    );
}

#[test]
fn a_route_that_says_nothing_gets_the_defaults_with_its_limits() {
    let u = spec(&plain(""));
    assert_eq!(u, UpstreamSpec::defaults(S(2), S(30)));
    assert_eq!(u.retry.on, [RetryCondition::ConnectFailure]);
    assert_eq!(u.retry.attempts, 2);
    let text = format!(
        "[limits]\nupstream_connect_timeout = \"3s\"\nupstream_timeout = \"40s\"\n{}",
        plain("timeouts = { idle = \"90s\" }")
    );
    assert_eq!(
        spec(&text).timeouts,
        UpstreamTimeouts {
            connect: S(3),
            response_header: S(40),
            idle: S(90)
        }
    );
}

#[test]
fn policies_and_what_hash_hashes() {
    for (word, policy) in [
        ("round_robin", LoadBalancing::RoundRobin),
        ("least_request", LoadBalancing::LeastRequest),
        ("random", LoadBalancing::Random),
    ] {
        let u = spec(&plain(&format!("load_balancing = \"{word}\"")));
        assert_eq!(u.load_balancing, policy);
        assert_eq!(u.load_balancing.as_str(), word);
    }
    for (hash, on) in [
        (
            "{ header = \"X-Tenant\" }",
            HashOn::Header("x-tenant".into()),
        ),
        ("{ cookie = \"Session\" }", HashOn::Cookie("Session".into())),
        ("{ query = \"user_id\" }", HashOn::Query("user_id".into())),
        ("{ client_ip = true }", HashOn::ClientIp),
        (
            "{ client_ip = false, query = \"u\" }",
            HashOn::Query("u".into()),
        ),
    ] {
        let u = spec(&plain(&format!("load_balancing = \"hash\"\nhash = {hash}")));
        assert_eq!(u.load_balancing, LoadBalancing::Hash(on), "{hash}");
    }
}

#[test]
fn hash_refusals() {
    let with = |hash: &str| errors(&plain(&format!("load_balancing = \"hash\"\nhash = {hash}")));
    let one = "routes[0].hash: set exactly one of header, cookie, query or client_ip = true";
    assert_eq!(with("{}"), [one]);
    assert_eq!(with("{ client_ip = false }"), [one]);
    assert_eq!(
        with("{ header = \"a\", cookie = \"b\", client_ip = true }"),
        [format!("{one} (3 are set)")]
    );
    assert_eq!(
        with("{ header = \"X User\" }"),
        ["routes[0].hash.header: \"x user\" is not a valid HTTP header name"]
    );
    assert_eq!(
        with("{ cookie = \"a;b\" }"),
        ["routes[0].hash.cookie: \"a;b\" is not a valid cookie name (an RFC 6265 token)"]
    );
    assert_eq!(
        with("{ query = \"a&b\" }"),
        ["routes[0].hash.query: \"a&b\" is not a query parameter name as sent: visible ASCII without spaces, '&', '=' or '#'"]
    );
    assert_eq!(
        errors(&plain("load_balancing = \"hash\"")),
        ["routes[0].load_balancing: \"hash\" needs a hash table saying what is hashed: hash = { header = \"…\" }, { cookie = \"…\" }, { query = \"…\" } or { client_ip = true }"]
    );
    // A hash table under another policy is a warning, not an error.
    assert_eq!(
        ok(&plain("hash = { client_ip = true }")).routes[0]
            .upstream
            .load_balancing,
        LoadBalancing::RoundRobin
    );
    // An unknown policy is the only error, whatever `hash` says.
    assert_eq!(
        errors(&plain("load_balancing = \"sticky\"\nhash = { client_ip = true }")),
        ["routes[0].load_balancing: unknown policy \"sticky\" (expected \"round_robin\", \"least_request\", \"random\" or \"hash\")"]
    );
}

#[test]
fn resolve_interval_and_timeouts() {
    assert_eq!(
        spec(&plain("resolve_interval = \"1s\"")).resolve_interval,
        S(1)
    );
    assert_eq!(
        errors(&plain(
            "resolve_interval = \"999ms\"\ntimeouts = { connect = \"0s\", response_header = \"0ms\", idle = 5 }"
        )),
        [
            "routes[0].resolve_interval: must be at least 1s",
            "routes[0].timeouts.connect: duration must be greater than zero",
            "routes[0].timeouts.response_header: duration must be greater than zero",
            "routes[0].timeouts.idle: a duration must be a string: a number and a unit (ms, s, m, h, d), or several from the largest unit to the smallest, such as \"30s\", \"1h30m\" or \"1.5s\"",
        ]
    );
}

#[test]
fn resolve_interval_on_ip_targets_only_is_a_warning() {
    assert_eq!(
        warned(&plain("resolve_interval = \"10s\"")),
        ["routes[0].resolve_interval: every target is an IP address, which is never resolved: resolve_interval does nothing"]
    );
    let named = route("\"http://localhost:9001\"", "resolve_interval = \"10s\"");
    assert!(warned(&named).is_empty());
    assert!(warned(&plain("")).is_empty());
}
