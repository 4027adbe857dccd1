//! Validation of a route's header rules: `request_headers` and `response_headers` (`set`,
//! `set_if_missing`, `add`, `remove`) and `header_checks`.
//!
//! Owns the refusal of rules that touch a header Torii owns. On the way to the backend: the
//! framing and hop-by-hop headers (`Content-Length`, `Transfer-Encoding`, `Connection`,
//! `Keep-Alive`, `TE`, `Trailer`, `Upgrade`, `Proxy-*`), `Expect`, `Host` (`preserve_host`
//! says which one goes), the forwarding headers Torii writes (`X-Forwarded-For`, `-Proto`,
//! `-Host`), the Otoroshi protocol's names it removes from every request
//! (`Otoroshi-Request-Id`, `Otoroshi-State`, `Otoroshi-Claim`…), and the route's own challenge
//! and info-token header names. On the way back: the framing and hop-by-hop headers and the
//! challenge's answer header. Names compare case-insensitively and with `_` read as `-`, as
//! CGI-style backends read them. No IO.

use std::collections::BTreeMap;

use super::error::{join, Collector};
use super::fields::is_token;
use super::raw_rules::RawHeaderRules;
use super::rules_spec::{HeaderRulesSpec, Template, Var};
use super::validate_rule_values::template;
use super::{ChallengeSpec, InfoTokenSpec};
use crate::http1::{eq_name_dashed, HeaderKind};

/// The variables a header value may name.
const HEADER_VARS: [Var; 8] = [
    Var::ClientIp,
    Var::RouteId,
    Var::RequestId,
    Var::ApikeyClientId,
    Var::ApikeyName,
    Var::TokenSub,
    Var::Host,
    Var::Path,
];

/// The header names a route's security sections write, which its rules may not touch.
#[derive(Debug, Default)]
pub(super) struct Owned {
    /// `[routes.challenge] request_header`.
    pub challenge_request: Option<String>,
    /// `[routes.challenge] response_header`.
    pub challenge_response: Option<String>,
    /// `[routes.info_token] header`.
    pub info_token: Option<String>,
}

impl Owned {
    /// The names of `challenge` and `info_token`, when on.
    pub(super) fn of(
        challenge: Option<&ChallengeSpec>,
        info_token: Option<&InfoTokenSpec>,
    ) -> Self {
        Owned {
            challenge_request: challenge.map(|c| c.request_header.clone()),
            challenge_response: challenge.map(|c| c.response_header.clone()),
            info_token: info_token.map(|i| i.header.clone()),
        }
    }

    /// Why Torii owns `name` (lowercase) on the request (`request`) or response side.
    fn reason(&self, name: &str, request: bool) -> Option<String> {
        let b = name.as_bytes();
        let same = |o: &Option<String>| {
            o.as_deref()
                .is_some_and(|o| eq_name_dashed(b, o.as_bytes()))
        };
        let kind = if name.contains('_') {
            HeaderKind::classify_dashed(b)
        } else {
            HeaderKind::classify(b)
        };
        if kind == HeaderKind::ContentLength || kind.is_hop_by_hop() {
            return Some(
                "Torii writes the message framing and the hop-by-hop headers itself".to_owned(),
            );
        }
        if !request {
            return same(&self.challenge_response).then(|| {
                "it is the challenge's response_header, which Torii reads and removes".to_owned()
            });
        }
        if same(&self.challenge_request) {
            return Some("it is the challenge's request_header, which Torii writes".to_owned());
        }
        if same(&self.info_token) {
            return Some("it is the info token's header, which Torii writes".to_owned());
        }
        match kind {
            HeaderKind::Host => Some("Torii writes Host: use preserve_host = true to send the client's".to_owned()),
            HeaderKind::Expect => Some("Torii answers Expect itself and never forwards it".to_owned()),
            HeaderKind::XForwardedFor | HeaderKind::XForwardedProto | HeaderKind::XForwardedHost => {
                Some("Torii writes the X-Forwarded-For, -Proto and -Host headers itself".to_owned())
            }
            HeaderKind::OtoroshiSpoofable => Some(
                "it is a name of Otoroshi's protocol that Torii removes from every request and writes itself (Otoroshi-Request-Id, Otoroshi-State, Otoroshi-Claim…)".to_owned(),
            ),
            _ => None,
        }
    }
}

