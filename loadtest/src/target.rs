//! The target of a run: URL parsing, the loopback-only rule, and the request bytes rendered once.
//!
//! Owns everything decided before the first byte is sent: where to connect, what `Host` to send,
//! and the exact request every connection repeats. It performs name resolution (once, at start)
//! and nothing else that touches the network.

use std::fmt;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

/// Why a target cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetError {
    /// The URL is not `http[s]://host[:port][/path][?query]`.
    Url(String),
    /// The host did not resolve.
    Resolve(String),
    /// The host resolves to a non-loopback address and `--allow-remote` was not given.
    NotLoopback(String),
    /// A `-H` header is not `Name: value`, or has bytes that would break the request.
    Header(String),
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetError::Url(m) => write!(f, "invalid URL: {m}"),
            TargetError::Resolve(m) => write!(f, "cannot resolve target: {m}"),
            TargetError::NotLoopback(m) => write!(
                f,
                "{m} is not a loopback address (127.0.0.0/8, ::1); pass --allow-remote to load a remote host"
            ),
            TargetError::Header(m) => write!(f, "invalid header: {m}"),
        }
    }
}

impl std::error::Error for TargetError {}

/// A parsed `http://` or `https://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `https://`: connections are TLS.
    pub tls: bool,
    /// Host as written (brackets removed for IPv6 literals).
    pub host: String,
    /// Port (80, or 443 for https, when absent).
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path_and_query: String,
    /// `host[:port]` as written, the default `Host` header.
    pub authority: String,
}

/// Parses `http[s]://host[:port][/path][?query]`. Called once per run.
pub fn parse_url(url: &str) -> Result<Url, TargetError> {
    let (tls, rest) = if let Some(r) = strip_prefix_ci(url, "http://") {
        (false, r)
    } else if let Some(r) = strip_prefix_ci(url, "https://") {
        (true, r)
    } else {
        return Err(TargetError::Url(format!(
            "{url}: only http:// and https:// URLs"
        )));
    };
    let default_port = if tls { 443 } else { 80 };
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    if authority.is_empty() || authority.contains('@') {
        return Err(TargetError::Url(format!(
            "{url}: missing or unsupported authority"
        )));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| TargetError::Url(format!("{url}: unclosed [")))?;
        let port = match after.strip_prefix(':') {
            Some(p) => parse_port(p, url)?,
            None if after.is_empty() => default_port,
            None => return Err(TargetError::Url(format!("{url}: junk after ]"))),
        };
        (h.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), parse_port(p, url)?),
            None => (authority.to_string(), default_port),
        }
    };
    if host.is_empty() {
        return Err(TargetError::Url(format!("{url}: empty host")));
    }
    let path_and_query = if path.is_empty() {
        "/".to_string()
    } else if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    if path_and_query.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(TargetError::Url(format!(
            "{url}: spaces or control bytes in the path"
        )));
    }
    Ok(Url {
        tls,
        host,
        port,
        path_and_query,
        authority: authority.to_string(),
    })
}

/// The TLS server name (SNI, and the name the certificate must carry): the `--host` value
/// without its port when given, the URL's host otherwise.
pub fn tls_server_name(url: &Url, host_override: Option<&str>) -> String {
    let Some(host) = host_override else {
        return url.host.clone();
    };
    if let Some(v6) = host.strip_prefix('[') {
        return v6.split_once(']').map_or(v6, |(h, _)| h).to_string();
    }
    match host.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h.to_string(),
        _ => host.to_string(),
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn parse_port(p: &str, url: &str) -> Result<u16, TargetError> {
    p.parse::<u16>()
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| TargetError::Url(format!("{url}: bad port {p:?}")))
}

/// Whether `ip` is loopback (127.0.0.0/8, ::1, or ::ffff:127.x.y.z).
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Resolves the URL's host and enforces the loopback rule: every resolved address must be
/// loopback unless `allow_remote`. Returns the first address. Called once per run.
pub fn resolve(url: &Url, allow_remote: bool) -> Result<SocketAddr, TargetError> {
    let addrs: Vec<SocketAddr> = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| TargetError::Resolve(format!("{}: {e}", url.host)))?
        .collect();
    let first = *addrs
        .first()
        .ok_or_else(|| TargetError::Resolve(format!("{}: no addresses", url.host)))?;
    if !allow_remote {
        if let Some(bad) = addrs.iter().find(|a| !is_loopback(a.ip())) {
            return Err(TargetError::NotLoopback(format!(
                "{} ({})",
                url.host,
                bad.ip()
            )));
        }
    }
    Ok(first)
}

/// What to send.
#[derive(Debug, Clone, Default)]
pub struct RequestSpec {
    /// Method, e.g. `GET`.
    pub method: String,
    /// Host header override (`--host`); the URL's authority otherwise.
    pub host: Option<String>,
    /// Extra headers, `Name: value` as given with `-H`.
    pub headers: Vec<String>,
    /// Request body (`--body`).
    pub body: Vec<u8>,
}

