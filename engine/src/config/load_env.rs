//! What loading a configuration asks of the outside world ([`LoadEnv`]): environment variables
//! (secret references), name resolution (targets) and whether the access log's file can be
//! opened; with the process's own answers ([`SystemEnv`]) and a fixed set for tests and embedded
//! configurations ([`MapEnv`]).
//!
//! Owns only these lookups; the validators call them, once per load, never per request.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::log_file;
use super::{DnsSpec, Resolved};

/// What the loader asks of the outside world: environment variables (to check that secret
/// references name a set variable), name resolution for targets, and whether the access log's
/// file can be opened. Injectable for tests.
pub trait LoadEnv {
    /// The value of environment variable `name`, if set.
    fn var(&self, name: &str) -> Option<String>;
    /// The addresses `host:port` resolves to (blocking; called at load only).
    fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>>;
    /// [`LoadEnv::resolve`] through `[dns] servers` (called when they are set). By default the
    /// servers are not asked; `upstream::dns::GatewayEnv`, the gateway's environment, asks them.
    fn resolve_with(&self, _dns: &DnsSpec, host: &str, port: u16) -> Resolved {
        self.resolve(host, port)
    }
    /// `Ok` when this process could open `path` to append (creating it when missing); else
    /// why not, in words. Called at load for `[access_log] path` (a few `stat` calls).
    fn appendable(&self, path: &Path) -> Result<(), String>;
}

/// The process environment and the system resolver.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemEnv;

impl LoadEnv for SystemEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
    }

    fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        use std::net::ToSocketAddrs;
        Ok((host, port).to_socket_addrs()?.collect())
    }

    fn appendable(&self, path: &Path) -> Result<(), String> {
        log_file::appendable(path)
    }
}

/// A fixed set of variables and host names, for tests and embedded configs. Hosts not in the map
/// resolve only when they are IP literals (which the loader handles without resolving) or
/// `localhost` (→ 127.0.0.1); a host in the map resolves to its addresses in the order given. Every log path is appendable unless refused with
/// [`MapEnv::refuse_append`]: the file system is not looked at.
#[derive(Debug, Clone, Default)]
pub struct MapEnv {
    vars: HashMap<String, String>,
    hosts: HashMap<String, Vec<std::net::IpAddr>>,
    unappendable: HashMap<PathBuf, String>,
}

impl MapEnv {
    /// An environment holding `vars`.
    pub fn new<K: Into<String>, V: Into<String>>(vars: impl IntoIterator<Item = (K, V)>) -> Self {
        Self {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            hosts: HashMap::new(),
            unappendable: HashMap::new(),
        }
    }

    /// Adds a host name that resolves to `ip`.
    pub fn with_host(self, host: &str, ip: std::net::IpAddr) -> Self {
        self.with_addresses(host, [ip])
    }

    /// Adds a host name that resolves to every one of `ips`, in this order (as a name with
    /// several A/AAAA records does; duplicates are kept, as a resolver may return them).
    pub fn with_addresses(
        mut self,
        host: &str,
        ips: impl IntoIterator<Item = std::net::IpAddr>,
    ) -> Self {
        self.hosts
            .insert(host.to_ascii_lowercase(), ips.into_iter().collect());
        self
    }

    /// Makes `path` (as the loader resolves it: relative paths joined to the base directory)
    /// not appendable, for the reason `why`.
    pub fn refuse_append(mut self, path: impl Into<PathBuf>, why: &str) -> Self {
        self.unappendable.insert(path.into(), why.to_owned());
        self
    }
}

impl LoadEnv for MapEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }

    fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        let ips = match self.hosts.get(host) {
            Some(ips) => ips.clone(),
            None if host == "localhost" => vec![std::net::IpAddr::from([127, 0, 0, 1])],
            None => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "name not known",
                ))
            }
        };
        Ok(ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect())
    }

    fn appendable(&self, path: &Path) -> Result<(), String> {
        match self.unappendable.get(path) {
            Some(why) => Err(why.clone()),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    #[test]
    fn a_map_name_resolves_to_each_of_its_addresses_in_order() {
        let a = IpAddr::from([10, 0, 0, 1]);
        let b = IpAddr::from([10, 0, 0, 2]);
        let v6 = IpAddr::from([0xfd00, 0, 0, 0, 0, 0, 0, 1]);
        let env = MapEnv::default()
            .with_addresses("Pool.Internal", [b, a, v6])
            .with_host("one.internal", a);
        let got = env.resolve("pool.internal", 9000).ok();
        assert_eq!(
            got,
            Some(vec![
                SocketAddr::new(b, 9000),
                SocketAddr::new(a, 9000),
                SocketAddr::new(v6, 9000),
            ])
        );
        assert_eq!(
            env.resolve("one.internal", 80).ok(),
            Some(vec![SocketAddr::new(a, 80)])
        );
    }

    #[test]
    fn localhost_resolves_and_other_names_do_not() {
        let env = MapEnv::default();
        assert_eq!(
            env.resolve("localhost", 8080).ok(),
            Some(vec![SocketAddr::from(([127, 0, 0, 1], 8080))])
        );
        let e = env.resolve("nowhere.internal", 80).err();
        assert_eq!(e.map(|e| e.kind()), Some(std::io::ErrorKind::NotFound));
    }

    #[test]
    fn variables_and_refused_paths_are_answered_from_the_map() {
        let env = MapEnv::new([("A", "1")]).refuse_append("/var/log/x.log", "read-only");
        assert_eq!(env.var("A").as_deref(), Some("1"));
        assert_eq!(env.var("B"), None);
        assert_eq!(
            env.appendable(Path::new("/var/log/x.log")),
            Err("read-only".to_owned())
        );
        assert_eq!(env.appendable(Path::new("/var/log/y.log")), Ok(()));
    }
}
