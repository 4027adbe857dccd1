//! The routing table: which route serves a request, from its `Host` header and path.
//!
//! [`RouteTable::build`] compiles the routes of a validated [`Config`](crate::config::Config) once
//! per load; [`RouteTable::find`] runs per request and never allocates: the host is put in its
//! canonical form ([`canonical_host`]) in a 255-byte stack buffer and looked up in a hash map of
//! exact domains, then tried against the `*.suffix` wildcards, longest suffix first, then the
//! catch-all `*`. Within a domain the longest matching path prefix wins; when no prefix of the
//! best domain matches, the next domain candidate is tried.
//!
//! Matching rules (documented for operators in `docs/configuration.md`):
//! - Host: compared in canonical form (port removed, lower case, one trailing dot removed; see
//!   [`canonical_host`]); a host that has no canonical form matches nothing, not even `*`.
//! - Wildcard `*.api.oto.tools` matches `a.api.oto.tools` and `x.y.api.oto.tools`, not
//!   `api.oto.tools`. `*` alone matches every host, after every exact and wildcard domain.
//! - Path: the caller passes the canonical path ([`crate::http1::canonicalize_path`]: unreserved
//!   characters decoded, dot segments resolved, slashes merged), so `/%70rivate` and
//!   `/public/../private` are matched as `/private`. Comparison is byte for byte and
//!   case-sensitive: `/PRIVATE` does not match `/private` (a backend that treats paths
//!   case-insensitively must get its routes written for every case it serves).
//! - Path prefix `/api` matches `/api`, `/api/…`, `/api?…` and `/api;…` but not `/apix` (a
//!   segment boundary, unlike Otoroshi's plain string prefix). `;` counts as a boundary because
//!   servlet containers read `/private;x` as `/private` with a path parameter: matching it by a
//!   shorter prefix (`/`) would route it past `/private`'s checks. A prefix ending in `/` matches
//!   anything below it.
//! - Equal candidates (same domain and prefix, which validation refuses) resolve to the route
//!   that comes first in the file.

use std::collections::HashMap;

use crate::config::RouteConfig;
use crate::http1::{canonical_host, MAX_HOST_BYTES};

/// One path prefix of a domain and the route it leads to.
#[derive(Debug, Clone)]
struct PathEntry {
    prefix: Box<[u8]>,
    route: usize,
}

/// A `*.suffix` domain: `suffix` keeps the leading dot (`.api.oto.tools`).
#[derive(Debug, Clone)]
struct Wildcard {
    suffix: Box<[u8]>,
    paths: Vec<PathEntry>,
}

/// Routes compiled for matching. Immutable; shared by every worker through the snapshot.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    exact: HashMap<Box<[u8]>, Vec<PathEntry>>,
    wildcards: Vec<Wildcard>,
    /// The path prefixes of the `*` domain (the catch-all), tried last.
    catch_all: Vec<PathEntry>,
}

impl RouteTable {
    /// Compiles `routes` (validated: lowercase domains, paths starting with `/`). Indexes returned
    /// by [`find`](Self::find) point into this slice. Cost: one pass and a sort per domain.
    pub fn build(routes: &[RouteConfig]) -> RouteTable {
        let mut exact: HashMap<Box<[u8]>, Vec<PathEntry>> = HashMap::new();
        let mut wildcards: Vec<Wildcard> = Vec::new();
        let mut catch_all: Vec<PathEntry> = Vec::new();
        for (route, r) in routes.iter().enumerate() {
            for domain in &r.domains {
                let domain = domain.to_ascii_lowercase();
                let entries = r.paths.iter().map(|p| PathEntry {
                    prefix: p.as_bytes().into(),
                    route,
                });
                if domain == "*" {
                    catch_all.extend(entries);
                    continue;
                }
                match domain.strip_prefix('*') {
                    Some(suffix) => {
                        let suffix: Box<[u8]> = suffix.as_bytes().into();
                        match wildcards.iter_mut().find(|w| w.suffix == suffix) {
                            Some(w) => w.paths.extend(entries),
                            None => wildcards.push(Wildcard {
                                suffix,
                                paths: entries.collect(),
                            }),
                        }
                    }
                    None => exact
                        .entry(domain.into_bytes().into_boxed_slice())
                        .or_default()
                        .extend(entries),
                }
            }
        }
        // Stable sorts: among equal lengths, file order (route index) is kept.
        let by_len = |v: &mut Vec<PathEntry>| v.sort_by_key(|e| std::cmp::Reverse(e.prefix.len()));
        exact.values_mut().for_each(by_len);
        wildcards.iter_mut().for_each(|w| by_len(&mut w.paths));
        by_len(&mut catch_all);
        wildcards.sort_by_key(|w| std::cmp::Reverse(w.suffix.len()));
        RouteTable {
            exact,
            wildcards,
            catch_all,
        }
    }

