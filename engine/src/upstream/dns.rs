//! The DNS client that resolves target names: hickory's stub resolver on a current-thread
//! tokio runtime that this client owns, so it runs on whichever thread holds it (the
//! `torii-dns` thread of `resolve_loop`, or the control thread while a file loads).
//!
//! Owns how a [`DnsSpec`] becomes a resolver: no `servers` → the system configuration
//! (`/etc/resolv.conf`: servers, search domains, `ndots`; `/etc/hosts` first), read when the
//! client is built; `servers` → those, over UDP with TCP when an answer is truncated, no search
//! domains, no hosts file. Both A and AAAA are asked (in parallel, IPv4 first); every address
//! counts. Each lookup asks the servers again (the resolver's cache is emptied first), so
//! `resolve_interval` bounds how stale an address can be; the answer's TTL comes back with it
//! ([`Answer::ttl`]). Errors are strings for logs: no answer panics or is trusted beyond being
//! a list of addresses. Also the loader's environment of a running gateway ([`GatewayEnv`]),
//! which sends target names to `[dns] servers` at load. Touches no worker and no request.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::TokioResolver;

use crate::config::{DnsSpec, LoadEnv, Resolved, SystemEnv};

/// One good answer: the addresses of a name and how long they may be kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Every IPv4 and IPv6 address of the name, A records first, duplicates removed.
    pub addrs: Vec<IpAddr>,
    /// What is left of the answer's TTL (the smallest of its records).
    pub ttl: Duration,
}

/// A resolver built from one [`DnsSpec`], with the runtime that drives it.
pub struct DnsClient {
    spec: DnsSpec,
    runtime: tokio::runtime::Runtime,
    resolver: TokioResolver,
}

impl std::fmt::Debug for DnsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsClient")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

impl DnsClient {
    /// A client for `spec`. Fails when the runtime cannot be built or, without `servers`, when
    /// the system configuration cannot be read.
    pub fn new(spec: &DnsSpec) -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("DNS runtime: {e}"))?;
        // Built inside the runtime: the resolver's connections belong to it.
        let _inside = runtime.enter();
        let mut builder = if spec.is_system() {
            TokioResolver::builder_tokio().map_err(|e| format!("system DNS configuration: {e}"))?
        } else {
            TokioResolver::builder_with_config(
                servers_config(spec),
                TokioRuntimeProvider::default(),
            )
        };
        let options: &mut ResolverOpts = builder.options_mut();
        options.timeout = spec.timeout;
        // One retry: a lookup is tried twice at most ([`DnsClient::deadline`]).
        options.attempts = 1;
        options.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        if !spec.is_system() {
            options.use_hosts_file = ResolveHosts::Never;
        }
        let resolver = builder.build().map_err(|e| format!("DNS resolver: {e}"))?;
        drop(_inside);
        Ok(Self {
            spec: spec.clone(),
            runtime,
            resolver,
        })
    }

    /// The settings this client was built from.
    pub fn spec(&self) -> &DnsSpec {
        &self.spec
    }

    /// Resolves `host` (blocking, bounded by [`DnsClient::deadline`]).
    pub fn lookup(&self, host: &str) -> Result<Answer, String> {
        let mut all = self.lookup_all(vec![((), host.to_owned())], || false);
        match all.pop() {
            Some((_, result)) => result,
            None => Err("lookup stopped".to_owned()),
        }
    }

    /// Resolves every name of `names` at once (blocking), each result with its key. Returns
    /// early, without the results still missing, as soon as `stop()` says so (polled every
    /// 100 ms); a name without an answer within [`DnsClient::deadline`] fails as timed out.
    pub fn lookup_all<K: Send + 'static>(
        &self,
        names: Vec<(K, String)>,
        stop: impl Fn() -> bool,
    ) -> Vec<(K, Result<Answer, String>)> {
        // Fresh answers only: the TTL bound is the caller's schedule, not a cache.
        self.resolver.clear_cache();
        let deadline = Instant::now() + self.deadline();
        self.runtime.block_on(async {
            let mut set = tokio::task::JoinSet::new();
            let mut keys: Vec<Option<K>> = Vec::with_capacity(names.len());
            for (i, (key, host)) in names.into_iter().enumerate() {
                keys.push(Some(key));
                let resolver = self.resolver.clone();
                set.spawn(async move { (i, lookup_one(&resolver, &host).await) });
            }
            let mut out = Vec::with_capacity(keys.len());
            loop {
                if stop() {
                    set.abort_all();
                    return out;
                }
                let tick = tokio::time::timeout(Duration::from_millis(100), set.join_next());
                match tick.await {
                    Ok(Some(Ok((i, result)))) => {
                        if let Some(key) = keys.get_mut(i).and_then(Option::take) {
                            out.push((key, result));
                        }
                    }
                    // A lookup task that panicked: its key is reported as timed out below.
                    Ok(Some(Err(_))) => {}
                    Ok(None) => break,
                    Err(_) if Instant::now() < deadline => {}
                    Err(_) => {
                        set.abort_all();
                        break;
                    }
                }
            }
            let late = format!("no answer within {:?}", self.deadline());
            out.extend(
                keys.into_iter()
                    .flatten()
                    .map(|key| (key, Err(late.clone()))),
            );
            out
        })
    }

    /// Longest a lookup may take: two tries (one retry), each asking the servers (up to four
    /// counted) one query timeout each, plus a second of slack.
    pub fn deadline(&self) -> Duration {
        let servers = self.spec.servers.len().clamp(1, 4) as u32;
        self.spec.timeout * 2 * servers + Duration::from_secs(1)
    }
}

