//! Tests of the route rules' validation (issue 30): the contract's example loads with every
//! key, each grammar refuses what it must with the error at its key path, and the warnings
//! for rules that can never apply fire (and none says an applied rule is not applied).

use std::net::IpAddr;

use super::tests::{errors, located_errors, ok, MINIMAL};
use super::*;

/// The contract of issue 30, verbatim, after [`MINIMAL`]'s route.
pub(super) const RULES_EXAMPLE: &str = r#"
strip_prefix = true                  # remove the matched path prefix
target_root = "/api"                 # prefix added upstream (Otoroshi's root)
rewrite = { from = "^/v1/(.*)$", to = "/v2/$1" }
preserve_host = false                # true: the client's Host upstream
force_https = false
methods = ["GET", "POST"]
read_only = false
allow_ips = ["10.0.0.0/8", "2001:db8::/32"]
deny_ips = []
max_body_bytes = 1048576
request_headers = { set = { "X-Env" = "prod" }, set_if_missing = {}, add = {}, remove = ["X-Debug"] }
response_headers = { set = { "Strict-Transport-Security" = "max-age=31536000" }, remove = ["Server"] }
header_checks = { "X-Tenant" = "acme" }

[routes.cors]
allow_origins = ["https://app.example.com", "https://*.example.com"]
allow_methods = ["GET", "POST"]
allow_headers = ["Authorization", "Content-Type"]
expose_headers = []
allow_credentials = true
max_age = "10m"
"#;

/// [`MINIMAL`] with `keys` added to its route (before any sub-table).
pub(super) fn route_with(keys: &str) -> String {
    format!("{MINIMAL}{keys}\n")
}

fn rules_of(keys: &str) -> RouteRules {
    ok(&route_with(keys)).routes[0].rules.clone()
}

/// The warnings found while validating, as `path: message`.
fn warned(keys: &str) -> Vec<String> {
    ok(&route_with(keys))
        .warnings
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn the_contract_example_loads_with_every_key() {
    let example = format!("paths = [\"/shop\"]{RULES_EXAMPLE}");
    let r = rules_of(&example);
    assert!(r.strip_prefix);
    assert_eq!(r.target_root, "/api");
    let rw = r
        .rewrite
        .as_ref()
        .map(|w| (w.from.as_str().to_owned(), w.to.clone()));
    assert_eq!(
        rw,
        Some((
            "^/v1/(.*)$".to_owned(),
            vec![RewritePart::Literal("/v2/".into()), RewritePart::Group(1)]
        ))
    );
    assert_eq!(r.methods, ["GET", "POST"]);
    assert_eq!(
        r.allow_ips,
        [
            IpNet {
                addr: IpAddr::from([10, 0, 0, 0]),
                prefix: 8
            },
            IpNet {
                addr: "2001:db8::".parse().unwrap(),
                prefix: 32
            },
        ]
    );
    assert_eq!(r.max_body_bytes, Some(1_048_576));
    assert_eq!(r.request_headers.set[0].0, "x-env");
    assert_eq!(r.request_headers.remove, ["x-debug"]);
    assert_eq!(r.response_headers.remove, ["server"]);
    assert_eq!(
        r.header_checks,
        [("x-tenant".to_owned(), "acme".to_owned())]
    );
    let cors = r.cors.unwrap();
    assert_eq!(
        cors.origins,
        [
            OriginRule::Exact("https://app.example.com".into()),
            OriginRule::Subdomains {
                suffix: "example.com".into(),
                port: None
            },
        ]
    );
    assert_eq!(cors.allow_headers, ["authorization", "content-type"]);
    assert_eq!(cors.max_age, Some(std::time::Duration::from_secs(600)));
    // Every rule is applied: no warning.
    let w = warned(&example);
    assert!(w.is_empty(), "{w:?}");
}

#[test]
fn a_route_without_rules_has_empty_rules_and_no_warning() {
    let c = ok(MINIMAL);
    assert!(c.routes[0].rules.is_empty());
    assert!(c.warnings.is_empty());
    // `false` everywhere is still "no rule".
    assert!(rules_of("strip_prefix = false\nread_only = false").is_empty());
    assert!(warned("preserve_host = false").is_empty());
}

#[test]
fn target_root_must_be_a_canonical_prefix() {
    assert_eq!(rules_of("target_root = \"/a/b/\"").target_root, "/a/b");
    assert_eq!(rules_of("target_root = \"/\"").target_root, "");
    for bad in [
        "api", "/a//b", "/a/../b", "/a/./b", "/a?x", "/a#x", "/a b", "/%2F", "/%41", "/%zz",
    ] {
        let e = errors(&route_with(&format!("target_root = {bad:?}")));
        assert_eq!(e.len(), 1, "{bad}: {e:?}");
        assert!(e[0].starts_with("routes[0].target_root: "), "{e:?}");
    }
    assert_eq!(rules_of("target_root = \"/a%3Ab\"").target_root, "/a%3Ab");
}

#[test]
fn rewrite_errors_are_at_their_key() {
    let e = errors(&route_with("rewrite = { from = \"^/(\", to = \"/x\" }"));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("routes[0].rewrite.from: invalid regex: "),
        "{e:?}"
    );
    assert!(e[0].contains("unclosed group"), "{e:?}");
    let e = errors(&route_with("rewrite = { from = \"^/(a)\", to = \"/$2\" }"));
    assert_eq!(
        e,
        ["routes[0].rewrite.to: \"/$2\": from has no group 2 (it has 1)"]
    );
    let e = errors(&route_with(
        "rewrite = { from = \"^/(a)\", to = \"/${v}\" }",
    ));
    assert_eq!(
        e,
        ["routes[0].rewrite.to: \"/${v}\": from has no group named \"v\""]
    );
    let e = errors(&route_with("rewrite = { to = \"/x\" }"));
    assert_eq!(e, ["routes[0].rewrite.from: required"]);
    for bad in ["x$1", "/a?b", "/$x", "/a b"] {
        let e = errors(&route_with(&format!(
            "rewrite = {{ from = \"^/(.*)$\", to = {bad:?} }}"
        )));
        assert_eq!(e.len(), 1, "{bad}: {e:?}");
        assert!(e[0].starts_with("routes[0].rewrite.to: "), "{e:?}");
    }
    let r = rules_of("rewrite = { from = \"^/(?P<v>[a-z]+)/(.*)\", to = \"$2/${v}$$${1}\" }");
    assert_eq!(
        r.rewrite.unwrap().to,
        [
            RewritePart::Group(2),
            RewritePart::Literal("/".into()),
            RewritePart::Group(1),
            RewritePart::Literal("$".into()),
            RewritePart::Group(1),
        ]
    );
}