    /// The index of the route serving `host` (a raw `Host` header value) and `path` (the
    /// canonical request path; a query after `?` is tolerated), or `None` (→ 404).
    /// Allocation-free: one hash lookup, then a scan of the wildcards and prefixes that apply.
    pub fn find(&self, host: &[u8], path: &[u8]) -> Option<usize> {
        self.find_match(host, path).map(|(route, _)| route)
    }

    /// [`RouteTable::find`], with the length of the path prefix that matched.
    pub fn find_match(&self, host: &[u8], path: &[u8]) -> Option<(usize, usize)> {
        let mut buf = [0u8; MAX_HOST_BYTES];
        let host = canonical_host(host, &mut buf)?;
        if let Some(route) = self.exact.get(host).and_then(|p| match_path(p, path)) {
            return Some(route);
        }
        self.wildcards
            .iter()
            .filter(|w| host.len() > w.suffix.len() && host.ends_with(&w.suffix))
            .find_map(|w| match_path(&w.paths, path))
            .or_else(|| match_path(&self.catch_all, path))
    }
}

/// The first (longest) prefix that matches `path` at a segment boundary.
fn match_path(entries: &[PathEntry], path: &[u8]) -> Option<(usize, usize)> {
    entries
        .iter()
        .find(|e| prefix_matches(&e.prefix, path))
        .map(|e| (e.route, e.prefix.len()))
}

