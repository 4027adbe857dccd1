//! Tests of the compiled rules: the path sent upstream (strip, rewrite, root, and the refusal
//! of non-canonical rewrites, with a property test), redirect locations, value templates and
//! header operations, and the address, method and header filters. Rules are built from TOML
//! through the real loader, as the snapshot builds them.

use std::net::IpAddr;
use std::path::Path;

use proptest::prelude::*;

use super::*;
use crate::config::{load_str_with_env, MapEnv};

/// The compiled rules of a route written with `keys` (and `paths = [...]` when given).
pub(super) fn rules(keys: &str) -> CompiledRules {
    let text = format!(
        "[gateway]\nhttp = [\"127.0.0.1:8080\"]\n[[routes]]\nid = \"r\"\ndomains = [\"a.test\"]\ntargets = [\"http://127.0.0.1:9001\"]\n{keys}\n"
    );
    let config = load_str_with_env(&text, Path::new("/"), &MapEnv::new::<&str, &str>([]))
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    CompiledRules::build(&config.routes[0].rules)
}

fn upstream(r: &CompiledRules, path: &str, prefix: &str) -> Result<String, PathRefused> {
    let mut out = Vec::new();
    let mut scratch = RewriteScratch::default();
    path_for_upstream(
        path.as_bytes(),
        prefix.as_bytes(),
        r,
        &mut scratch,
        &mut out,
    )?;
    Ok(String::from_utf8(out).unwrap())
}

#[test]
fn strip_and_root() {
    let none = rules("");
    assert!(none.empty);
    assert_eq!(upstream(&none, "/api/x", "/api").unwrap(), "/api/x");
    let strip = rules("paths = [\"/api\", \"/v/\"]\nstrip_prefix = true");
    for (path, prefix, want) in [
        ("/api/x", "/api", "/x"),
        ("/api", "/api", "/"),
        ("/api/", "/api", "/"),
        ("/v/x/y", "/v/", "/x/y"),
        ("/v/", "/v/", "/"),
        ("/api;v=1", "/api", "/;v=1"),
        // A prefix that is not the path's (a caller's mistake): nothing is stripped.
        ("/other", "/api", "/other"),
    ] {
        assert_eq!(
            upstream(&strip, path, prefix).unwrap(),
            want,
            "{path} {prefix}"
        );
    }
    let root = rules("paths = [\"/api\"]\nstrip_prefix = true\ntarget_root = \"/backend/\"");
    assert_eq!(upstream(&root, "/api/x", "/api").unwrap(), "/backend/x");
    assert_eq!(upstream(&root, "/api", "/api").unwrap(), "/backend/");
    let root_only = rules("target_root = \"/b\"");
    assert_eq!(upstream(&root_only, "/api/x", "/").unwrap(), "/b/api/x");
}

#[test]
fn rewrite_after_strip_before_root() {
    let r = rules(
        "paths = [\"/api\"]\nstrip_prefix = true\ntarget_root = \"/root\"\nrewrite = { from = \"^/v1/(?P<rest>.*)$\", to = \"/v2/${rest}\" }",
    );
    assert_eq!(
        upstream(&r, "/api/v1/users/7", "/api").unwrap(),
        "/root/v2/users/7"
    );
    // No match: unchanged.
    assert_eq!(upstream(&r, "/api/v3/x", "/api").unwrap(), "/root/v3/x");
    // Unanchored: the first match only is replaced, the rest kept.
    let r = rules("rewrite = { from = \"old\", to = \"new\" }");
    assert_eq!(upstream(&r, "/a/old/old", "/").unwrap(), "/a/new/old");
    let r = rules("rewrite = { from = \"^/(a)(x)?\", to = \"/$2$1\" }");
    assert_eq!(
        upstream(&r, "/ab", "/").unwrap(),
        "/ab",
        "a group that did not take part is empty"
    );
    assert_eq!(upstream(&r, "/axb", "/").unwrap(), "/xab");
}