#[test]
fn redirect_status_and_variables() {
    let r = rules_of("redirect = { to = \"https://new.example.com${path}${query}\" }");
    let red = r.redirect.unwrap();
    assert_eq!(red.status, 308);
    assert_eq!(
        red.to.parts,
        [
            TemplatePart::Literal("https://new.example.com".into()),
            TemplatePart::Var(Var::Path),
            TemplatePart::Var(Var::Query),
        ]
    );
    assert_eq!(
        rules_of("redirect = { to = \"/x\", status = 302 }")
            .redirect
            .unwrap()
            .status,
        302
    );
    let e = errors(&route_with("redirect = { to = \"/x\", status = 300 }"));
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("routes[0].redirect.status: must be 301, 302, 303, 307 or 308"));
    let e = errors(&route_with(
        "redirect = { to = \"https://a.test${client_ip}\" }",
    ));
    assert_eq!(
        e,
        ["routes[0].redirect.to: \"https://a.test${client_ip}\": unknown variable ${client_ip} (expected ${path}, ${query}, ${host})"]
    );
    for bad in [
        "//evil.test/x",
        "https:///x",
        "ftp://a.test",
        "${host}/x",
        "x",
        "/a b",
    ] {
        let e = errors(&route_with(&format!("redirect = {{ to = {bad:?} }}")));
        assert_eq!(e.len(), 1, "{bad}: {e:?}");
        assert!(e[0].starts_with("routes[0].redirect.to: "), "{e:?}");
    }
}

#[test]
fn a_redirect_warns_about_the_rules_it_shadows() {
    let w = warned("redirect = { to = \"/x\" }\nstrip_prefix = true\nrequest_headers = { set = { a = \"b\" } }\nmethods = [\"GET\"]");
    let shadowed: Vec<&String> = w
        .iter()
        .filter(|w| w.contains("answered by its redirect"))
        .collect();
    assert_eq!(shadowed.len(), 2, "{w:?}");
    assert!(shadowed[0].starts_with("routes[0].strip_prefix: "), "{w:?}");
    assert!(
        shadowed[1].starts_with("routes[0].request_headers: "),
        "{w:?}"
    );
    // Filters run before the redirect: no warning for methods.
    assert!(
        !w.iter().any(|w| w.starts_with("routes[0].methods")),
        "{w:?}"
    );
}

#[test]
fn methods_are_tokens_upper_case_without_duplicates() {
    assert_eq!(
        rules_of("methods = [\"get\", \"Purge\"]").methods,
        ["GET", "PURGE"]
    );
    assert_eq!(
        errors(&route_with("methods = [\"GET\", \"get\", \"G T\"]")),
        [
            "routes[0].methods[1]: duplicate method \"GET\"",
            "routes[0].methods[2]: \"G T\" is not a method name (a token such as \"GET\")",
        ]
    );
    assert_eq!(
        errors(&route_with("methods = []")),
        ["routes[0].methods: must not be empty (leave it out to allow every method)"]
    );
}