/// `prefix` matches `path` when it is a prefix ending at `/`, `?`, `;`, the end, or itself ends
/// in `/`.
fn prefix_matches(prefix: &[u8], path: &[u8]) -> bool {
    if !path.starts_with(prefix) {
        return false;
    }
    match path.get(prefix.len()) {
        None => true,
        Some(b'/' | b'?' | b';') => true,
        Some(_) => prefix.last() == Some(&b'/'),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(domains: &[&str], paths: &[&str]) -> RouteConfig {
        RouteConfig {
            id: String::new(),
            name: String::new(),
            domains: domains.iter().map(|d| d.to_string()).collect(),
            paths: paths.iter().map(|p| p.to_string()).collect(),
            targets: Vec::new(),
            upstream: crate::config::UpstreamSpec::defaults(
                crate::config::defaults::UPSTREAM_CONNECT_TIMEOUT,
                crate::config::defaults::UPSTREAM_TIMEOUT,
            ),
            challenge: None,
            info_token: None,
            apikeys: None,
            upstream_tls: None,
            jwt: None,
            path_normalization: Default::default(),
            rate_limit: None,
            websocket: true,
            rules: Default::default(),
        }
    }

    fn table() -> RouteTable {
        RouteTable::build(&[
            route(&["myservice.oto.tools"], &["/"]),     // 0
            route(&["myservice.oto.tools"], &["/api"]),  // 1
            route(&["*.api.oto.tools"], &["/"]),         // 2
            route(&["*.eu.api.oto.tools"], &["/v2/"]),   // 3
            route(&["exact.api.oto.tools"], &["/only"]), // 4
            route(&["[::1]", "127.0.0.1", "localhost"], &["/", "/x"]), // 5
        ])
    }

    fn find(t: &RouteTable, host: &str, path: &str) -> Option<usize> {
        t.find(host.as_bytes(), path.as_bytes())
    }

    #[test]
    fn exact_and_longest_prefix() {
        let t = table();
        assert_eq!(find(&t, "myservice.oto.tools", "/"), Some(0));
        assert_eq!(find(&t, "myservice.oto.tools", "/other"), Some(0));
        assert_eq!(find(&t, "myservice.oto.tools", "/api"), Some(1));
        assert_eq!(find(&t, "myservice.oto.tools", "/api/x"), Some(1));
        assert_eq!(find(&t, "myservice.oto.tools", "/api?q=1"), Some(1));
        assert_eq!(find(&t, "unknown.oto.tools", "/"), None);
    }

    #[test]
    fn catch_all_comes_after_exact_and_wildcard_domains() {
        let t = RouteTable::build(&[
            route(&["*"], &["/"]),              // 0
            route(&["a.test"], &["/api"]),      // 1
            route(&["*.b.test"], &["/"]),       // 2
            route(&["*", "c.test"], &["/own"]), // 3
        ]);
        assert_eq!(find(&t, "a.test", "/api/x"), Some(1));
        assert_eq!(
            find(&t, "a.test", "/other"),
            Some(0),
            "no prefix of a.test matches"
        );
        assert_eq!(find(&t, "x.b.test", "/anything"), Some(2));
        assert_eq!(find(&t, "unknown.test", "/"), Some(0));
        assert_eq!(find(&t, "unknown.test", "/own/1"), Some(3));
        assert_eq!(find(&t, "c.test", "/own"), Some(3));
        assert_eq!(find(&t, "c.test", "/x"), Some(0));
        // A host without a canonical form matches nothing, not even the catch-all.
        assert_eq!(find(&t, "a b", "/"), None);
        assert_eq!(find(&t, "", "/"), None);
    }

    #[test]
    fn path_parameters_are_a_segment_boundary() {
        let t = RouteTable::build(&[
            route(&["a.test"], &["/"]),
            route(&["a.test"], &["/private"]),
        ]);
        assert_eq!(find(&t, "a.test", "/private;jsessionid=1"), Some(1));
        assert_eq!(find(&t, "a.test", "/private;x/secret"), Some(1));
        assert_eq!(find(&t, "a.test", "/privatex"), Some(0));
        // Case-sensitive: a backend that folds case needs its own routes for it.
        assert_eq!(find(&t, "a.test", "/PRIVATE"), Some(0));
    }

    #[test]
    fn prefix_stops_at_segment_boundary() {
        let t = table();
        assert_eq!(find(&t, "myservice.oto.tools", "/apix"), Some(0));
        assert_eq!(find(&t, "a.eu.api.oto.tools", "/v2/users"), Some(3));
        assert_eq!(find(&t, "a.eu.api.oto.tools", "/v2x"), Some(2));
        assert!(prefix_matches(b"/v2/", b"/v2/"));
        assert!(!prefix_matches(b"/v2/", b"/v2"));
        assert!(prefix_matches(b"/", b"/anything"));
    }

    #[test]
    fn wildcards_longest_suffix_first() {
        let t = table();
        assert_eq!(find(&t, "a.api.oto.tools", "/"), Some(2));
        assert_eq!(find(&t, "x.y.api.oto.tools", "/"), Some(2));
        assert_eq!(find(&t, "api.oto.tools", "/"), None);
        // A host equal to a suffix (its leading dot included) is refused before the wildcards.
        assert_eq!(find(&t, ".api.oto.tools", "/"), None);
        assert_eq!(find(&t, "x.eu.api.oto.tools", "/v2/a"), Some(3));
        assert_eq!(find(&t, "eu.api.oto.tools", "/v2/a"), Some(2));
    }

    #[test]
    fn falls_through_to_wildcards_when_no_path_matches() {
        let t = table();
        assert_eq!(find(&t, "exact.api.oto.tools", "/only/here"), Some(4));
        assert_eq!(find(&t, "exact.api.oto.tools", "/elsewhere"), Some(2));
        // …and from a longer wildcard to a shorter one.
        assert_eq!(find(&t, "x.eu.api.oto.tools", "/v1"), Some(2));
    }

    #[test]
    fn host_case_ports_and_trailing_dot() {
        let t = table();
        assert_eq!(find(&t, "MyService.OTO.tools", "/api"), Some(1));
        assert_eq!(find(&t, "myservice.oto.tools:8080", "/api"), Some(1));
        assert_eq!(find(&t, "myservice.oto.tools:", "/"), Some(0));
        assert_eq!(find(&t, "myservice.oto.tools.", "/"), Some(0));
        assert_eq!(find(&t, "myservice.oto.tools.:80", "/"), Some(0));
        assert_eq!(find(&t, " myservice.oto.tools\t", "/"), Some(0));
        assert_eq!(find(&t, "A.API.OTO.TOOLS:443", "/"), Some(2));
        assert_eq!(find(&t, "myservice.oto.tools..", "/"), None);
        assert_eq!(find(&t, "myservice.oto.tools:80x", "/"), None);
        assert_eq!(find(&t, "myservice.oto.tools:80:90", "/"), None);
    }

    #[test]
    fn ipv6_and_ip_literals() {
        let t = table();
        assert_eq!(find(&t, "[::1]", "/"), Some(5));
        assert_eq!(find(&t, "[::1]:8080", "/x/y"), Some(5));
        assert_eq!(find(&t, "[::1]x", "/"), None);
        assert_eq!(find(&t, "[::1", "/"), None);
        assert_eq!(find(&t, "::1", "/"), None);
        assert_eq!(find(&t, "127.0.0.1:8080", "/"), Some(5));
        assert_eq!(find(&t, "LOCALHOST:8080", "/"), Some(5));
    }

    #[test]
    fn odd_hosts_never_match() {
        let t = table();
        let long = format!("{}.api.oto.tools", "a".repeat(250));
        assert_eq!(find(&t, &long, "/"), None);
        let fits = format!("{}.api.oto.tools", "a".repeat(240));
        assert_eq!(find(&t, &fits, "/"), Some(2));
        for bad in [
            "",
            ":80",
            ".api.oto.tools",
            "a b.api.oto.tools",
            "a/b.api.oto.tools",
            "é.api.oto.tools",
        ] {
            assert_eq!(find(&t, bad, "/"), None, "{bad:?}");
        }
        assert_eq!(t.find(b"a.api.oto.tools\0", b"/"), None);
    }

    #[test]
    fn paths_that_are_not_origin_form_do_not_match() {
        let t = table();
        assert_eq!(find(&t, "myservice.oto.tools", "*"), None);
        assert_eq!(find(&t, "myservice.oto.tools", ""), None);
    }

    #[test]
    fn equal_candidates_resolve_to_the_first_route() {
        let t = RouteTable::build(&[route(&["a.test"], &["/"]), route(&["A.test"], &["/"])]);
        assert_eq!(find(&t, "a.test", "/"), Some(0));
        assert_eq!(RouteTable::build(&[]).find(b"a.test", b"/"), None);
        assert_eq!(RouteTable::default().find(b"a.test", b"/"), None);
    }

    #[test]
    fn builds_from_a_loaded_config() {
        let text = "[gateway]\nhttp = [\"127.0.0.1:8080\"]\n[[routes]]\nid = \"a\"\ndomains = [\"A.test\", \"*.b.test\"]\npaths = [\"/\", \"/api\"]\ntargets = [\"http://127.0.0.1:1\"]\n";
        let env = crate::config::MapEnv::default();
        let c = match crate::config::load_str_with_env(text, std::path::Path::new("."), &env) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        let t = RouteTable::build(&c.routes);
        assert_eq!(t.find(b"a.TEST", b"/api/1"), Some(0));
        assert_eq!(t.find(b"x.b.test", b"/"), Some(0));
    }
}