#[test]
fn rewrites_that_break_the_path_are_refused() {
    for (from, to, path) in [
        ("^/x(.*)$", "/.$1", "/x."),
        ("^/x(.*)$", "/a/$1", "/x/b"),
        ("^/(.*)$", "$1", "/a"),
        ("^/x(.*)$", "/$1", "/x/"),
        ("^/(.*)$", "/a/$1/..", "/b"),
    ] {
        let r = rules(&format!("rewrite = {{ from = {from:?}, to = {to:?} }}"));
        assert_eq!(
            upstream(&r, path, "/"),
            Err(PathRefused),
            "{from} {to} {path}"
        );
    }
}

#[test]
fn canonical_check() {
    for good in ["/", "/a", "/a/", "/a/b;c", "/a%3Ab", "/...", "/.a"] {
        assert!(is_canonical(good.as_bytes()), "{good}");
    }
    for bad in [
        "",
        "a",
        "//",
        "/a//b",
        "/.",
        "/a/..",
        "/a/%2e%2E/b",
        "/..;x/y",
        "/a?b",
        "/a#",
        "/a b",
        "/%2F",
        "/a%5cb",
        "/%00",
        "/a\\b",
    ] {
        assert!(!is_canonical(bad.as_bytes()), "{bad}");
    }
}

proptest! {
    /// Whatever the path and rules, the result is refused or canonical, and never panics.
    #[test]
    fn results_are_canonical_or_refused(
        segs in proptest::collection::vec("[a-z.;%2E]{0,4}", 0..5),
        strip in any::<bool>(),
        rewrite in 0usize..3,
    ) {
        let path = format!("/{}", segs.join("/"));
        let rw = ["", "rewrite = { from = \"^/(.*)$\", to = \"/w/$1\" }", "rewrite = { from = \"([a-z]+)\", to = \"/$1.\" }"][rewrite];
        let r = rules(&format!("paths = [\"/a\"]\nstrip_prefix = {strip}\n{rw}"));
        let mut out = Vec::new();
        let mut scratch = RewriteScratch::default();
        if path_for_upstream(path.as_bytes(), b"/a", &r, &mut scratch, &mut out).is_ok() {
            prop_assert!(is_canonical(&out), "{:?}", String::from_utf8_lossy(&out));
        }
    }
}

#[test]
fn a_scratch_serves_many_routes() {
    let a = rules("rewrite = { from = \"^/(a)\", to = \"/1$1\" }");
    let b = rules("rewrite = { from = \"^/(b)(c)\", to = \"/2$2$1\" }");
    let mut scratch = RewriteScratch::default();
    let mut out = Vec::new();
    for _ in 0..3 {
        path_for_upstream(b"/a", b"/", &a, &mut scratch, &mut out).unwrap();
        assert_eq!(out, b"/1a");
        path_for_upstream(b"/bc", b"/", &b, &mut scratch, &mut out).unwrap();
        assert_eq!(out, b"/2cb");
    }
    assert_eq!(scratch.slots_len(), 2);
}

#[test]
fn redirect_and_https_locations() {
    let r = rules("redirect = { to = \"https://new.example.com${path}${query}\", status = 301 }");
    let red = r.redirect.as_ref().unwrap();
    assert_eq!(red.status, 301);
    let mut out = Vec::new();
    redirect_location(red, b"a.test", b"/x/y", b"q=1", &mut out);
    assert_eq!(out, b"https://new.example.com/x/y?q=1");
    out.clear();
    redirect_location(red, b"a.test", b"/x", b"", &mut out);
    assert_eq!(out, b"https://new.example.com/x");
    out.clear();
    // Bytes that would break the header line or the URL are encoded.
    redirect_location(red, b"a.test", b"/a b", b"x=\r\n", &mut out);
    assert_eq!(out, b"https://new.example.com/a%20b?x=%0D%0A");
    let r = rules("redirect = { to = \"/moved${path}\" }");
    out.clear();
    redirect_location(r.redirect.as_ref().unwrap(), b"h", b"/p", b"", &mut out);
    assert_eq!(out, b"/moved/p");
    assert_eq!(r.redirect.as_ref().unwrap().status, 308);
    out.clear();
    https_location(b"a.test:8080", b"/p", b"k=v", &mut out);
    assert_eq!(out, b"https://a.test:8080/p?k=v");
}