#[test]
fn read_only_with_methods_it_removes() {
    let w = warned("methods = [\"GET\", \"POST\"]\nread_only = true");
    assert!(
        w.iter()
            .any(|w| w.starts_with("routes[0].methods[1]: POST is never served")),
        "{w:?}"
    );
    let e = errors(&route_with(
        "methods = [\"POST\", \"PUT\"]\nread_only = true",
    ));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("routes[0].read_only: with these methods no request can be served"));
}

#[test]
fn networks_and_host_bits() {
    let r = rules_of("deny_ips = [\"192.0.2.1\", \"::1\", \"::ffff:10.0.0.0/104\", \"0.0.0.0/0\"]");
    let got: Vec<String> = r.deny_ips.iter().map(ToString::to_string).collect();
    assert_eq!(got, ["192.0.2.1/32", "::1/128", "10.0.0.0/8", "0.0.0.0/0"]);
    assert_eq!(
        errors(&route_with("allow_ips = [\"10.1.2.3/8\"]")),
        ["routes[0].allow_ips[0]: \"10.1.2.3/8\" has host bits set: the network is \"10.0.0.0/8\" (or write the address alone for just that host)"]
    );
    assert_eq!(
        errors(&route_with("allow_ips = [\"2001:db8::1/32\"]")),
        ["routes[0].allow_ips[0]: \"2001:db8::1/32\" has host bits set: the network is \"2001:db8::/32\" (or write the address alone for just that host)"]
    );
    for bad in [
        "10.0.0.0/33",
        "::/129",
        "10.0.0/8",
        "host",
        "10.0.0.0/+8",
        "10.0.0.0/",
    ] {
        let e = errors(&route_with(&format!("deny_ips = [{bad:?}]")));
        assert_eq!(e.len(), 1, "{bad}: {e:?}");
        assert!(e[0].starts_with("routes[0].deny_ips[0]: "), "{e:?}");
    }
    assert_eq!(
        errors(&route_with("deny_ips = [\"10.0.0.0/8\", \"10.0.0.0/8\"]")),
        ["routes[0].deny_ips[1]: duplicate network 10.0.0.0/8"]
    );
    let w = warned("allow_ips = [\"10.1.0.0/16\", \"192.0.2.0/24\"]\ndeny_ips = [\"10.0.0.0/8\"]");
    assert!(
        w.iter().any(|w| w.starts_with(
            "routes[0].allow_ips[0]: 10.1.0.0/16 is inside deny_ips entry 10.0.0.0/8"
        )),
        "{w:?}"
    );
    assert!(
        !w.iter().any(|w| w.starts_with("routes[0].allow_ips[1]")),
        "{w:?}"
    );
}

#[test]
fn max_body_bytes_range() {
    assert_eq!(rules_of("max_body_bytes = 1").max_body_bytes, Some(1));
    for bad in ["0", "-1"] {
        let e = errors(&route_with(&format!("max_body_bytes = {bad}")));
        assert_eq!(
            e,
            [format!(
                "routes[0].max_body_bytes: must be between 1 and {}",
                i64::MAX
            )]
        );
    }
}

#[test]
fn strip_prefix_on_the_root_only_warns() {
    let w = warned("strip_prefix = true");
    assert!(w.iter().any(|w| w.starts_with("routes[0].strip_prefix: the route's only path prefix is \"/\"")), "{w:?}");
    let w = warned("paths = [\"/api\"]\nstrip_prefix = true");
    assert!(
        !w.iter().any(|w| w.starts_with("routes[0].strip_prefix")),
        "{w:?}"
    );
}

#[test]
fn errors_are_placed_at_their_line() {
    let e = located_errors(&route_with("allow_ips = [\"10.0.0.1/8\"]"));
    assert_eq!(e.len(), 1);
    assert!(e[0].ends_with("(line 8, column 14)"), "{e:?}");
    let e = located_errors(&route_with(
        "[routes.cors]\nallow_origins = [\"*\"]\nallow_credentials = true",
    ));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("routes[0].cors.allow_origins[0]: \"*\" is refused with allow_credentials = true: the Fetch standard forbids"), "{e:?}");
    assert!(e[0].ends_with("(line 9, column 18)"), "{e:?}");
}

#[test]
fn applied_rules_do_not_warn() {
    let all = warned("methods = [\"GET\"]\nforce_https = true\nallow_ips = [\"10.0.0.0/8\"]\nheader_checks = { a = \"b\" }\nmax_body_bytes = 5\npaths = [\"/a\"]\nstrip_prefix = true\ntarget_root = \"/b\"\npreserve_host = true\nrewrite = { from = \"^/x\", to = \"/y\" }\nrequest_headers = { add = { a = \"b\" } }\nresponse_headers = { remove = [\"server\"] }\ncors = { allow_origins = [\"https://a.test\"] }");
    assert!(all.is_empty(), "{all:?}");
}
