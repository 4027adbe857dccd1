//! Tests of the header and CORS rules' validation: names and values, variables, the headers
//! Torii owns (refused on either side, in any letter case and `_` spelling, with the route's
//! own security header names), `header_checks`, and `[routes.cors]`'s origins and wildcards.

use super::tests::{errors, ok, MINIMAL};
use super::tests_rules::route_with;
use super::*;

fn request_set(name: &str) -> Vec<String> {
    errors(&route_with(&format!(
        "request_headers = {{ set = {{ {name:?} = \"v\" }} }}"
    )))
}

#[test]
fn values_are_templates_with_header_variables() {
    let c = ok(&route_with(
        "request_headers = { set = { \"X-Who\" = \"${apikey.client_id} via ${route_id}\" }, add = { \"X-Ip\" = \"${client_ip}\" } }",
    ));
    let h = &c.routes[0].rules.request_headers;
    assert_eq!(
        h.set,
        [(
            "x-who".to_owned(),
            Template {
                parts: vec![
                    TemplatePart::Var(Var::ApikeyClientId),
                    TemplatePart::Literal(" via ".into()),
                    TemplatePart::Var(Var::RouteId),
                ]
            }
        )]
    );
    assert_eq!(h.add[0].1.parts, [TemplatePart::Var(Var::ClientIp)]);
    let e = errors(&route_with(
        "request_headers = { set = { a = \"${query}\" } }",
    ));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("routes[0].request_headers.set.a: \"${query}\": unknown variable ${query} (expected ${client_ip}, ${route_id}"), "{e:?}");
    for bad in ["a\u{e9}", " lead", "trail ", "${path"] {
        let e = errors(&route_with(&format!(
            "response_headers = {{ add = {{ x = {bad:?} }} }}"
        )));
        assert_eq!(e.len(), 1, "{bad}: {e:?}");
        assert!(
            e[0].starts_with("routes[0].response_headers.add.x: "),
            "{e:?}"
        );
    }
}

#[test]
fn names_are_tokens_and_one_operation_each() {
    assert_eq!(
        request_set("X Env"),
        ["routes[0].request_headers.set.X Env: \"X Env\" is not a valid HTTP header name"]
    );
    let e = errors(&route_with(
        "request_headers = { set = { \"X-A\" = \"1\", \"x-a\" = \"2\" }, remove = [\"X-A\"] }",
    ));
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e.iter()
            .all(|e| e.contains("is already in set: one operation per header name")),
        "{e:?}"
    );
}

#[test]
fn headers_torii_owns_are_refused_on_the_request_side() {
    for name in [
        "Host",
        "content-length",
        "Transfer-Encoding",
        "Connection",
        "Keep-Alive",
        "Upgrade",
        "TE",
        "Expect",
        "X-Forwarded-For",
        "x_forwarded_proto",
        "X-Forwarded-Host",
        "Otoroshi-Request-Id",
        "Otoroshi-State",
        "Otoroshi-Claim",
    ] {
        let e = request_set(name);
        assert_eq!(e.len(), 1, "{name}: {e:?}");
        let lead = format!(
            "routes[0].request_headers.set.{name}: {name:?} cannot be changed by a request rule: "
        );
        assert!(e[0].starts_with(&lead), "{e:?}");
    }
    assert!(request_set("Host")[0].ends_with("use preserve_host = true to send the client's"));
    // Removing one is refused as well.
    let e = errors(&route_with(
        "request_headers = { remove = [\"X-Forwarded-For\"] }",
    ));
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with("routes[0].request_headers.remove[0]: "),
        "{e:?}"
    );
    // Headers Torii only strips from clients may be set: they are the operator's.
    let c = ok(&route_with("request_headers = { set = { \"X-Real-IP\" = \"${client_ip}\", Authorization = \"Basic eDp5\" } }"));
    assert_eq!(c.routes[0].rules.request_headers.set.len(), 2);
}

#[test]
fn the_routes_own_security_headers_are_refused() {
    let section = "[routes.challenge]\nversion = \"v1\"\nrequest_header = \"X-State\"\nresponse_header = \"X-State-Resp\"\n[routes.info_token]\nheader = \"X-Claim\"\nsecret = \"${env.CLAIM_SHAREDKEY}\"\n";
    let text = route_with(&format!(
        "request_headers = {{ set = {{ \"x_state\" = \"a\", \"X-Claim\" = \"b\", \"X-State-Resp\" = \"ok\" }} }}\nresponse_headers = {{ remove = [\"X-State-Resp\", \"X-State\"] }}\n{section}"
    ));
    let e = errors(&text);
    assert_eq!(
        e,
        [
            "routes[0].request_headers.set.X-Claim: \"X-Claim\" cannot be changed by a request rule: it is the info token's header, which Torii writes",
            "routes[0].request_headers.set.x_state: \"x_state\" cannot be changed by a request rule: it is the challenge's request_header, which Torii writes",
            "routes[0].response_headers.remove[0]: \"X-State-Resp\" cannot be changed by a response rule: it is the challenge's response_header, which Torii reads and removes",
        ]
    );
}

