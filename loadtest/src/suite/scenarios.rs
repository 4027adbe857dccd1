//! The suite's scenarios: what each one loads (URL, Host, headers, TLS trust; HTTP requests or
//! a WebSocket echo), the checks every response must pass so that a fast but wrong gateway does
//! not look good, and whose CPU is charged to it; and [`load`], which runs one and reads the
//! proxy's and backend's CPU time (`/proc/PID/stat`) before and after.
//!
//! Owns the scenario definitions only; the processes are [`super::lab`], the load is
//! [`crate::generator`].

use std::time::Duration;

use super::config::{host_of, CLIENT_ID, METERED_CLIENT_ID};
use super::lab::Lab;
use super::procs::{children_of, total_cpu_s};
use super::results::ProxyInfo;
use crate::generator::{RunOptions, RunResult};
use crate::response::Checks;
use crate::target::RequestSpec;
use crate::tls::TlsOptions;

/// Path every scenario requests; the mirror echoes it, which the checks look for.
const PATH: &str = "/suite?q=1";
/// What the mirror's description of the request contains for [`PATH`].
const ECHOED_PATH: &[u8] = b"\"path\":\"/suite\"";
/// Generator threads of every scenario.
pub const GENERATOR_THREADS: usize = 1;

/// One scenario to load.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Name in the table (`torii-plain`, …).
    pub name: String,
    /// What it measures.
    pub about: String,
    /// Target URL.
    pub url: String,
    /// Host header (and TLS server name).
    pub host: Option<String>,
    /// Extra request headers (credentials).
    pub headers: Vec<String>,
    /// Per-response checks.
    pub checks: Checks,
    /// Trust for https scenarios.
    pub tls: TlsOptions,
    /// The proxy's process (None for the direct run).
    pub proxy: Option<u32>,
    /// Which proxy that is and how many workers it runs.
    pub proxy_info: Option<ProxyInfo>,
    /// Also count children of the proxy (nginx workers).
    pub proxy_children: bool,
    /// The backend (mirror) process.
    pub backend: u32,
    /// A WebSocket echo load ([`crate::websocket`]) instead of HTTP requests: "requests" are
    /// echoed messages.
    pub websocket: bool,
}

/// Path of the WebSocket scenarios (nginx proxies upgrades on `/ws` only).
const WS_PATH: &str = "/ws";
/// Bytes of each WebSocket message.
pub const WS_MESSAGE_BYTES: usize = 32;
/// Tunnels of a WebSocket scenario per connection of the HTTP ones: many tunnels, each mostly
/// idle between its small messages.
pub const WS_TUNNELS_PER_CONNECTION: usize = 4;

/// Status 200, `contains` in the body (the mirror's description of the request) and none of
/// `lacks`.
fn checks(contains: &[u8], lacks: &[&[u8]]) -> Checks {
    Checks {
        status: Some(200),
        headers: Vec::new(),
        body_contains: Some(contains.to_vec()),
        body_lacks: lacks.iter().map(|l| l.to_vec()).collect(),
    }
}

