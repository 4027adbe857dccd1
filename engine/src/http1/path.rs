//! The canonical request path: the one form of a path that routing matches and the backend
//! receives, so that the gateway and the backend never disagree on which resource a request
//! names.
//!
//! A review found `/public/../private/secret.txt` routed by a `/public` prefix (no API key)
//! and served as `/private/secret.txt` by a backend that resolves dot segments (Python's
//! `http.server`, Tomcat, nginx, most file servers): an API-key bypass. The fix is to decide,
//! before routing, what the path means, and to send exactly that upstream.
//!
//! [`canonicalize_path`] applies, in one pass and without allocating beyond the caller's
//! reusable buffer:
//! - percent-encoded **unreserved** characters (RFC 3986 §2.3: `A-Z a-z 0-9 - . _ ~`) are
//!   decoded (`%70rivate` → `private`, `%2e` → `.`); every other percent-encoding is kept, its
//!   hex digits upper-cased (RFC 3986 §6.2.2.1);
//! - `.` and `..` segments are resolved as RFC 3986 §5.2.4 `remove_dot_segments` does, in raw
//!   and encoded forms (`%2e%2E` is `..`);
//! - repeated slashes are merged (`/a//b` → `/a/b`) when asked (the default; nginx's
//!   `merge_slashes on`).
//!
//! And it refuses, so that the request is answered 400, what has no single meaning across
//! backends:
//! - an encoded `/` (`%2F`) or `\` (`%5C`): some backends decode them into separators, others
//!   do not;
//! - a raw `\` (IIS and Windows servers read it as `/`);
//! - a NUL, raw or `%00` (C-string truncation in backends);
//! - invalid percent-encoding (`%`, `%4`, `%zz`);
//! - a `..` that climbs above the root (RFC 3986 clamps it to the root; a backend may not, so
//!   Torii refuses instead of guessing);
//! - a `;` path parameter on a `.` or `..` segment (`/..;/private`: Tomcat strips `;…` and then
//!   climbs, while every other reader sees an ordinary segment).
//!
//! The query is not part of the path and is never touched here. Pure: no IO, no clock.

use std::fmt;

/// Why a request path was refused (answered 400 before routing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathError {
    /// `%2F`: an encoded `/`.
    EncodedSlash,
    /// `%5C`: an encoded `\`.
    EncodedBackslash,
    /// A raw `\`.
    Backslash,
    /// A NUL byte, raw or `%00`.
    Nul,
    /// `%` not followed by two hex digits.
    InvalidPercentEncoding,
    /// A `..` segment above the root.
    AboveRoot,
    /// A `;` parameter on a `.` or `..` segment.
    DotSegmentParameter,
    /// The path does not start with `/` (origin-form paths always do).
    NotAbsolute,
}

impl PathError {
    /// A short reason for logs and the access log (never echoes the path).
    pub fn reason(self) -> &'static str {
        match self {
            PathError::EncodedSlash => "path.encoded_slash",
            PathError::EncodedBackslash => "path.encoded_backslash",
            PathError::Backslash => "path.backslash",
            PathError::Nul => "path.nul",
            PathError::InvalidPercentEncoding => "path.invalid_percent_encoding",
            PathError::AboveRoot => "path.above_root",
            PathError::DotSegmentParameter => "path.dot_segment_parameter",
            PathError::NotAbsolute => "path.not_absolute",
        }
    }
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for PathError {}

/// The value of one hex digit.
#[inline]
fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// RFC 3986 §2.3 unreserved characters.
#[inline]
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// True when `path` is certainly already canonical: no `%`, no `\`, no NUL, no empty segment
/// (`//`) and no segment starting with `.`. Most request paths pass this scan, and then cost
/// nothing more. A trailing `/` is fine (an empty *last* segment is kept).
#[inline]
pub fn is_plainly_canonical(path: &[u8]) -> bool {
    if path.first() != Some(&b'/') {
        return false;
    }
    let mut prev = 0u8;
    for &b in path {
        match b {
            b'%' | b'\\' | 0 => return false,
            b'/' | b'.' if prev == b'/' => return false,
            _ => {}
        }
        prev = b;
    }
    true
}