#[test]
fn response_side_owns_framing_and_cors_headers() {
    for name in ["Content-Length", "Transfer-Encoding", "Connection"] {
        let e = errors(&route_with(&format!(
            "response_headers = {{ set = {{ {name:?} = \"1\" }} }}"
        )));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains("cannot be changed by a response rule: Torii writes the message framing"),
            "{e:?}"
        );
    }
    // Host and X-Forwarded-* mean nothing in a response: allowed there.
    ok(&route_with(
        "response_headers = { set = { Server = \"torii\" }, remove = [\"X-Powered-By\"] }",
    ));
    let e = errors(&route_with(
        "response_headers = { set = { \"Access-Control-Allow-Origin\" = \"*\" } }\n[routes.cors]\nallow_origins = [\"*\"]",
    ));
    assert_eq!(
        e,
        ["routes[0].response_headers: \"access-control-allow-origin\" is written by [routes.cors] on this route: change the CORS policy instead"]
    );
}

#[test]
fn header_checks_names_and_values() {
    let e = errors(&route_with(
        "header_checks = { \"X-T\" = \"\", \"X U\" = \"a\", \"x-t\" = \"b\" }",
    ));
    assert_eq!(
        e,
        [
            "routes[0].header_checks.X U: \"X U\" is not a valid HTTP header name",
            "routes[0].header_checks.X-T: the value must be non-empty visible ASCII (spaces allowed)",
        ]
    );
}

fn cors_errors(body: &str) -> Vec<String> {
    errors(&format!("{MINIMAL}[routes.cors]\n{body}\n"))
}

#[test]
fn cors_origins() {
    let c = ok(&format!(
        "{MINIMAL}[routes.cors]\nallow_origins = [\"HTTPS://App.Example.com:8443\", \"http://[::1]:3000\", \"https://*.example.org:444\"]\n"
    ));
    let cors = c.routes[0].rules.cors.clone().unwrap();
    assert_eq!(
        cors.origins,
        [
            OriginRule::Exact("https://app.example.com:8443".into()),
            OriginRule::Exact("http://[::1]:3000".into()),
            OriginRule::Subdomains {
                suffix: "example.org".into(),
                port: Some(444)
            },
        ]
    );
    assert_eq!(cors.allow_methods, ["GET", "HEAD", "POST"]);
    assert!(!cors.allow_credentials);
    for bad in [
        "app.example.com",
        "https://app.example.com/",
        "https://app.example.com:443",
        "http://*.example.com",
        "https://*.com",
        "https://a.*.com",
        "https://app.example.com:0",
        "https://[::1",
        "null",
    ] {
        let e = cors_errors(&format!("allow_origins = [{bad:?}]"));
        assert_eq!(e.len(), 1, "{bad}: {e:?}");
        assert!(
            e[0].starts_with("routes[0].cors.allow_origins[0]: "),
            "{e:?}"
        );
    }
    assert_eq!(
        cors_errors("allow_origins = [\"https://a.test\", \"HTTPS://A.test\"]"),
        ["routes[0].cors.allow_origins[1]: duplicate origin \"HTTPS://A.test\""]
    );
    assert_eq!(
        cors_errors(""),
        ["routes[0].cors.allow_origins: required: the origins browsers may call this route from"]
    );
}

#[test]
fn cors_wildcards_and_credentials() {
    let e = cors_errors("allow_origins = [\"https://a.test\"]\nallow_headers = [\"*\"]\nexpose_headers = [\"*\", \"x-a\"]\nallow_methods = [\"*\"]\nallow_credentials = true");
    assert_eq!(e.len(), 3, "{e:?}");
    assert!(
        e[0].starts_with(
            "routes[0].cors.allow_methods[0]: \"*\" is refused with allow_credentials = true"
        ),
        "{e:?}"
    );
    assert!(
        e[1].starts_with(
            "routes[0].cors.allow_headers[0]: \"*\" is refused with allow_credentials = true"
        ),
        "{e:?}"
    );
    assert_eq!(e[2], "routes[0].cors.expose_headers[0]: \"*\" must be the only entry (it already means every one)");
    let e = cors_errors("allow_origins = [\"*\", \"https://a.test\"]");
    assert_eq!(e, ["routes[0].cors.allow_origins[0]: \"*\" must be the only origin (it already allows every one)"]);
    let e = cors_errors("allow_origins = [\"*\"]\nmax_age = 600");
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("routes[0].cors.max_age: "), "{e:?}");
}

#[test]
fn cors_methods_the_route_refuses_warn() {
    let c = ok(&route_with("methods = [\"GET\"]\n[routes.cors]\nallow_origins = [\"*\"]\nallow_methods = [\"GET\", \"PUT\"]"));
    let w: Vec<String> = c.warnings.iter().map(ToString::to_string).collect();
    assert!(
        w.iter().any(|w| w
            .starts_with("routes[0].cors.allow_methods[1]: PUT is refused by the route's methods")),
        "{w:?}"
    );
    assert!(
        !w.iter()
            .any(|w| w.starts_with("routes[0].cors.allow_methods[0]")),
        "{w:?}"
    );
}