/// The scenarios that can run on `lab`, in table order; `token` is the bearer scenario's
/// access token.
pub fn scenarios(lab: &Lab, token: &str) -> Vec<Scenario> {
    let http = |port: u16| format!("http://127.0.0.1:{port}{PATH}");
    let https = |port: u16| format!("https://127.0.0.1:{port}{PATH}");
    let gw = lab.gateway;
    let torii = ProxyInfo {
        name: "torii".into(),
        workers: lab.proxy_workers,
    };
    let base = Scenario {
        name: String::new(),
        about: String::new(),
        url: http(gw.http),
        host: Some(host_of("plain")),
        headers: Vec::new(),
        checks: checks(ECHOED_PATH, &[]),
        tls: TlsOptions::default(),
        proxy: Some(gw.pid),
        proxy_info: Some(torii),
        proxy_children: false,
        backend: lab.mirror.pid,
        websocket: false,
    };
    let named = |name: &str, about: &str| Scenario {
        name: name.into(),
        about: about.into(),
        ..base.clone()
    };
    let mut list = vec![
        Scenario {
            url: http(lab.mirror.port),
            host: None,
            proxy: None,
            proxy_info: None,
            ..named("mirror", "generator → mirror, no proxy (the baseline)")
        },
        named(
            "torii-plain",
            "generator → torii (route without security) → mirror",
        ),
    ];
    if let Some((v1, v2)) = lab.challenge {
        list.push(Scenario {
            host: Some(host_of("v1")),
            backend: v1.pid,
            ..named(
                "torii-v1",
                "torii with the V1 challenge (state echoed back)",
            )
        });
        list.push(Scenario {
            host: Some(host_of("v2")),
            backend: v2.pid,
            ..named(
                "torii-v2",
                "torii with the V2 challenge (signed tokens both ways)",
            )
        });
        list.push(Scenario {
            host: Some(host_of("v2-info")),
            backend: v2.pid,
            // The mirror verified the claim (else 401) and lists the header it received.
            checks: checks(b"\"otoroshi-claim\":\"ey", &[]),
            ..named(
                "torii-v2-info",
                "torii with V2 and an Otoroshi-Claim info token",
            )
        });
    }
    list.push(Scenario {
        host: Some(host_of("apikey")),
        headers: vec![
            format!("Otoroshi-Client-Id: {CLIENT_ID}"),
            format!("Otoroshi-Client-Secret: {}", lab.apikey_secret),
        ],
        // The key is checked (probed: 401 without it) and wiped before the mirror.
        checks: checks(
            ECHOED_PATH,
            &[b"otoroshi-client-secret", b"otoroshi-client-id"],
        ),
        ..named(
            "torii-apikey",
            "torii checking an API key (Otoroshi-Client-Id/Secret headers)",
        )
    });
    if lab.redis.is_some() {
        list.push(Scenario {
            host: Some(host_of("apikey-quota")),
            headers: vec![
                format!("Otoroshi-Client-Id: {METERED_CLIENT_ID}"),
                format!("Otoroshi-Client-Secret: {}", lab.apikey_secret),
            ],
            checks: checks(
                ECHOED_PATH,
                &[b"otoroshi-client-secret", b"otoroshi-client-id"],
            ),
            ..named(
                "torii-apikey-quota",
                "torii-apikey with a key metered by all three quotas (never reached), counts pushed to Redis every 200 ms",
            )
        });
    }
    list.push(Scenario {
        host: Some(host_of("bearer")),
        headers: vec![format!("Authorization: Bearer {token}")],
        checks: checks(ECHOED_PATH, &[b"\"authorization\""]),
        ..named(
            "torii-bearer",
            "torii verifying an access token from its own token service (ES256)",
        )
    });
    if let Some(jwt) = &lab.jwt_token {
        list.push(Scenario {
            host: Some(host_of("jwt")),
            headers: vec![format!("Authorization: Bearer {jwt}")],
            ..named(
                "torii-jwt",
                "torii verifying an external issuer's RS256 token ([routes.jwt], passed on)",
            )
        });
    }
    let trust = TlsOptions {
        ca: Some(lab.pki.ca.clone()),
        insecure: false,
    };
    list.push(Scenario {
        url: https(gw.https),
        tls: trust.clone(),
        checks: checks(b"\"x-forwarded-proto\":\"https\"", &[]),
        ..named(
            "torii-tls",
            "generator → torii https listener (TLS terminated) → plain mirror",
        )
    });
    let ws = |port: u16| format!("ws://127.0.0.1:{port}{WS_PATH}");
    // Echoed messages are checked byte for byte by the WebSocket load itself.
    let echoed = Checks {
        status: Some(101),
        ..Checks::default()
    };
    list.push(Scenario {
        url: ws(lab.mirror.port),
        host: None,
        proxy: None,
        proxy_info: None,
        websocket: true,
        checks: echoed.clone(),
        ..named(
            "mirror-ws",
            "WebSocket echo, generator → mirror, no proxy: messages/s and round trips",
        )
    });
    list.push(Scenario {
        url: ws(gw.http),
        host: Some(host_of("ws")),
        websocket: true,
        checks: echoed.clone(),
        ..named(
            "torii-ws",
            "WebSocket echo through torii's tunnels: messages/s and round trips",
        )
    });
    if let Some(n) = lab.nginx {
        list.push(Scenario {
            url: ws(n.http),
            host: Some("nginx.test".into()),
            proxy: Some(n.pid),
            proxy_info: Some(ProxyInfo {
                name: "nginx".into(),
                workers: n.workers,
            }),
            proxy_children: true,
            websocket: true,
            checks: echoed,
            ..named(
                "nginx-ws",
                "WebSocket echo through nginx (proxy_pass with Upgrade): messages/s and round trips",
            )
        });
    }
    if let Some(n) = lab.nginx {
        let nginx = Scenario {
            url: http(n.http),
            host: None,
            proxy: Some(n.pid),
            proxy_info: Some(ProxyInfo {
                name: "nginx".into(),
                workers: n.workers,
            }),
            proxy_children: true,
            ..named(
                "nginx",
                "generator → nginx (plain proxy, keep-alive upstream) → mirror",
            )
        };
        if let Some(port) = n.https {
            list.push(nginx.clone());
            list.push(Scenario {
                name: "nginx-tls".into(),
                about: "generator → nginx terminating TLS → plain mirror".into(),
                url: https(port),
                host: Some("nginx.test".into()),
                tls: trust,
                checks: checks(b"\"x-forwarded-proto\":\"https\"", &[]),
                ..nginx
            });
        } else {
            list.push(nginx);
        }
    }
    list
}