#[test]
fn header_values_and_operations() {
    let r = rules(
        "request_headers = { set = { \"X-Who\" = \"${apikey.client_id}@${route_id}\" }, set_if_missing = { \"X-Env\" = \"prod\" }, add = { Via = \"torii ${request_id}\" }, remove = [\"X-Debug\"] }",
    );
    let ops = &r.request_headers;
    assert!(
        ops.drops(b"X-WHO") && ops.drops(b"x-debug") && !ops.drops(b"x-env") && !ops.drops(b"via")
    );
    let vars = Vars {
        apikey_client_id: b"app\r\nX-Evil: 1",
        route_id: b"r",
        request_id: b"42",
        ..Vars::default()
    };
    let mut out = Vec::new();
    ops.write_lines(&vars, |n| n == b"x-env", &mut out);
    assert_eq!(
        String::from_utf8(out.clone()).unwrap(),
        "x-who: app%0D%0AX-Evil: 1@r\r\nvia: torii 42\r\n"
    );
    out.clear();
    ops.write_lines(&vars, |_| false, &mut out);
    assert!(String::from_utf8(out).unwrap().contains("x-env: prod\r\n"));
    // An absent variable renders as nothing.
    let mut v = Vec::new();
    render_value(&ops.set[0].1, &Vars::default(), Context::Header, &mut v);
    assert_eq!(v, b"@");
}

#[test]
fn address_filter_deny_first() {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let r = rules("allow_ips = [\"10.0.0.0/8\", \"2001:db8::/32\"]\ndeny_ips = [\"10.1.0.0/16\"]");
    assert!(r.ip_allowed(ip("10.2.3.4")));
    assert!(r.ip_allowed(ip("::ffff:10.2.3.4")));
    assert!(!r.ip_allowed(ip("10.1.3.4")));
    assert!(!r.ip_allowed(ip("::ffff:10.1.3.4")));
    assert!(!r.ip_allowed(ip("192.0.2.1")));
    assert!(r.ip_allowed(ip("2001:db8::9")));
    let deny_only = rules("deny_ips = [\"192.0.2.0/24\"]");
    assert!(deny_only.ip_allowed(ip("198.51.100.1")) && !deny_only.ip_allowed(ip("192.0.2.9")));
    assert!(rules("").ip_allowed(ip("192.0.2.9")));
}

#[test]
fn method_filter_and_allow_header() {
    let r = rules("methods = [\"get\", \"POST\"]");
    assert_eq!(r.method_allowed(b"GET"), Ok(()));
    assert_eq!(r.method_allowed(b"PUT"), Err(AllowHeader(b"GET, POST")));
    assert_eq!(
        r.method_allowed(b"get"),
        Err(AllowHeader(b"GET, POST")),
        "methods are case-sensitive"
    );
    let ro = rules("read_only = true");
    assert_eq!(ro.method_allowed(b"HEAD"), Ok(()));
    assert_eq!(
        ro.method_allowed(b"DELETE"),
        Err(AllowHeader(b"GET, HEAD, OPTIONS"))
    );
    let both = rules("methods = [\"POST\", \"GET\"]\nread_only = true");
    assert_eq!(both.method_allowed(b"POST"), Err(AllowHeader(b"GET")));
    assert_eq!(rules("").method_allowed(b"ANYTHING"), Ok(()));
}

#[test]
fn header_checks_need_one_line_and_no_other_value() {
    let r = rules("header_checks = { \"X-Tenant\" = \"acme\", \"X-Env\" = \"prod\" }");
    let h = |list: &[(&'static str, &'static str)]| -> bool {
        let v: Vec<(&[u8], &[u8])> = list
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
            .collect();
        r.header_checks_pass(v.iter().copied())
    };
    assert!(h(&[
        ("x-tenant", "acme"),
        ("X-ENV", "prod"),
        ("other", "x")
    ]));
    assert!(!h(&[("x-tenant", "acme")]));
    assert!(!h(&[("x-tenant", "ACME"), ("x-env", "prod")]));
    assert!(!h(&[
        ("x-tenant", "acme"),
        ("x-env", "prod"),
        ("x-tenant", "evil")
    ]));
    assert!(rules("").header_checks_pass(std::iter::empty::<(&[u8], &[u8])>()));
}
