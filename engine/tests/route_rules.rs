//! Route rules (issue 30) applied to requests, end to end over HTTP/1.1 and HTTP/2 (h2c with
//! prior knowledge), with curl as the client (installed by `.ci/test`) and the in-process
//! mirror as the backend: the filters (`deny_ips`/`allow_ips` → 403, `methods`/`read_only` →
//! 405 with `Allow`, `header_checks` → 400, the route's `max_body_bytes` → 413), all answered
//! before authentication; `force_https` and `redirect`; the path rules and `preserve_host`;
//! the header rules; CORS preflights and the CORS lines of actual responses.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Command;

use common::*;

/// What curl got: status, headers (lowercase names, last value wins) and body.
#[derive(Debug)]
struct Got {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// The two protocols, as curl flags.
const PROTOCOLS: [&str; 2] = ["--http1.1", "--http2-prior-knowledge"];

/// Runs curl with `proto` on `http://{host}{path}` reaching `gw`, plus `args`.
fn curl(gw: SocketAddr, proto: &str, host: &str, path: &str, args: &[&str]) -> Got {
    let connect_to = format!("::127.0.0.1:{}", gw.port());
    let url = format!("http://{host}{path}");
    let out = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "10", proto, "--connect-to"])
        .arg(&connect_to)
        .args(args)
        .arg(&url)
        .output()
        .expect("curl is required (.ci/test installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "curl {proto} {url} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut rest = text.as_str();
    // Interim `100 Continue` heads come first.
    while rest.starts_with("HTTP/")
        && rest
            .split_whitespace()
            .nth(1)
            .is_some_and(|s| s.starts_with('1'))
    {
        rest = rest.split_once("\r\n\r\n").map_or("", |(_, r)| r);
    }
    let (head, body) = rest.split_once("\r\n\r\n").unwrap_or((rest, ""));
    let mut lines = head.lines();
    let status_line = lines.next().unwrap();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Got {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// A gateway (h2c on) with `routes`.
fn h2c_gateway(routes: &str) -> torii_engine::control::Gateway {
    let header = gateway_header("max_body_bytes = 100").replace(
        "drain_timeout = \"2s\"\n",
        "drain_timeout = \"2s\"\nh2c = true\n",
    );
    gateway(&format!("{header}{routes}"))
}

/// `route(..)` plus `rules` lines and an API-key requirement (so "answered before
/// authentication" shows: without a key, a request that passes the rules gets 401).
fn keyed(id: &str, m: SocketAddr, rules: &str) -> String {
    format!(
        "{}{rules}\n[routes.apikeys]\n",
        route(id, &format!("{id}.test"), "/", &[m])
    )
}

#[test]
fn filters_refuse_before_authentication_on_both_protocols() {
    let m = mirror();
    let routes = [
        keyed("deny", m, "deny_ips = [\"127.0.0.0/8\"]"),
        keyed("allow", m, "allow_ips = [\"10.0.0.0/8\", \"::1\"]"),
        keyed("mine", m, "allow_ips = [\"127.0.0.1\"]"),
        keyed("ro", m, "read_only = true"),
        keyed("meth", m, "methods = [\"GET\", \"PUT\"]"),
        keyed("check", m, "header_checks = { \"X-Tenant\" = \"acme\" }"),
        keyed("small", m, "max_body_bytes = 10"),
        route("big", "big.test", "/", &[m]) + "max_body_bytes = 1000\n",
        route("plain", "plain.test", "/", &[m]),
    ]
    .concat();
    let gw = h2c_gateway(&routes);
    let a = gw.addrs[0];
    let big = "x".repeat(500);
    for proto in PROTOCOLS {
        let r = curl(a, proto, "deny.test", "/", &[]);
        assert_eq!(r.status, 403, "{proto} {r:?}");
        assert_eq!(
            r.header("otoroshi-error-msg"),
            Some("Your IP address is not allowed")
        );
        assert_eq!(
            curl(a, proto, "allow.test", "/", &[]).status,
            403,
            "{proto}"
        );
        // In the allow list: on to authentication, which refuses (no key).
        assert_eq!(curl(a, proto, "mine.test", "/", &[]).status, 401, "{proto}");

        let r = curl(a, proto, "ro.test", "/", &["-X", "DELETE"]);
        assert_eq!(
            (r.status, r.header("allow")),
            (405, Some("GET, HEAD, OPTIONS")),
            "{proto} {r:?}"
        );
        assert_eq!(curl(a, proto, "ro.test", "/", &[]).status, 401, "{proto}");
        let r = curl(a, proto, "meth.test", "/", &["-X", "POST"]);
        assert_eq!(
            (r.status, r.header("allow")),
            (405, Some("GET, PUT")),
            "{proto} {r:?}"
        );
        // Methods are case-sensitive.
        assert_eq!(
            curl(a, proto, "meth.test", "/", &["-X", "get"]).status,
            405,
            "{proto}"
        );
        assert_eq!(
            curl(a, proto, "meth.test", "/", &["-X", "PUT"]).status,
            401,
            "{proto}"
        );
        // A HEAD refused: the head only, `Allow` kept.
        let r = curl(a, proto, "meth.test", "/", &["-I"]);
        assert_eq!(
            (r.status, r.header("allow")),
            (405, Some("GET, PUT")),
            "{proto} {r:?}"
        );

        assert_eq!(
            curl(a, proto, "check.test", "/", &[]).status,
            400,
            "{proto}"
        );
        let wrong = curl(a, proto, "check.test", "/", &["-H", "x-tenant: other"]);
        assert_eq!(wrong.status, 400, "{proto}");
        let twice = ["-H", "x-tenant: acme", "-H", "X-Tenant: evil"];
        assert_eq!(
            curl(a, proto, "check.test", "/", &twice).status,
            400,
            "{proto}"
        );
        let ok = curl(a, proto, "check.test", "/", &["-H", "X-TENANT: acme"]);
        assert_eq!(ok.status, 401, "{proto}");

        // The route's cap replaces [limits] max_body_bytes = 100, smaller or larger.
        let r = curl(a, proto, "big.test", "/up", &["-d", &big]);
        assert_eq!(
            (r.status, r.json()["body_bytes"].as_u64()),
            (200, Some(500)),
            "{proto} {r:?}"
        );
        // Refusals of a request with a body: over HTTP/1.1 only, since curl reports an
        // HTTP/2 stream answered before its upload ended (and reset) as a failure, the
        // answer unread. The decision is the same phase for both protocols.
        if proto == "--http1.1" {
            let post = |host: &str, body: &str| curl(a, proto, host, "/", &["-d", body]);
            let r = post("small.test", "0123456789a");
            assert_eq!(r.status, 413, "{r:?}");
            assert_eq!(post("small.test", "0123456789").status, 401);
            assert_eq!(post("plain.test", &big).status, 413);
        }
        // A chunked body (no declared length) is held to the route's cap while it streams.
        if proto == "--http1.1" {
            let chunked = ["-H", "transfer-encoding: chunked", "-d", &big];
            let r = curl(a, proto, "big.test", "/", &chunked);
            assert_eq!(
                (r.status, r.json()["body_bytes"].as_u64()),
                (200, Some(500)),
                "{r:?}"
            );
            let r = curl(a, proto, "small.test", "/", &chunked);
            assert_eq!(r.status, 401, "{r:?}");
        }
        let r = curl(a, proto, "plain.test", "/", &[]);
        assert_eq!(r.status, 200, "{proto} {r:?}");
        // A gRPC request refused by a rule gets a gRPC status.
        let grpc = ["-X", "POST", "-H", "content-type: application/grpc"];
        let r = curl(a, proto, "deny.test", "/svc/M", &grpc);
        assert_eq!(
            (r.status, r.header("grpc-status")),
            (200, Some("7")),
            "{proto} {r:?}"
        );
    }
}

#[test]
fn force_https_and_redirect_answer_before_authentication() {
    let m = mirror();
    let routes = [
        keyed(
            "sec",
            m,
            "force_https = true\nredirect = { to = \"/never\", status = 302 }",
        ),
        keyed(
            "moved",
            m,
            "redirect = { to = \"https://new.example${path}${query}\", status = 301 }",
        ),
        keyed(
            "rel",
            m,
            "redirect = { to = \"/other/${host}\", status = 307 }",
        ),
    ]
    .concat();
    let gw = h2c_gateway(&routes);
    let a = gw.addrs[0];
    for proto in PROTOCOLS {
        let r = curl(a, proto, "sec.test", "/a/b?x=1", &[]);
        assert_eq!(r.status, 308, "{proto} {r:?}");
        assert_eq!(
            r.header("location"),
            Some("https://sec.test/a/b?x=1"),
            "{proto}"
        );
        assert_eq!(r.header("content-length"), Some("0"), "{proto}");
        assert!(r.body.is_empty(), "{proto} {r:?}");
        // The canonical path, not the bytes sent.
        let r = curl(a, proto, "sec.test", "/a/./c/../d", &["--path-as-is"]);
        assert_eq!(
            r.header("location"),
            Some("https://sec.test/a/d"),
            "{proto} {r:?}"
        );

        let r = curl(a, proto, "moved.test", "/p%20q?k=v&w", &["-X", "POST"]);
        assert_eq!(r.status, 301, "{proto} {r:?}");
        assert_eq!(
            r.header("location"),
            Some("https://new.example/p%20q?k=v&w"),
            "{proto}"
        );
        let r = curl(a, proto, "moved.test", "/", &[]);
        assert_eq!(
            r.header("location"),
            Some("https://new.example/"),
            "{proto}"
        );
        let r = curl(a, proto, "REL.test", "/x", &[]);
        assert_eq!(
            (r.status, r.header("location")),
            (307, Some("/other/rel.test")),
            "{proto}"
        );
    }
}

#[test]
fn path_rules_and_preserve_host_shape_what_the_backend_receives() {
    let m = mirror();
    let routes = [
        route("strip", "strip.test", "/api", &[m]) + "strip_prefix = true\ntarget_root = \"/v2/\"\n",
        route("rw", "rw.test", "/", &[m])
            + "rewrite = { from = \"^/v1/(?P<rest>.*)$\", to = \"/v3/${rest}\" }\n",
        route("all", "all.test", "/shop", &[m])
            + "strip_prefix = true\nrewrite = { from = \"^/items/(.*)$\", to = \"/i/$1/\" }\ntarget_root = \"/root\"\npreserve_host = true\n",
        route("host", "host.test", "/", &[m]) + "preserve_host = true\n",
        route("plain", "plain.test", "/", &[m]),
    ]
    .concat();
    let gw = h2c_gateway(&routes);
    let a = gw.addrs[0];
    let target_host = format!("127.0.0.1:{}", m.port());
    for proto in PROTOCOLS {
        let seen = |host: &str, path: &str| {
            let r = curl(a, proto, host, path, &[]);
            assert_eq!(r.status, 200, "{proto} {host}{path} {r:?}");
            let j = r.json();
            (
                j["path"].as_str().unwrap().to_owned(),
                j["query"].as_str().unwrap().to_owned(),
                j["headers"]["host"].as_str().unwrap().to_owned(),
            )
        };
        let th = target_host.clone();
        let s = |p: &str, q: &str, h: &str| (p.to_owned(), q.to_owned(), h.to_owned());
        assert_eq!(
            seen("strip.test", "/api/users?a=1&b"),
            s("/v2/users", "a=1&b", &th)
        );
        assert_eq!(seen("strip.test", "/api"), s("/v2/", "", &th), "{proto}");
        // The canonical path is what the rules read.
        assert_eq!(seen("strip.test", "/api/x/../y/%7e"), s("/v2/y/~", "", &th));
        assert_eq!(
            seen("rw.test", "/v1/a/b?q"),
            s("/v3/a/b", "q", &th),
            "{proto}"
        );
        assert_eq!(seen("rw.test", "/v2/a"), s("/v2/a", "", &th), "{proto}");
        assert_eq!(
            seen("all.test", "/shop/items/42?x=y"),
            s("/root/i/42/", "x=y", "all.test"),
            "{proto}"
        );
        assert_eq!(seen("host.test", "/h"), s("/h", "", "host.test"), "{proto}");
        assert_eq!(seen("plain.test", "/h"), s("/h", "", &th), "{proto}");
        // A rewrite whose result is not a canonical path is refused.
        let r = curl(a, proto, "all.test", "/shop/items/", &[]);
        assert_eq!(r.status, 400, "{proto} {r:?}");
    }
}

#[test]
fn header_rules_on_the_request_and_the_response() {
    let m = mirror();
    let routes = [
        route("hdr", "hdr.test", "/", &[m])
            + "[routes.apikeys]\n[routes.request_headers]\nset = { \"X-Real-IP\" = \"${client_ip}\", \"x-who\" = \"${apikey.client_id}/${apikey.name}/${route_id}\", \"x-path\" = \"${host}${path}\" }\nset_if_missing = { \"x-tenant\" = \"default\", \"x-forwarded-port\" = \"1\" }\nadd = { \"x-multi\" = \"added\" }\nremove = [\"x-secret\"]\n[routes.response_headers]\nset = { \"x-req\" = \"${request_id}\" }\nset_if_missing = { \"cache-control\" = \"no-store\", \"content-type\" = \"text/plain\" }\nadd = { \"x-route\" = \"${route_id}\" }\n",
        route("rm", "rm.test", "/", &[m])
            + "response_headers = { remove = [\"content-type\"] }\n",
        "[[apikeys]]\nclient_id = \"cli\"\nclient_secret = \"sekret-0123456789abcdef\"\nname = \"The Client\"\nroutes = [\"hdr\"]\n".to_owned(),
    ]
    .concat();
    let gw = h2c_gateway(&routes);
    let a = gw.addrs[0];
    for proto in PROTOCOLS {
        let args = [
            "-u",
            "cli:sekret-0123456789abcdef",
            "-H",
            "x-real-ip: 6.6.6.6",
            "-H",
            "X-Secret: s",
            "-H",
            "x-multi: client",
            "-H",
            "x-forwarded-port: 443",
        ];
        let r = curl(a, proto, "hdr.test", "/a/../p%41?q=1", &args);
        assert_eq!(r.status, 200, "{proto} {r:?}");
        let j = r.json();
        let lines: Vec<(String, String)> = j["header_lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l[0].as_str().unwrap().to_ascii_lowercase(),
                    l[1].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let values = |n: &str| -> Vec<&str> {
            lines
                .iter()
                .filter(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        assert_eq!(values("x-real-ip"), ["127.0.0.1"], "{proto} {lines:?}");
        assert_eq!(values("x-who"), ["cli/The Client/hdr"], "{proto}");
        assert_eq!(values("x-path"), ["hdr.test/pA"], "{proto}");
        assert_eq!(values("x-tenant"), ["default"], "{proto}");
        // Torii strips the client's X-Forwarded-Port: missing, so the rule writes it.
        assert_eq!(values("x-forwarded-port"), ["1"], "{proto}");
        assert_eq!(values("x-multi"), ["client", "added"], "{proto}");
        assert!(values("x-secret").is_empty(), "{proto}");
        let request_id = values("otoroshi-request-id")[0].to_owned();
        // The response: the upstream's lines plus the rules'.
        assert_eq!(
            r.header("x-req"),
            Some(request_id.as_str()),
            "{proto} {r:?}"
        );
        assert_eq!(r.header("cache-control"), Some("no-store"), "{proto}");
        assert_eq!(
            r.header("content-type"),
            Some("application/json"),
            "{proto}"
        );
        assert_eq!(r.header("x-route"), Some("hdr"), "{proto}");
        // Set with a tenant: kept.
        let mut with = args.to_vec();
        with.extend(["-H", "x-tenant: acme"]);
        let j = curl(a, proto, "hdr.test", "/", &with).json();
        assert_eq!(j["headers"]["x-tenant"], "acme", "{proto}");

        let r = curl(a, proto, "rm.test", "/", &[]);
        assert_eq!(
            (r.status, r.header("content-type")),
            (200, None),
            "{proto} {r:?}"
        );
        assert!(r.header("x-route").is_none(), "{proto}");
    }
}

#[test]
fn cors_preflight_is_answered_before_api_keys_and_actual_responses_get_its_lines() {
    let m = mirror();
    let routes = [
        keyed(
            "cors",
            m,
            "methods = [\"GET\", \"PUT\", \"OPTIONS\"]\n[routes.cors]\nallow_origins = [\"https://app.example\", \"https://*.example.org\"]\nallow_methods = [\"PUT\"]\nallow_headers = [\"Authorization\", \"X-Api\"]\nexpose_headers = [\"X-Total\"]\nallow_credentials = true\nmax_age = \"10m\"",
        ),
        route("open", "open.test", "/", &[m]) + "[routes.cors]\nallow_origins = [\"*\"]\n",
        "[[apikeys]]\nclient_id = \"cli\"\nclient_secret = \"sekret-0123456789abcdef\"\nname = \"c\"\nroutes = [\"cors\"]\n".to_owned(),
    ]
    .concat();
    let gw = h2c_gateway(&routes);
    let a = gw.addrs[0];
    let ask = |origin: &str, method: &str, headers: &str| -> Vec<String> {
        let mut v = vec![
            "-X".to_owned(),
            "OPTIONS".to_owned(),
            "-H".to_owned(),
            format!("Origin: {origin}"),
            "-H".to_owned(),
            format!("Access-Control-Request-Method: {method}"),
        ];
        if !headers.is_empty() {
            v.extend([
                "-H".to_owned(),
                format!("Access-Control-Request-Headers: {headers}"),
            ]);
        }
        v
    };
    let run = |proto: &str, host: &str, args: &[String]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        curl(a, proto, host, "/items", &args)
    };
    for proto in PROTOCOLS {
        // Answered by Torii, without a key.
        let r = run(
            proto,
            "cors.test",
            &ask("https://app.example", "PUT", "x-api, Authorization"),
        );
        assert_eq!(r.status, 204, "{proto} {r:?}");
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some("https://app.example")
        );
        assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
        assert_eq!(
            r.header("access-control-allow-methods"),
            Some("PUT"),
            "{proto}"
        );
        assert_eq!(r.header("access-control-max-age"), Some("600"), "{proto}");
        assert_eq!(r.header("vary"), Some("Origin"), "{proto}");
        assert!(
            r.header("content-length").is_none() && r.body.is_empty(),
            "{proto} {r:?}"
        );
        let sub = run(proto, "cors.test", &ask("https://a.example.org", "GET", ""));
        assert_eq!(sub.status, 204, "{proto} {sub:?}");
        // Refusals: origin, method, header; with Vary.
        for (origin, method, headers) in [
            ("https://evil.example", "PUT", ""),
            ("https://app.example", "OPTIONS", ""),
            ("https://app.example", "PUT", "x-other"),
            ("null", "GET", ""),
        ] {
            let r = run(proto, "cors.test", &ask(origin, method, headers));
            assert_eq!(r.status, 403, "{proto} {origin} {method} {headers} {r:?}");
            assert!(r.header("access-control-allow-origin").is_none(), "{proto}");
            assert_eq!(r.header("vary"), Some("Origin"), "{proto}");
        }
        // The method filter sees the method asked for: DELETE is not in `methods`.
        let r = run(
            proto,
            "cors.test",
            &ask("https://app.example", "DELETE", ""),
        );
        assert_eq!(r.status, 405, "{proto} {r:?}");
        // A plain OPTIONS (no Access-Control-Request-Method) is not a preflight: API keys.
        let plain = ["-X", "OPTIONS", "-H", "Origin: https://app.example"];
        let r = curl(a, proto, "cors.test", "/items", &plain);
        assert_eq!(r.status, 401, "{proto} {r:?}");
        // Torii's own answer carries the CORS lines, so the browser sees the 401.
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some("https://app.example")
        );

        // Actual responses: the upstream's answer plus the lines.
        let actual = [
            "-u",
            "cli:sekret-0123456789abcdef",
            "-H",
            "Origin: https://app.example",
        ];
        let r = curl(a, proto, "cors.test", "/items", &actual);
        assert_eq!(r.status, 200, "{proto} {r:?}");
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some("https://app.example")
        );
        assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
        assert_eq!(r.header("access-control-expose-headers"), Some("x-total"));
        assert_eq!(r.header("vary"), Some("Origin"), "{proto}");
        let other = [
            "-u",
            "cli:sekret-0123456789abcdef",
            "-H",
            "Origin: https://x.test",
        ];
        let r = curl(a, proto, "cors.test", "/items", &other);
        assert_eq!(
            (r.status, r.header("access-control-allow-origin")),
            (200, None)
        );
        assert_eq!(r.header("vary"), Some("Origin"), "{proto}");

        let r = curl(
            a,
            proto,
            "open.test",
            "/",
            &["-H", "Origin: https://any.where"],
        );
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some("*"),
            "{proto} {r:?}"
        );
        assert!(r.header("vary").is_none(), "{proto}");
        let r = run(proto, "open.test", &ask("https://any.where", "GET", ""));
        assert_eq!(
            (r.status, r.header("access-control-allow-origin")),
            (204, Some("*"))
        );
    }
}