/// Loads one scenario; returns the run and the CPU seconds the proxy and the backend spent.
pub fn load(
    sc: &Scenario,
    duration: Duration,
    connections: usize,
) -> Result<(RunResult, Option<f64>, f64), String> {
    let pids = sc
        .proxy
        .map(|p| {
            let mut pids = vec![p];
            if sc.proxy_children {
                pids.extend(children_of(p));
            }
            pids
        })
        .unwrap_or_default();
    let proxy_before = total_cpu_s(&pids);
    let backend_before = total_cpu_s(&[sc.backend]);
    let result = if sc.websocket {
        load_websocket(sc, duration, connections * WS_TUNNELS_PER_CONNECTION)?
    } else {
        load_http(sc, duration, connections)?
    };
    let proxy_cpu = sc
        .proxy
        .map(|_| (total_cpu_s(&pids) - proxy_before).max(0.0));
    let backend_cpu = (total_cpu_s(&[sc.backend]) - backend_before).max(0.0);
    Ok((result, proxy_cpu, backend_cpu))
}

/// The HTTP generator on `sc`.
fn load_http(sc: &Scenario, duration: Duration, connections: usize) -> Result<RunResult, String> {
    let mut headers = vec!["Accept: application/json".to_string()];
    headers.extend(sc.headers.iter().cloned());
    let options = RunOptions {
        url: sc.url.clone(),
        tls: sc.tls.clone(),
        request: RequestSpec {
            method: "GET".into(),
            host: sc.host.clone(),
            headers,
            body: Vec::new(),
        },
        connections,
        threads: GENERATOR_THREADS,
        duration,
        max_requests: None,
        rate: None,
        timeout: Duration::from_secs(5),
        checks: sc.checks.clone(),
        allow_remote: false,
        progress: false,
    };
    crate::generator::run(options)
}