/// `request_headers` (`request`) or `response_headers` at `path`.
pub(super) fn header_rules(
    c: &mut Collector,
    path: &str,
    raw: &RawHeaderRules,
    owned: &Owned,
    request: bool,
) -> HeaderRulesSpec {
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut ops = |c: &mut Collector, key: &str, map: &Option<BTreeMap<String, String>>| {
        let mut out = Vec::new();
        for (name, value) in map.iter().flatten() {
            let at = join(&join(path, key), name);
            let Some(lower) = name_checked(c, &at, name, owned, request, key, &mut seen) else {
                continue;
            };
            if let Some(t) = value_checked(c, &at, value) {
                out.push((lower, t));
            }
        }
        out
    };
    let set = ops(c, "set", &raw.set);
    let set_if_missing = ops(c, "set_if_missing", &raw.set_if_missing);
    let add = ops(c, "add", &raw.add);
    let mut remove = Vec::new();
    for (i, name) in raw.remove.iter().flatten().enumerate() {
        let at = super::error::index(&join(path, "remove"), i);
        if let Some(lower) = name_checked(c, &at, name, owned, request, "remove", &mut seen) {
            remove.push(lower);
        }
    }
    HeaderRulesSpec {
        set,
        set_if_missing,
        add,
        remove,
    }
}

/// A header name of operation `op`: a token, not owned, not already used by an operation of
/// the same table (two operations on one name contradict each other). Lowercase.
fn name_checked(
    c: &mut Collector,
    at: &str,
    name: &str,
    owned: &Owned,
    request: bool,
    op: &str,
    seen: &mut Vec<(String, String)>,
) -> Option<String> {
    if !is_token(name) {
        c.push(at, format!("{name:?} is not a valid HTTP header name"));
        return None;
    }
    let lower = name.to_ascii_lowercase();
    if let Some(why) = owned.reason(&lower, request) {
        let side = if request { "request" } else { "response" };
        c.push(
            at,
            format!("{name:?} cannot be changed by a {side} rule: {why}"),
        );
        return None;
    }
    if let Some((_, first)) = seen.iter().find(|(n, _)| *n == lower) {
        c.push(
            at,
            format!("{name:?} is already in {first}: one operation per header name"),
        );
        return None;
    }
    seen.push((lower.clone(), op.to_owned()));
    Some(lower)
}

/// A header value: visible ASCII and spaces, no blank at either end, with header variables.
fn value_checked(c: &mut Collector, at: &str, value: &str) -> Option<Template> {
    if value.starts_with([' ', '\t']) || value.ends_with([' ', '\t']) {
        c.push(
            at,
            "a header value must not start or end with a space (it would be trimmed)",
        );
        return None;
    }
    c.check(at, template(value, &HEADER_VARS, true))
}

/// `header_checks = { "X-Tenant" = "acme" }`: lowercase names, exact values.
pub(super) fn header_checks(
    c: &mut Collector,
    path: &str,
    raw: &BTreeMap<String, String>,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (name, value) in raw {
        let at = join(path, name);
        let lower = name.to_ascii_lowercase();
        if !is_token(name) {
            c.push(at, format!("{name:?} is not a valid HTTP header name"));
        } else if out.iter().any(|(n, _)| *n == lower) {
            c.push(
                at,
                format!("{name:?} is checked twice (names are case-insensitive)"),
            );
        } else if value.is_empty() || value.bytes().any(|b| !(0x20..0x7f).contains(&b)) {
            c.push(
                at,
                "the value must be non-empty visible ASCII (spaces allowed)",
            );
        } else if value.starts_with(' ') || value.ends_with(' ') {
            c.push(
                at,
                "the value must not start or end with a space (header values are trimmed)",
            );
        } else {
            out.push((lower, value.clone()));
        }
    }
    out
}
