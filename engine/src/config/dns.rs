//! `[dns]`: which name servers resolve target host names, at load and while the gateway runs
//! (the `torii-dns` thread, `upstream::resolve_loop`), and how long one query may take.
//!
//! Owns the validated form ([`DnsSpec`]), its defaults ([`dns_defaults`]) and the grammar of a
//! server (`IP`, `IP:port`, `[IPv6]:port`; port 53 when absent). Absent section or absent
//! `servers`: the system configuration (`/etc/resolv.conf`, `/etc/hosts`). Also the wrapper
//! that makes the loader's name lookups go through the configured servers ([`ServersEnv`]):
//! when `servers` is set, a target's name is resolved by [`LoadEnv::resolve_with`], which the
//! gateway's environment answers with those servers. No IO here, no DNS client: the client
//! lives in `upstream::dns`, above this module.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use super::duration::Zero;
use super::error::{index, Collector};
use super::fields::duration;
use super::raw::RawDns;
use super::LoadEnv;

/// Defaults and bounds of `[dns]` (documented in `docs/configuration.md`).
pub mod dns_defaults {
    use std::time::Duration;

    /// `dns.timeout`: deadline of one query.
    pub const TIMEOUT: Duration = Duration::from_secs(2);
    /// Shortest accepted `dns.timeout`.
    pub const MIN_TIMEOUT: Duration = Duration::from_millis(100);
    /// Longest accepted `dns.timeout`.
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(30);
    /// Port of a server written without one.
    pub const PORT: u16 = 53;
    /// Most servers accepted in `dns.servers`.
    pub const MAX_SERVERS: usize = 16;
}

/// `[dns]`, validated. The default (section absent) is the system configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsSpec {
    /// Name servers asked, in order; empty: those of `/etc/resolv.conf` (with its search
    /// domains and options) after `/etc/hosts`.
    pub servers: Vec<SocketAddr>,
    /// Deadline of one query (one server, one attempt).
    pub timeout: Duration,
}

impl Default for DnsSpec {
    fn default() -> Self {
        Self {
            servers: Vec::new(),
            timeout: dns_defaults::TIMEOUT,
        }
    }
}

impl DnsSpec {
    /// Whether names go to the system configuration (no `servers`).
    pub fn is_system(&self) -> bool {
        self.servers.is_empty()
    }
}

/// Validates `[dns]` (absent: the system configuration).
pub(super) fn dns(c: &mut Collector, raw: Option<&RawDns>) -> DnsSpec {
    let Some(raw) = raw else {
        return DnsSpec::default();
    };
    let timeout = duration(
        c,
        "dns.timeout",
        &raw.timeout,
        dns_defaults::TIMEOUT,
        Zero::Rejected,
    );
    if !(dns_defaults::MIN_TIMEOUT..=dns_defaults::MAX_TIMEOUT).contains(&timeout) {
        c.push("dns.timeout", "must be between 100ms and 30s");
    }
    let mut servers: Vec<SocketAddr> = Vec::new();
    if let Some(list) = &raw.servers {
        if list.is_empty() {
            c.push(
                "dns.servers",
                "empty: leave the key out to use the system configuration (/etc/resolv.conf)",
            );
        }
        if list.len() > dns_defaults::MAX_SERVERS {
            c.push(
                "dns.servers",
                format!("at most {} servers", dns_defaults::MAX_SERVERS),
            );
        }
        for (i, text) in list.iter().enumerate() {
            let path = index("dns.servers", i);
            match parse_server(text) {
                Ok(addr) if servers.contains(&addr) => {
                    c.push(path, format!("{addr} is listed twice"));
                }
                Ok(addr) => servers.push(addr),
                Err(e) => c.push(path, e),
            }
        }
    }
    DnsSpec { servers, timeout }
}

/// `IP`, `IP:port` or `[IPv6]:port` (port 53 when absent, never 0). No host names: the
/// servers are what resolves names.
fn parse_server(text: &str) -> Result<SocketAddr, String> {
    let addr = match (text.parse::<SocketAddr>(), text.parse::<IpAddr>()) {
        (Ok(addr), _) => addr,
        (_, Ok(ip)) => SocketAddr::new(ip, dns_defaults::PORT),
        _ => {
            let ip = text
                .strip_prefix('[')
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse::<std::net::Ipv6Addr>().ok());
            match ip {
                Some(ip) => SocketAddr::new(IpAddr::V6(ip), dns_defaults::PORT),
                None => {
                    return Err(format!(
                        "{text:?} is not an IP address with an optional port \
                         (\"10.0.0.2\", \"10.0.0.2:5353\", \"[::1]:53\")"
                    ))
                }
            }
        }
    };
    if addr.port() == 0 {
        return Err(format!("{text:?}: port 0 (1-65535, 53 when absent)"));
    }
    if addr.ip().is_unspecified() {
        return Err(format!("{text:?}: an unspecified address names no server"));
    }
    Ok(addr)
}

/// The loader's environment with target names resolved through `[dns] servers` when set
/// ([`LoadEnv::resolve_with`]), else as before ([`LoadEnv::resolve`]).
pub(super) struct ServersEnv<'a> {
    inner: &'a dyn LoadEnv,
    dns: &'a DnsSpec,
}

impl<'a> ServersEnv<'a> {
    /// `inner`, resolving through `dns`.
    pub(super) fn new(inner: &'a dyn LoadEnv, dns: &'a DnsSpec) -> Self {
        Self { inner, dns }
    }
}