/// The WebSocket echo load on `sc`, with `tunnels` tunnels.
fn load_websocket(sc: &Scenario, duration: Duration, tunnels: usize) -> Result<RunResult, String> {
    let rest = sc
        .url
        .strip_prefix("ws://")
        .ok_or_else(|| format!("{}: not a ws:// URL", sc.url))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let addr: std::net::SocketAddr = authority.parse().map_err(|e| format!("{}: {e}", sc.url))?;
    let timeout = Duration::from_secs(5);
    let opts = crate::websocket::WsOptions {
        addr,
        host: sc.host.clone().unwrap_or_else(|| authority.to_string()),
        path: if path.is_empty() { "/" } else { path }.to_string(),
        tunnels,
        message_bytes: WS_MESSAGE_BYTES,
        duration,
        timeout,
    };
    let report = RunOptions {
        url: sc.url.clone(),
        tls: TlsOptions::default(),
        request: RequestSpec {
            method: "GET".into(),
            host: sc.host.clone(),
            headers: Vec::new(),
            body: Vec::new(),
        },
        connections: tunnels,
        threads: GENERATOR_THREADS,
        duration,
        max_requests: None,
        rate: None,
        timeout,
        checks: sc.checks.clone(),
        allow_remote: false,
        progress: false,
    };
    crate::websocket::run(&opts, report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::lab::{Gateway, Nginx, Proc};
    use crate::suite::setup::Pki;
    use crate::suite::svg::{style, Style};
    use std::collections::{BTreeSet, HashSet};

    fn lab(challenge: bool, nginx_tls: bool) -> Lab {
        let p = |port, pid| Proc { port, pid };
        Lab {
            guards: Vec::new(),
            mirror: p(9001, 1),
            challenge: challenge.then(|| (p(9002, 2), p(9003, 3))),
            gateway: Gateway {
                http: 8080,
                https: 8443,
                pid: 10,
            },
            proxy_workers: 3,
            nginx: Some(Nginx {
                http: 7000,
                https: nginx_tls.then_some(7443),
                pid: 20,
                workers: 3,
            }),
            nginx_version: Some("nginx/1.22.1".into()),
            pki: Pki {
                ca: "/tmp/ca.pem".into(),
                cert: "/tmp/s.pem".into(),
                key: "/tmp/s.key".into(),
            },
            apikey_secret: "s3cret".into(),
            redis: Some(p(6390, 30)),
            jwt_token: Some("jw.t.sig".into()),
            skipped: Vec::new(),
        }
    }

    #[test]
    fn every_scenario_checks_its_responses_and_targets_the_right_process() {
        let list = scenarios(&lab(true, true), "tok.en.x");
        let names: Vec<&str> = list.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "mirror",
                "torii-plain",
                "torii-v1",
                "torii-v2",
                "torii-v2-info",
                "torii-apikey",
                "torii-apikey-quota",
                "torii-bearer",
                "torii-jwt",
                "torii-tls",
                "mirror-ws",
                "torii-ws",
                "nginx-ws",
                "nginx",
                "nginx-tls"
            ]
        );
        for sc in &list {
            if sc.websocket {
                assert_eq!(sc.checks.status, Some(101), "{}", sc.name);
                assert!(
                    sc.url.starts_with("ws://") && sc.url.ends_with("/ws"),
                    "{}",
                    sc.url
                );
                continue;
            }
            assert_eq!(sc.checks.status, Some(200), "{}", sc.name);
            assert!(sc.checks.body_contains.is_some(), "{}", sc.name);
            let tls = sc.url.starts_with("https://");
            assert_eq!(tls, sc.tls.ca.is_some(), "{}", sc.name);
            assert!(!sc.tls.insecure, "{}", sc.name);
        }
        let by = |n: &str| list.iter().find(|s| s.name == n).unwrap();
        assert_eq!(by("mirror").proxy, None);
        assert_eq!(by("torii-v2-info").backend, 3);
        let apikey = by("torii-apikey");
        assert!(apikey
            .headers
            .contains(&"Otoroshi-Client-Secret: s3cret".to_string()));
        assert_eq!(apikey.checks.body_lacks.len(), 2);
        assert_eq!(
            by("torii-bearer").headers,
            ["Authorization: Bearer tok.en.x"]
        );
        let metered = by("torii-apikey-quota");
        assert_eq!(metered.host.as_deref(), Some("apikey-quota.test"));
        assert!(metered
            .headers
            .contains(&format!("Otoroshi-Client-Id: {METERED_CLIENT_ID}")));
        assert_eq!(metered.checks.body_lacks.len(), 2);
        assert_eq!(by("torii-jwt").headers, ["Authorization: Bearer jw.t.sig"]);
        assert_eq!(by("torii-tls").url, "https://127.0.0.1:8443/suite?q=1");
        let ng = by("nginx-tls");
        assert_eq!((ng.proxy, ng.proxy_children), (Some(20), true));
        // Every proxied scenario names its proxy, with the same worker count for both.
        let workers = |n: &str| {
            by(n)
                .proxy_info
                .as_ref()
                .map(|p| (p.name.as_str(), p.workers))
        };
        assert_eq!(workers("mirror"), None);
        assert_eq!(workers("torii-bearer"), Some(("torii", 3)));
        assert_eq!(workers("torii-tls"), Some(("torii", 3)));
        assert_eq!(workers("nginx"), Some(("nginx", 3)));
        assert_eq!(workers("nginx-tls"), Some(("nginx", 3)));
        assert_eq!(ng.host.as_deref(), Some("nginx.test"));
        assert_eq!(by("torii-ws").host.as_deref(), Some("ws.test"));
        assert_eq!(by("torii-ws").url, "ws://127.0.0.1:8080/ws");
        assert_eq!(workers("nginx-ws"), Some(("nginx", 3)));
        assert_eq!(by("mirror-ws").proxy, None);
    }

    #[test]
    fn every_scenario_of_the_suite_has_a_colour_and_a_look_of_its_own() {
        let list = scenarios(&lab(true, true), "t");
        assert_eq!(list.len(), 15);
        // The charts give the scenario at index i the look style(i); the bar chart shows only
        // its colour, the latency charts its colour and dash pattern.
        let colours: HashSet<&str> = (0..list.len()).map(|i| style(i).colour).collect();
        assert_eq!(colours.len(), list.len(), "a colour is used twice");
        let looks: HashSet<Style> = (0..list.len()).map(style).collect();
        assert_eq!(looks.len(), list.len(), "a look is used twice");
    }

    /// The scenarios named in the first column of the table that docs/load-testing.md heads
    /// `| scenario | path | …`.
    fn documented_scenarios(doc: &str) -> BTreeSet<String> {
        doc.lines()
            .map(str::trim_start)
            .skip_while(|l| !l.starts_with("| scenario | path |"))
            .take_while(|l| l.starts_with('|'))
            .filter_map(|l| l.strip_prefix("| "))
            .filter(|row| row.starts_with('`'))
            .filter_map(|row| row.split(" | ").next())
            .flat_map(|cell| {
                cell.split('`')
                    .skip(1)
                    .step_by(2)
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn the_load_testing_guide_documents_every_scenario_and_no_other() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/load-testing.md");
        let doc = std::fs::read_to_string(path).unwrap();
        let list = scenarios(&lab(true, true), "t");
        let names: BTreeSet<String> = list.iter().map(|s| s.name.clone()).collect();
        assert_eq!(documented_scenarios(&doc), names);
        // A count written in the prose ("13 scenarios") drifts: any that is there must be right.
        let words: Vec<&str> = doc.split_whitespace().collect();
        for pair in words.windows(2) {
            if pair[1].starts_with("scenarios") {
                if let Ok(n) = pair[0].parse::<usize>() {
                    assert_eq!(n, list.len(), "docs/load-testing.md says {n} scenarios");
                }
            }
        }
        assert_eq!(
            documented_scenarios(
                "| `z` | q |\n   | scenario | path |\n|---|---|\n   | `a` / `b` | x `c` |\n| `d` | y |\n| e | `f` |\n\n| `g` | r |\n"
            ),
            ["a", "b", "d"].map(String::from).into()
        );
    }

    #[test]
    fn missing_features_drop_their_scenarios() {
        let mut bare = lab(false, false);
        bare.redis = None;
        bare.jwt_token = None;
        let list = scenarios(&bare, "t");
        let names: Vec<&str> = list.iter().map(|s| s.name.as_str()).collect();
        assert!(!names.iter().any(|n| n.starts_with("torii-v")));
        assert!(!names.contains(&"torii-apikey-quota") && !names.contains(&"torii-jwt"));
        assert!(names.contains(&"nginx") && !names.contains(&"nginx-tls"));
    }
}
