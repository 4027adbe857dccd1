//! What a `torii mirror` backend saw, read from its JSON answer, with the forwarding rules
//! checked on every read.
//!
//! The mirror lists every header line it received, in order (`header_lines`), so a test can
//! tell one `X-Forwarded-For` line from two. [`seen`] parses the answer, checks that the
//! convenience `headers` object agrees with those lines, and asserts the rules every request
//! forwarded by Torii must follow whatever the test is about (what the backend sees must be
//! what Torii checked: docs/security.md §2):
//! * a header Torii writes itself (`X-Forwarded-For`/`-Proto`/`-Host`, `Otoroshi-Request-Id`,
//!   `Otoroshi-State`, `Otoroshi-Claim`) arrives at most once, so a client's copy cannot ride
//!   along beside Torii's, and `X-Forwarded-For` is one IP address (the peer), not a list;
//! * a spoofable header Torii never writes (`Otoroshi-Client-Id`, `Forwarded`, `X-Real-IP`, …)
//!   never arrives, and neither does a name with `_` (which CGI/WSGI stacks read as `-`).
#![allow(dead_code, clippy::unwrap_used)]

use serde_json::Value;

use super::Response;

/// Header names Torii sets on the upstream request: at most one line each.
pub const TORII_SET: [&str; 6] = [
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "otoroshi-request-id",
    "otoroshi-state",
    "otoroshi-claim",
];

/// Client headers that must never reach a backend: the names Otoroshi's engine strips from
/// clients (minus those Torii sets itself) and the forwarding headers that only an edge proxy
/// may write (docs/security.md §2).
pub const NEVER_FORWARDED: [&str; 19] = [
    "otoroshi-client-id",
    "otoroshi-client-secret",
    "otoroshi-authorization",
    "otoroshi-try-it-request-id",
    "x-forwarded-protocol",
    "raw-request-uri",
    "remote-address",
    "timeout-access",
    "tls-session-info",
    "forwarded",
    "x-real-ip",
    "true-client-ip",
    "x-client-ip",
    "x-forwarded-port",
    "x-forwarded-ssl",
    "x-forwarded-scheme",
    "x-forwarded-prefix",
    "x-original-url",
    "x-rewrite-url",
];

/// The mirror's description of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The whole JSON answer.
    pub json: Value,
    /// Every header line received, `(name as sent, value)`, in order.
    pub lines: Vec<(String, String)>,
}

impl Seen {
    /// Every value of `name` (case-insensitive), in arrival order.
    pub fn values(&self, name: &str) -> Vec<&str> {
        self.lines
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The value of `name` when it arrived exactly once; `None` when absent; fails the test
    /// when it arrived several times.
    pub fn one(&self, name: &str) -> Option<&str> {
        match self.values(name).as_slice() {
            [] => None,
            [v] => Some(v),
            more => panic!("{name} reached the backend {} times: {more:?}", more.len()),
        }
    }

    /// True when at least one line of `name` arrived.
    pub fn has(&self, name: &str) -> bool {
        !self.values(name).is_empty()
    }

    /// True when some header line (name or value) contains `needle`.
    pub fn any_line_contains(&self, needle: &str) -> bool {
        self.lines
            .iter()
            .any(|(n, v)| n.contains(needle) || v.contains(needle))
    }

    /// `json[key]`.
    pub fn get(&self, key: &str) -> &Value {
        &self.json[key]
    }
}

impl std::ops::Index<&str> for Seen {
    type Output = Value;
    fn index(&self, key: &str) -> &Value {
        &self.json[key]
    }
}

impl std::fmt::Display for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.json)
    }
}

/// Parses a mirror answer (status 200) and checks the forwarding rules of the module doc.
pub fn seen(r: &Response) -> Seen {
    assert_eq!(r.status, 200, "not a mirror answer: {}", r.text());
    seen_json(r.json())
}

/// [`seen`] on an already parsed body.
pub fn seen_json(json: Value) -> Seen {
    let lines: Vec<(String, String)> = json["header_lines"]
        .as_array()
        .unwrap_or_else(|| panic!("no header_lines in the mirror's answer: {json}"))
        .iter()
        .map(|pair| {
            let p = pair.as_array().unwrap();
            assert_eq!(p.len(), 2, "{pair}");
            (
                p[0].as_str().unwrap().to_owned(),
                p[1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let s = Seen { json, lines };
    check_object_agrees(&s);
    for name in TORII_SET {
        let n = s.values(name).len();
        assert!(
            n <= 1,
            "{name} reached the backend {n} times (a client's copy survived): {s}"
        );
    }
    if let Some(xff) = s.one("x-forwarded-for") {
        assert!(
            xff.parse::<std::net::IpAddr>().is_ok(),
            "X-Forwarded-For is not the peer's address alone: {xff:?}"
        );
    }
    for name in NEVER_FORWARDED {
        assert!(
            !s.has(name),
            "client header {name} reached the backend: {s}"
        );
    }
    for (name, _) in &s.lines {
        assert!(
            !name.contains('_'),
            "header name with '_' reached the backend: {name}"
        );
    }
    s
}

/// The `headers` object has one member per name, whose value is its lines joined by ", ".
fn check_object_agrees(s: &Seen) {
    let obj = s.json["headers"]
        .as_object()
        .unwrap_or_else(|| panic!("no headers object: {s}"));
    let mut names: Vec<String> = s
        .lines
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .collect();
    names.sort();
    names.dedup();
    let mut keys: Vec<String> = obj.keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, names, "headers object and header_lines differ: {s}");
    for name in names {
        assert_eq!(
            obj[&name].as_str().unwrap(),
            s.values(&name).join(", "),
            "{name}: {s}"
        );
    }
}