/// A resolver configuration asking `spec.servers` (UDP, TCP for truncated answers), in order.
fn servers_config(spec: &DnsSpec) -> ResolverConfig {
    let servers = spec
        .servers
        .iter()
        .map(|addr| {
            let mut server = NameServerConfig::udp_and_tcp(addr.ip());
            for connection in &mut server.connections {
                connection.port = addr.port();
            }
            server
        })
        .collect();
    ResolverConfig::from_name_servers(servers)
}

/// One name's A and AAAA records, as an [`Answer`]; an answer without address is an error.
async fn lookup_one(resolver: &TokioResolver, host: &str) -> Result<Answer, String> {
    let found = resolver.lookup_ip(host).await.map_err(|e| e.to_string())?;
    let ttl = found
        .valid_until()
        .saturating_duration_since(Instant::now());
    let mut addrs: Vec<IpAddr> = Vec::new();
    for ip in found.iter() {
        if !addrs.contains(&ip) {
            addrs.push(ip);
        }
    }
    if addrs.is_empty() {
        return Err("an answer without any address".to_owned());
    }
    Ok(Answer { addrs, ttl })
}

/// The loader's environment in a running gateway (and `torii check`): the process
/// environment and the system resolver, as [`SystemEnv`], except that target names go to the
/// `[dns] servers` when the file sets them, through a [`DnsClient`] kept for the next load.
#[derive(Debug, Default)]
pub struct GatewayEnv {
    client: Mutex<Option<DnsClient>>,
}

impl GatewayEnv {
    /// An environment with no client yet (built at the first name asked of the servers).
    pub fn new() -> Self {
        Self::default()
    }
}

impl LoadEnv for GatewayEnv {
    fn var(&self, name: &str) -> Option<String> {
        SystemEnv.var(name)
    }

    fn resolve(&self, host: &str, port: u16) -> Resolved {
        SystemEnv.resolve(host, port)
    }

    fn resolve_with(&self, dns: &DnsSpec, host: &str, port: u16) -> Resolved {
        if dns.is_system() {
            return SystemEnv.resolve(host, port);
        }
        let mut client = self.client.lock().unwrap_or_else(|p| p.into_inner());
        if client.as_ref().is_none_or(|c| c.spec() != dns) {
            *client = Some(DnsClient::new(dns).map_err(std::io::Error::other)?);
        }
        let Some(client) = client.as_ref() else {
            return Err(std::io::Error::other("no DNS client"));
        };
        let servers: Vec<String> = dns.servers.iter().map(|s| s.to_string()).collect();
        let answer = client.lookup(host).map_err(|e| {
            std::io::Error::other(format!("{e} (dns.servers {})", servers.join(" ")))
        })?;
        Ok(answer
            .addrs
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect())
    }