/// Renders the request once; every connection sends these exact bytes. Adds `Host` (unless a
/// `-H Host:` was given) and `Content-Length` when there is a body or the method usually has one.
pub fn render_request(url: &Url, spec: &RequestSpec) -> Result<Vec<u8>, TargetError> {
    let method = if spec.method.is_empty() {
        "GET"
    } else {
        spec.method.as_str()
    };
    if !method
        .bytes()
        .all(|b| b.is_ascii_alphabetic() || b == b'-' || b == b'_')
    {
        return Err(TargetError::Header(format!("method {method:?}")));
    }
    let mut out = Vec::with_capacity(256 + spec.body.len());
    out.extend_from_slice(format!("{method} {} HTTP/1.1\r\n", url.path_and_query).as_bytes());
    let mut has_host = false;
    let mut has_length = false;
    let mut extra = Vec::with_capacity(spec.headers.len());
    for h in &spec.headers {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| TargetError::Header(format!("{h:?} is not `Name: value`")))?;
        let name = name.trim();
        let value = value.trim();
        let token_ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token_ok || value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(TargetError::Header(format!("{h:?}")));
        }
        has_host |= name.eq_ignore_ascii_case("host");
        has_length |= name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("transfer-encoding");
        extra.push((name, value));
    }
    if !has_host {
        let host = spec.host.as_deref().unwrap_or(&url.authority);
        if host.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(TargetError::Header(format!("host {host:?}")));
        }
        out.extend_from_slice(format!("Host: {host}\r\n").as_bytes());
    }
    for (name, value) in extra {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    let body_method = matches!(method, "POST" | "PUT" | "PATCH");
    if !has_length && (!spec.body.is_empty() || body_method) {
        out.extend_from_slice(format!("Content-Length: {}\r\n", spec.body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&spec.body);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_defaults() {
        let u = parse_url("http://127.0.0.1:8080/a/b?x=1").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("127.0.0.1", 8080));
        assert_eq!(u.path_and_query, "/a/b?x=1");
        assert_eq!(u.authority, "127.0.0.1:8080");
        let u = parse_url("HTTP://localhost").unwrap();
        assert_eq!((u.port, u.path_and_query.as_str()), (80, "/"));
        let u = parse_url("http://[::1]:9/?q").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path_and_query.as_str()),
            ("::1", 9, "/?q")
        );
        let u = parse_url("http://h?q=1").unwrap();
        assert_eq!(u.path_and_query, "/?q=1");
    }

    #[test]
    fn https_urls_default_to_443_and_name_the_server() {
        let u = parse_url("HTTPS://127.0.0.1/x").unwrap();
        assert!(u.tls);
        assert_eq!((u.port, u.path_and_query.as_str()), (443, "/x"));
        let u = parse_url("https://[::1]:8443").unwrap();
        assert_eq!((u.tls, u.port), (true, 8443));
        assert!(!parse_url("http://h/").unwrap().tls);
        let u = parse_url("https://localhost:8443/").unwrap();
        assert_eq!(tls_server_name(&u, None), "localhost");
        assert_eq!(tls_server_name(&u, Some("api.test:8443")), "api.test");
        assert_eq!(tls_server_name(&u, Some("api.test")), "api.test");
        assert_eq!(tls_server_name(&u, Some("[::1]:8443")), "::1");
    }

    #[test]
    fn bad_urls_are_refused() {
        for bad in [
            "ftp://x",
            "http://",
            "https://",
            "http://h:0/",
            "http://h:x/",
            "http://u@h/",
            "http://h/a b",
            "http://[::1",
        ] {
            assert!(matches!(parse_url(bad), Err(TargetError::Url(_))), "{bad}");
        }
    }

    #[test]
    fn loopback_check() {
        for ok in ["127.0.0.1", "127.255.0.9", "::1", "::ffff:127.0.0.1"] {
            assert!(is_loopback(ok.parse().unwrap()), "{ok}");
        }
        for bad in [
            "10.0.0.1",
            "0.0.0.0",
            "::",
            "192.168.1.1",
            "::ffff:10.0.0.1",
            "128.0.0.1",
        ] {
            assert!(!is_loopback(bad.parse().unwrap()), "{bad}");
        }
        let remote = parse_url("http://10.1.2.3:80/").unwrap();
        let err = resolve(&remote, false).unwrap_err();
        assert!(matches!(err, TargetError::NotLoopback(_)));
        assert!(err.to_string().contains("--allow-remote"));
        let local = parse_url("http://127.0.0.1:80/").unwrap();
        assert_eq!(
            resolve(&local, false).unwrap(),
            "127.0.0.1:80".parse().unwrap()
        );
    }

    #[test]
    fn request_rendering() {
        let u = parse_url("http://127.0.0.1:81/p?q").unwrap();
        let plain = render_request(&u, &RequestSpec::default()).unwrap();
        assert_eq!(plain, b"GET /p?q HTTP/1.1\r\nHost: 127.0.0.1:81\r\n\r\n");
        let spec = RequestSpec {
            method: "POST".into(),
            host: Some("plain.test".into()),
            headers: vec!["X-A:  b ".into()],
            body: b"hey".to_vec(),
        };
        let r = String::from_utf8(render_request(&u, &spec).unwrap()).unwrap();
        assert_eq!(
            r,
            "POST /p?q HTTP/1.1\r\nHost: plain.test\r\nX-A: b\r\nContent-Length: 3\r\n\r\nhey"
        );
        let own_host = RequestSpec {
            headers: vec!["host: h".into()],
            ..RequestSpec::default()
        };
        let r = String::from_utf8(render_request(&u, &own_host).unwrap()).unwrap();
        assert_eq!(r, "GET /p?q HTTP/1.1\r\nhost: h\r\n\r\n");
        for bad in ["NoColon", ": v", "X Y: v", "X: a\r\nInjected: 1"] {
            let spec = RequestSpec {
                headers: vec![bad.into()],
                ..RequestSpec::default()
            };
            assert!(render_request(&u, &spec).is_err(), "{bad}");
        }
    }
}
