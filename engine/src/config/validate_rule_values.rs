//! The value grammars the route-rule validators share: templates with `${…}` variables
//! (header values, redirect targets) and method lists (`methods`, CORS `allow_methods`).
//!
//! Owns those two grammars only, below `validate_rules`, `validate_header_ops` and
//! `validate_cors`, which all use them. No IO.

use super::error::{index, Collector};
use super::fields::is_token;
use super::rules_spec::{Template, TemplatePart, Var};

/// A value with `${name}` variables among `allowed`. Literals are visible ASCII, and spaces
/// when `spaces` (header values); a `$` not followed by `{` is a literal.
pub(super) fn template(s: &str, allowed: &[Var], spaces: bool) -> Result<Template, String> {
    let bad = |b: u8| !(if spaces { 0x20..0x7f } else { 0x21..0x7f }).contains(&b);
    if s.bytes().any(bad) {
        return Err(format!(
            "{s:?} may hold only visible ASCII characters{}",
            if spaces { " and spaces" } else { "" }
        ));
    }
    let mut parts = Vec::new();
    let mut rest = s;
    while let Some(at) = rest.find("${") {
        if at > 0 {
            parts.push(TemplatePart::Literal(rest[..at].to_owned()));
        }
        let inner = &rest[at + 2..];
        let end = inner
            .find('}')
            .ok_or_else(|| format!("{s:?}: \"${{\" without its '}}'"))?;
        let name = &inner[..end];
        match Var::ALL.iter().find(|(n, _)| *n == name) {
            Some((_, v)) if allowed.contains(v) => parts.push(TemplatePart::Var(*v)),
            _ => {
                let names: Vec<String> = allowed
                    .iter()
                    .map(|v| format!("${{{}}}", v.name()))
                    .collect();
                return Err(format!(
                    "{s:?}: unknown variable ${{{name}}} (expected {})",
                    names.join(", ")
                ));
            }
        }
        rest = &inner[end + 1..];
    }
    if !rest.is_empty() {
        parts.push(TemplatePart::Literal(rest.to_owned()));
    }
    Ok(Template { parts })
}

/// `methods`: tokens, upper case, no duplicates, not empty.
pub(super) fn methods(c: &mut Collector, path: &str, raw: Option<&[String]>) -> Vec<String> {
    let Some(list) = raw else { return Vec::new() };
    if list.is_empty() {
        c.push(
            path,
            "must not be empty (leave it out to allow every method)",
        );
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for (i, m) in list.iter().enumerate() {
        let up = m.to_ascii_uppercase();
        if !is_token(&up) {
            c.push(
                index(path, i),
                format!("{m:?} is not a method name (a token such as \"GET\")"),
            );
        } else if out.contains(&up) {
            c.push(index(path, i), format!("duplicate method {up:?}"));
        } else {
            out.push(up);
        }
    }
    out
}
