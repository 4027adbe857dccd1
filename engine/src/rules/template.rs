//! Values with variables, in request-path form: [`CompiledTemplate`] (literal bytes and
//! [`Var`]s, split once per load), the per-request [`Vars`], [`render_value`], and the header
//! rules of one side ([`HeaderOps`]) built from them.
//!
//! A variable's value comes from the request (the path, the host, a token's `sub`) or the
//! configuration (an API key's name): bytes of it that could end a header line or a URL
//! (control characters, non-ASCII, and spaces in a `Location`) are written percent-encoded
//! (`%0D`), so no value can inject a line. Nothing here allocates beyond the caller's buffer.

use crate::config::{HeaderRulesSpec, Template, TemplatePart, Var};

/// A name → value pair of bytes (a header check, a wildcard origin's suffix and port).
pub type BytePair = (Box<[u8]>, Box<[u8]>);

/// One part of a compiled value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Bytes written as they are (validated at load: visible ASCII and spaces).
    Literal(Box<[u8]>),
    /// A value known per request.
    Var(Var),
}

/// A value template, split at load.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompiledTemplate {
    parts: Box<[Part]>,
}

impl CompiledTemplate {
    /// The compiled form of a validated template.
    pub fn build(t: &Template) -> Self {
        let parts = t
            .parts
            .iter()
            .map(|p| match p {
                TemplatePart::Literal(l) => Part::Literal(l.as_bytes().into()),
                TemplatePart::Var(v) => Part::Var(*v),
            })
            .collect();
        CompiledTemplate { parts }
    }

    /// The parts, in order.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }
}

/// The per-request values of the variables; an absent one renders as nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Vars<'a> {
    /// `${client_ip}`: the client's address as text.
    pub client_ip: &'a [u8],
    /// `${route_id}`.
    pub route_id: &'a [u8],
    /// `${request_id}`.
    pub request_id: &'a [u8],
    /// `${apikey.client_id}`.
    pub apikey_client_id: &'a [u8],
    /// `${apikey.name}`.
    pub apikey_name: &'a [u8],
    /// `${token.sub}`.
    pub token_sub: &'a [u8],
    /// `${host}`: the canonical host.
    pub host: &'a [u8],
    /// `${path}`: the canonical path.
    pub path: &'a [u8],
    /// The query, without its `?` (`${query}` renders `?` and it, or nothing when empty).
    pub query: &'a [u8],
}

impl<'a> Vars<'a> {
    fn get(&self, v: Var) -> &'a [u8] {
        match v {
            Var::ClientIp => self.client_ip,
            Var::RouteId => self.route_id,
            Var::RequestId => self.request_id,
            Var::ApikeyClientId => self.apikey_client_id,
            Var::ApikeyName => self.apikey_name,
            Var::TokenSub => self.token_sub,
            Var::Host => self.host,
            Var::Path => self.path,
            Var::Query => self.query,
        }
    }
}

/// Where a rendered value goes, which decides the bytes a variable may write as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// A header value: visible ASCII and spaces.
    Header,
    /// A URL (`Location`): visible ASCII.
    Url,
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Appends `template` rendered with `vars` to `out` (not cleared).
pub fn render_value(template: &CompiledTemplate, vars: &Vars<'_>, ctx: Context, out: &mut Vec<u8>) {
    for part in template.parts() {
        match part {
            Part::Literal(l) => out.extend_from_slice(l),
            Part::Var(Var::Query) => {
                if !vars.query.is_empty() {
                    out.push(b'?');
                    write_escaped(vars.query, ctx, out);
                }
            }
            Part::Var(v) => write_escaped(vars.get(*v), ctx, out),
        }
    }
}

/// Appends `value`, percent-encoding what `ctx` does not allow as is.
pub(super) fn write_escaped(value: &[u8], ctx: Context, out: &mut Vec<u8>) {
    let lowest = match ctx {
        Context::Header => 0x20,
        Context::Url => 0x21,
    };
    for &b in value {
        if (lowest..0x7f).contains(&b) {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
}

/// One side's header rules (`request_headers` or `response_headers`): names lowercase bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderOps {
    /// Replace every line of the name.
    pub set: Box<[(Box<[u8]>, CompiledTemplate)]>,
    /// Write only when no line of the name is there.
    pub set_if_missing: Box<[(Box<[u8]>, CompiledTemplate)]>,
    /// Write one more line.
    pub add: Box<[(Box<[u8]>, CompiledTemplate)]>,
    /// Remove every line of the name.
    pub remove: Box<[Box<[u8]>]>,
}

impl HeaderOps {
    /// The compiled form of a validated side.
    pub fn build(spec: &HeaderRulesSpec) -> Self {
        let ops = |list: &[(String, Template)]| -> Box<[(Box<[u8]>, CompiledTemplate)]> {
            list.iter()
                .map(|(n, t)| (n.as_bytes().into(), CompiledTemplate::build(t)))
                .collect()
        };
        HeaderOps {
            set: ops(&spec.set),
            set_if_missing: ops(&spec.set_if_missing),
            add: ops(&spec.add),
            remove: spec.remove.iter().map(|n| n.as_bytes().into()).collect(),
        }
    }

    /// Whether no operation is configured.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
            && self.set_if_missing.is_empty()
            && self.add.is_empty()
            && self.remove.is_empty()
    }

    /// Whether an incoming line named `name` (any case) is dropped: `set` and `remove` names.
    pub fn drops(&self, name: &[u8]) -> bool {
        self.set.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
            || self.remove.iter().any(|n| n.eq_ignore_ascii_case(name))
    }

    /// Appends the lines the rules write, `name: value\r\n` each: every `set`, each
    /// `set_if_missing` whose name `present` denies, every `add`.
    pub fn write_lines(&self, vars: &Vars<'_>, present: impl Fn(&[u8]) -> bool, out: &mut Vec<u8>) {
        let missing = self.set_if_missing.iter().filter(|(n, _)| !present(n));
        for (name, t) in self.set.iter().chain(missing).chain(self.add.iter()) {
            out.extend_from_slice(name);
            out.extend_from_slice(b": ");
            render_value(t, vars, Context::Header, out);
            out.extend_from_slice(b"\r\n");
        }
    }
}
