//! The path a route sends upstream and the `Location` of its redirects, in request-path form.
//!
//! [`path_for_upstream`] applies, in this order, `strip_prefix` (the matched prefix is
//! removed), `rewrite` (the first match of its regex in what is left is replaced), and
//! `target_root` (put in front). Its input is the canonical path routing matched, so without a
//! rewrite the result is canonical by construction; a rewrite can put anything its groups
//! carry next to its literals, so the result is checked ([`is_canonical`]) and a result with
//! a `.` or `..` segment, `//`, or a byte no canonical path holds is refused
//! ([`PathRefused`]): the request must then be answered 400, never sent. The caller's
//! [`RewriteScratch`] holds the regex's capture slots so that a rewrite allocates nothing
//! once warm.

use regex::bytes::CaptureLocations;

use super::template::{render_value, write_escaped, CompiledTemplate, Context, Vars};
use super::CompiledRules;
use crate::config::RewritePart;

/// A rewrite made the path something no canonical path is: the request is refused (400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathRefused;

impl std::fmt::Display for PathRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the route's rewrite made a path that is not canonical")
    }
}

/// How many routes' capture slots a [`RewriteScratch`] keeps.
const CACHED_ROUTES: usize = 16;

/// Per-worker reusable state of rewrites: the capture slots of the last regexes used (by
/// rules identity) and a buffer. Allocates when a route's regex is first seen (or seen again
/// after 16 others), never in the steady state.
#[derive(Debug, Default)]
pub struct RewriteScratch {
    slots: Vec<(u64, CaptureLocations)>,
    input: Vec<u8>,
}

impl RewriteScratch {
    fn slots_for(
        &mut self,
        rules: &CompiledRules,
        re: &regex::bytes::Regex,
    ) -> &mut CaptureLocations {
        let at = match self.slots.iter().position(|(id, _)| *id == rules.id) {
            Some(at) => at,
            None => {
                if self.slots.len() >= CACHED_ROUTES {
                    self.slots.remove(0);
                }
                self.slots.push((rules.id, re.capture_locations()));
                self.slots.len() - 1
            }
        };
        &mut self.slots[at].1
    }

    /// How many routes' capture slots are kept.
    #[cfg(test)]
    pub(super) fn slots_len(&self) -> usize {
        self.slots.len()
    }
}

/// The compiled `rewrite`.
#[derive(Debug, Clone)]
pub struct CompiledRewrite {
    /// `from`.
    pub from: regex::bytes::Regex,
    /// `to`, literals as bytes.
    pub to: Box<[CompiledPart]>,
}

/// One part of a compiled replacement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompiledPart {
    /// Bytes.
    Literal(Box<[u8]>),
    /// A group of `from`.
    Group(usize),
}

impl CompiledRewrite {
    /// The compiled form of a validated rewrite.
    pub fn build(spec: &crate::config::RewriteSpec) -> Self {
        let to = spec
            .to
            .iter()
            .map(|p| match p {
                RewritePart::Literal(l) => CompiledPart::Literal(l.as_bytes().into()),
                RewritePart::Group(g) => CompiledPart::Group(*g),
            })
            .collect();
        CompiledRewrite {
            from: spec.from.clone(),
            to,
        }
    }
}

/// Writes into `out` (cleared first) the path the backend receives for `canonical_path`
/// (query excluded), which routing matched with the prefix `matched_prefix`. `Err`: the
/// rewrite's result is not canonical (answer 400). Never panics, whatever the inputs.
pub fn path_for_upstream(
    canonical_path: &[u8],
    matched_prefix: &[u8],
    rules: &CompiledRules,
    scratch: &mut RewriteScratch,
    out: &mut Vec<u8>,
) -> Result<(), PathRefused> {
    out.clear();
    // Owned input only for a prefix matched at a ';' boundary; taken out of the scratch so
    // that the scratch's capture slots can be borrowed beside it.
    let mut own = std::mem::take(&mut scratch.input);
    own.clear();
    let input: &[u8] = if rules.strip_prefix && canonical_path.starts_with(matched_prefix) {
        let rest = canonical_path
            .get(matched_prefix.len()..)
            .unwrap_or_default();
        if rest.is_empty() {
            b"/"
        } else if rest.starts_with(b"/") {
            rest
        } else if matched_prefix.ends_with(b"/") {
            // The prefix's own trailing '/' starts what is left.
            canonical_path
                .get(matched_prefix.len() - 1..)
                .unwrap_or(b"/")
        } else {
            // A prefix matched at a ';' boundary: "/" then the parameter.
            own.push(b'/');
            own.extend_from_slice(rest);
            &own
        }
    } else {
        canonical_path
    };
    out.extend_from_slice(&rules.target_root);
    match &rules.rewrite {
        None => out.extend_from_slice(input),
        Some(rw) => rewrite_into(rw, input, scratch.slots_for(rules, &rw.from), out),
    }
    scratch.input = own;
    check(out)
}