    fn appendable(&self, path: &Path) -> Result<(), String> {
        SystemEnv.appendable(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    fn spec(servers: &[SocketAddr], timeout_ms: u64) -> DnsSpec {
        DnsSpec {
            servers: servers.to_vec(),
            timeout: Duration::from_millis(timeout_ms),
        }
    }

    /// A UDP "server" that reads queries and answers each with its header and question
    /// echoed, flagged as a response, with `answers` A records of `ttl` for 127.0.0.`x`.
    fn fake_server(answers: Vec<u8>, ttl: u32) -> SocketAddr {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            sock.set_read_timeout(Some(Duration::from_secs(10))).ok();
            while let Ok((n, from)) = sock.recv_from(&mut buf) {
                let q = &buf[..n];
                // Header (12) then the question: name labels, 0, type (2), class (2).
                let Some(end) = q[12..].iter().position(|&b| b == 0).map(|p| 12 + p + 5) else {
                    continue;
                };
                let qtype = u16::from_be_bytes([q[end - 4], q[end - 3]]);
                let count = if qtype == 1 { answers.len() as u16 } else { 0 };
                let mut r = q[..end].to_vec();
                r[2] = 0x81; // response, recursion desired
                r[3] = 0x80; // recursion available, NOERROR
                r[6..8].copy_from_slice(&count.to_be_bytes());
                r[8..12].fill(0);
                if qtype == 1 {
                    for &x in &answers {
                        r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
                        r.extend_from_slice(&ttl.to_be_bytes());
                        r.extend_from_slice(&[0, 4, 127, 0, 0, x]);
                    }
                }
                let _ = sock.send_to(&r, from);
            }
        });
        addr
    }

    #[test]
    fn a_records_come_back_with_their_ttl() {
        let server = fake_server(vec![2, 3, 2], 7);
        let client = DnsClient::new(&spec(&[server], 1000)).unwrap();
        let answer = client.lookup("app.test").unwrap();
        assert_eq!(
            answer.addrs,
            vec![IpAddr::from([127, 0, 0, 2]), IpAddr::from([127, 0, 0, 3])]
        );
        assert!(answer.ttl <= Duration::from_secs(7), "{answer:?}");
        assert!(answer.ttl >= Duration::from_secs(5), "{answer:?}");
    }

    #[test]
    fn an_empty_answer_or_a_silent_server_is_an_error_never_a_panic() {
        let empty = fake_server(Vec::new(), 1);
        let client = DnsClient::new(&spec(&[empty], 300)).unwrap();
        assert!(client.lookup("app.test").is_err());
        // Bound, never answering.
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = DnsClient::new(&spec(&[silent.local_addr().unwrap()], 200)).unwrap();
        let started = Instant::now();
        assert!(client.lookup("app.test").is_err());
        assert!(started.elapsed() <= client.deadline() + Duration::from_millis(500));
        // Not a DNS name at all.
        assert!(client.lookup("bad..name").is_err());
    }

    #[test]
    fn a_batch_stops_when_asked() {
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = DnsClient::new(&spec(&[silent.local_addr().unwrap()], 5000)).unwrap();
        let started = Instant::now();
        let out = client.lookup_all(vec![(1, "a.test".to_owned())], || {
            started.elapsed() > Duration::from_millis(300)
        });
        assert!(out.is_empty());
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn the_gateway_env_asks_the_servers_only_when_they_are_set() {
        let server = fake_server(vec![9], 30);
        let env = GatewayEnv::new();
        let got = env
            .resolve_with(&spec(&[server], 1000), "app.test", 8080)
            .unwrap();
        assert_eq!(got, vec![SocketAddr::from(([127, 0, 0, 9], 8080))]);
        let system = env
            .resolve_with(&DnsSpec::default(), "127.0.0.1", 80)
            .unwrap();
        assert_eq!(system, vec![SocketAddr::from(([127, 0, 0, 1], 80))]);
    }
}