/// Writes the canonical form of `path` (an origin-form path, query excluded) into `out`
/// (cleared first) and returns whether it differs from `path`. When [`is_plainly_canonical`]
/// holds, `out` is left empty and `false` is returned: the caller uses `path` itself.
///
/// `merge_slashes` merges empty segments (`//`) except a trailing one (`/a/` keeps its slash).
/// Cost: one pass over the path; `out` grows to at most the path's length.
pub fn canonicalize_path(
    path: &[u8],
    merge_slashes: bool,
    out: &mut Vec<u8>,
) -> Result<bool, PathError> {
    out.clear();
    if is_plainly_canonical(path) {
        return Ok(false);
    }
    let Some(rest) = path.strip_prefix(b"/") else {
        return Err(PathError::NotAbsolute);
    };
    out.reserve(path.len());
    let mut segments = rest.split(|&b| b == b'/').peekable();
    while let Some(raw) = segments.next() {
        let last = segments.peek().is_none();
        // The segment is decoded after a '/' that is kept or removed below.
        let slash = out.len();
        out.push(b'/');
        decode_segment(raw, out)?;
        let segment = out.get(slash + 1..).unwrap_or_default();
        let dot = classify(segment)?;
        match dot {
            Dot::None if segment.is_empty() && !last && merge_slashes => out.truncate(slash),
            Dot::None => {}
            Dot::Current => {
                // "/a/." → "/a/": the '/' stays only when this is the last segment.
                out.truncate(if last { slash + 1 } else { slash });
            }
            Dot::Parent => {
                out.truncate(slash);
                let Some(parent) = out.iter().rposition(|&b| b == b'/') else {
                    return Err(PathError::AboveRoot);
                };
                out.truncate(if last { parent + 1 } else { parent });
            }
        }
    }
    if out.is_empty() {
        out.push(b'/');
    }
    Ok(out.as_slice() != path)
}

/// What a decoded segment is for dot-segment removal.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dot {
    None,
    Current,
    Parent,
}

/// Classifies a decoded segment; a `.`/`..` carrying a `;` parameter is refused.
fn classify(segment: &[u8]) -> Result<Dot, PathError> {
    let base = match segment.iter().position(|&b| b == b';') {
        Some(i) => {
            let base = segment.get(..i).unwrap_or_default();
            if base == b"." || base == b".." {
                return Err(PathError::DotSegmentParameter);
            }
            return Ok(Dot::None);
        }
        None => segment,
    };
    Ok(match base {
        b"." => Dot::Current,
        b".." => Dot::Parent,
        _ => Dot::None,
    })
}

/// Appends one raw segment to `out`, decoding unreserved percent-encodings and upper-casing
/// the hex digits of the others.
fn decode_segment(raw: &[u8], out: &mut Vec<u8>) -> Result<(), PathError> {
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        match b {
            b'%' => {
                let (Some(hi), Some(lo)) = (
                    raw.get(i + 1).copied().and_then(hex_value),
                    raw.get(i + 2).copied().and_then(hex_value),
                ) else {
                    return Err(PathError::InvalidPercentEncoding);
                };
                let v = hi << 4 | lo;
                match v {
                    0 => return Err(PathError::Nul),
                    b'/' => return Err(PathError::EncodedSlash),
                    b'\\' => return Err(PathError::EncodedBackslash),
                    _ if is_unreserved(v) => out.push(v),
                    _ => {
                        const HEX: &[u8; 16] = b"0123456789ABCDEF";
                        out.extend_from_slice(&[b'%', HEX[hi as usize], HEX[lo as usize]]);
                    }
                }
                i += 3;
            }
            b'\\' => return Err(PathError::Backslash),
            0 => return Err(PathError::Nul),
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "path_tests.rs"]
mod tests;