/// Appends `input` with the first match of the rewrite replaced.
fn rewrite_into(
    rw: &CompiledRewrite,
    input: &[u8],
    locs: &mut CaptureLocations,
    out: &mut Vec<u8>,
) {
    let Some(m) = rw.from.captures_read(locs, input) else {
        out.extend_from_slice(input);
        return;
    };
    out.extend_from_slice(input.get(..m.start()).unwrap_or_default());
    for part in rw.to.iter() {
        match part {
            CompiledPart::Literal(l) => out.extend_from_slice(l),
            CompiledPart::Group(g) => {
                if let Some((s, e)) = locs.get(*g) {
                    out.extend_from_slice(input.get(s..e).unwrap_or_default());
                }
            }
        }
    }
    out.extend_from_slice(input.get(m.end()..).unwrap_or_default());
}

fn check(out: &[u8]) -> Result<(), PathRefused> {
    if is_canonical(out) {
        Ok(())
    } else {
        Err(PathRefused)
    }
}

/// Whether `path` is one a canonical request path could be: starts with `/`, visible ASCII
/// without `?`, `#`, `\`, no empty segment but a trailing one, no `.` or `..` segment (nor
/// their percent-encoded spellings), no `%2F`, `%5C` or `%00`.
pub fn is_canonical(path: &[u8]) -> bool {
    let Some(rest) = path.strip_prefix(b"/") else {
        return false;
    };
    if path
        .iter()
        .any(|&b| !(0x21..0x7f).contains(&b) || matches!(b, b'?' | b'#' | b'\\'))
    {
        return false;
    }
    let mut segments = rest.split(|&b| b == b'/').peekable();
    while let Some(seg) = segments.next() {
        let last = segments.peek().is_none();
        if seg.is_empty() && !last {
            return false;
        }
        let base = seg.split(|&b| b == b';').next().unwrap_or_default();
        if is_dots(base) {
            return false;
        }
    }
    !contains_ci(path, b"%2f") && !contains_ci(path, b"%5c") && !contains_ci(path, b"%00")
}

/// `.`, `..`, or either with `%2e` spellings.
fn is_dots(seg: &[u8]) -> bool {
    let mut dots = 0;
    let mut i = 0;
    while i < seg.len() {
        if seg[i] == b'.' {
            i += 1;
        } else if seg
            .get(i..i + 3)
            .is_some_and(|s| s.eq_ignore_ascii_case(b"%2e"))
        {
            i += 3;
        } else {
            return false;
        }
        dots += 1;
    }
    dots == 1 || dots == 2
}

fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// The compiled `redirect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledRedirect {
    /// `to`.
    pub to: CompiledTemplate,
    /// The status.
    pub status: u16,
}

/// Appends the `Location` of `redirect` for a request to `host` (canonical), `path`
/// (canonical, as the client asked, before any rule) and `query` (without `?`, empty when
/// none) to `out`. Variable bytes that do not belong in a URL are percent-encoded.
pub fn redirect_location(
    redirect: &CompiledRedirect,
    host: &[u8],
    path: &[u8],
    query: &[u8],
    out: &mut Vec<u8>,
) {
    let vars = Vars {
        host,
        path,
        query,
        ..Vars::default()
    };
    render_value(&redirect.to, &vars, Context::Url, out);
}

/// Appends the `Location` of `force_https`: `https://` + the request's `Host` value as sent
/// (port included, `host_header`) + the canonical path + `?query` when there is one.
/// Bytes that do not belong in a URL are percent-encoded.
pub fn https_location(host_header: &[u8], path: &[u8], query: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b"https://");
    write_escaped(host_header, Context::Url, out);
    write_escaped(path, Context::Url, out);
    if !query.is_empty() {
        out.push(b'?');
        write_escaped(query, Context::Url, out);
    }
}