impl LoadEnv for ServersEnv<'_> {
    fn var(&self, name: &str) -> Option<String> {
        self.inner.var(name)
    }

    fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        if self.dns.is_system() {
            self.inner.resolve(host, port)
        } else {
            self.inner.resolve_with(self.dns, host, port)
        }
    }

    fn resolve_with(&self, dns: &DnsSpec, host: &str, port: u16) -> Resolved {
        self.inner.resolve_with(dns, host, port)
    }

    fn appendable(&self, path: &Path) -> Result<(), String> {
        self.inner.appendable(path)
    }
}

/// What a name lookup of the loader gives.
pub type Resolved = std::io::Result<Vec<SocketAddr>>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{load_str, load_str_with_env, MapEnv};
    use std::cell::RefCell;

    fn load(dns: &str) -> Result<DnsSpec, String> {
        let text = format!("[gateway]\nhttp = [\"127.0.0.1:0\"]\n{dns}");
        load_str(&text, Path::new("."))
            .map(|c| c.dns)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn absent_is_the_system_configuration_with_a_two_second_timeout() {
        let spec = load("").unwrap();
        assert!(spec.is_system());
        assert_eq!(spec, DnsSpec::default());
        assert_eq!(spec.timeout, Duration::from_secs(2));
        assert_eq!(load("[dns]\n").unwrap(), DnsSpec::default());
    }

    #[test]
    fn servers_take_an_optional_port_defaulting_to_53() {
        let spec = load(
            "[dns]\nservers = [\"127.0.0.1:5353\", \"[::1]:53\", \"10.0.0.2\", \"fe80::2\", \"[fe80::1]\"]\ntimeout = \"500ms\"\n",
        )
        .unwrap();
        let want: Vec<SocketAddr> = [
            "127.0.0.1:5353",
            "[::1]:53",
            "10.0.0.2:53",
            "[fe80::2]:53",
            "[fe80::1]:53",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        assert_eq!(spec.servers, want);
        assert_eq!(spec.timeout, Duration::from_millis(500));
        assert!(!spec.is_system());
    }

    #[test]
    fn bad_servers_and_timeouts_are_errors_at_their_key() {
        let e = load("[dns]\nservers = [\"dns.example\", \"10.0.0.1:0\", \"0.0.0.0\", \"::1\", \"[::1]:53\"]\ntimeout = \"50ms\"\n")
            .unwrap_err();
        for want in [
            "dns.servers[0]: \"dns.example\" is not an IP address",
            "dns.servers[1]: \"10.0.0.1:0\": port 0",
            "dns.servers[2]: \"0.0.0.0\": an unspecified address",
            "dns.servers[4]: [::1]:53 is listed twice",
            "dns.timeout: must be between 100ms and 30s",
        ] {
            assert!(e.contains(want), "{want:?} missing from:\n{e}");
        }
        let e = load("[dns]\nservers = []\n").unwrap_err();
        assert!(e.contains("dns.servers: empty"), "{e}");
        let e = load("[dns]\nserver = [\"10.0.0.1\"]\n").unwrap_err();
        assert!(e.contains("dns.server: unknown key"), "{e}");
    }

    /// A [`MapEnv`] that records which lookup the loader made.
    struct Recording {
        map: MapEnv,
        calls: RefCell<Vec<String>>,
    }

    impl LoadEnv for Recording {
        fn var(&self, name: &str) -> Option<String> {
            self.map.var(name)
        }
        fn resolve(&self, host: &str, port: u16) -> Resolved {
            self.calls.borrow_mut().push(format!("system {host}"));
            self.map.resolve(host, port)
        }
        fn resolve_with(&self, dns: &DnsSpec, host: &str, port: u16) -> Resolved {
            self.calls
                .borrow_mut()
                .push(format!("{:?} {host}", dns.servers));
            Ok(vec![SocketAddr::new([10, 9, 9, 9].into(), port)])
        }
        fn appendable(&self, path: &Path) -> Result<(), String> {
            self.map.appendable(path)
        }
    }

    #[test]
    fn target_names_go_to_the_configured_servers_at_load() {
        let env = Recording {
            map: MapEnv::default().with_host("app.test", [10, 0, 0, 1].into()),
            calls: RefCell::new(Vec::new()),
        };
        let routes = "[[routes]]\nid = \"r\"\ndomains = [\"a.test\"]\ntargets = [\"http://app.test:8080\", \"http://10.0.0.5\"]\n";
        let text = format!("[gateway]\nhttp = [\"127.0.0.1:0\"]\n{routes}");
        let config = load_str_with_env(&text, Path::new("."), &env).unwrap();
        assert_eq!(
            config.routes[0].targets[0].addr.to_string(),
            "10.0.0.1:8080"
        );
        assert_eq!(*env.calls.borrow(), vec!["system app.test".to_owned()]);

        env.calls.borrow_mut().clear();
        let text = format!(
            "[gateway]\nhttp = [\"127.0.0.1:0\"]\n[dns]\nservers = [\"127.0.0.1:5353\"]\n{routes}"
        );
        let config = load_str_with_env(&text, Path::new("."), &env).unwrap();
        assert_eq!(
            config.routes[0].targets[0].addr.to_string(),
            "10.9.9.9:8080"
        );
        assert!(config.routes[0].targets[0].named);
        assert_eq!(
            *env.calls.borrow(),
            vec!["[127.0.0.1:5353] app.test".to_owned()],
            "the IP literal is not looked up; the name goes to the servers"
        );
    }
}
