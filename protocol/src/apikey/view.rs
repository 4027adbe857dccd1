//! What the extractors read from a request, as a trait the engine implements over its parsed
//! head (no copy), plus the parsing helpers it can use to do so: query parameters with
//! percent-decoding, `Cookie` header lookup, and HTTP Basic credential decoding.
//!
//! Every lookup says whether the name is absent, present once, or repeated ([`Occurs`]): one
//! credential must have one meaning. Frameworks disagree on which copy of a repeated field
//! they read (Flask and Go the first query value, Django and PHP the last, Python's
//! `SimpleCookie` the last cookie of a name), so a gateway that checks one copy and forwards
//! all of them lets a backend act on one it never checked. The extractors refuse a repeated
//! credential instead of choosing.
//!
//! [`SimpleRequest`] is an owned implementation for tests and for callers without a parsed head.

use std::borrow::Cow;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

/// How often a name occurs on a request, with its value when it occurs once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Occurs<T> {
    /// Not on the request.
    Absent,
    /// Exactly once, with this value.
    Once(T),
    /// More than once (whatever the values): ambiguous, refused as a credential.
    Repeated,
}

impl<T> Occurs<T> {
    /// The value when the name occurs once.
    pub fn once(self) -> Option<T> {
        match self {
            Occurs::Once(v) => Some(v),
            _ => None,
        }
    }

    /// True unless the name is absent.
    pub fn is_present(&self) -> bool {
        !matches!(self, Occurs::Absent)
    }

    /// The value mapped by `f`.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Occurs<U> {
        match self {
            Occurs::Absent => Occurs::Absent,
            Occurs::Once(v) => Occurs::Once(f(v)),
            Occurs::Repeated => Occurs::Repeated,
        }
    }

    /// Counts one more occurrence with value `v`.
    pub fn add(&mut self, v: T) {
        *self = match std::mem::replace(self, Occurs::Absent) {
            Occurs::Absent => Occurs::Once(v),
            _ => Occurs::Repeated,
        };
    }
}

impl<T> FromIterator<T> for Occurs<T> {
    /// Counts the occurrences of a name from its values.
    fn from_iter<I: IntoIterator<Item = T>>(values: I) -> Self {
        let mut found = Occurs::Absent;
        for v in values {
            found.add(v);
            if matches!(found, Occurs::Repeated) {
                break;
            }
        }
        found
    }
}

/// A read-only view of a request head.
pub trait RequestView {
    /// Header `name` (ASCII, matched case-insensitively): every field line counts.
    fn header(&self, name: &[u8]) -> Occurs<&[u8]>;
    /// Query parameter `name`, names compared after percent-decoding (`%74oken` is `token`),
    /// the value percent-decoded. See [`query_param`].
    fn query_param(&self, name: &str) -> Occurs<Cow<'_, str>>;
    /// Cookie `name`, counted over every cookie of every `Cookie` field. See [`cookie`].
    fn cookie(&self, name: &str) -> Occurs<&[u8]>;
}

/// Longest Basic credential value decoded (before base64 decoding).
pub const MAX_BASIC_LEN: usize = 4096;

/// Decodes `%XX` escapes (and `+` as a space when `plus_as_space`, for form and query values).
/// A `%` not followed by two hex digits is kept as is. Borrows when nothing needs decoding.
pub fn percent_decode(input: &[u8], plus_as_space: bool) -> Cow<'_, [u8]> {
    if !input
        .iter()
        .any(|&b| b == b'%' || (plus_as_space && b == b'+'))
    {
        return Cow::Borrowed(input);
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        match b {
            b'+' if plus_as_space => out.push(b' '),
            b'%' => {
                let hi = input.get(i + 1).and_then(|&c| hex_val(c));
                let lo = input.get(i + 2).and_then(|&c| hex_val(c));
                if let (Some(hi), Some(lo)) = (hi, lo) {
                    out.push(hi << 4 | lo);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            _ => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(out)
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// `Cow<[u8]>` to `Cow<str>`, `None` when not UTF-8.
pub fn cow_utf8(bytes: Cow<'_, [u8]>) -> Option<Cow<'_, str>> {
    match bytes {
        Cow::Borrowed(b) => std::str::from_utf8(b).ok().map(Cow::Borrowed),
        Cow::Owned(v) => String::from_utf8(v).ok().map(Cow::Owned),
    }
}

/// `Cow<str>` to `Cow<[u8]>`, without copying.
pub fn cow_bytes(s: Cow<'_, str>) -> Cow<'_, [u8]> {
    match s {
        Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
        Cow::Owned(s) => Cow::Owned(s.into_bytes()),
    }
}

/// Parameter `name` in a raw query string (`a=1&b=2`, without `?`): names and values
/// percent-decoded with `+` as space, every occurrence counted whatever its value (`a=1&a=`
/// is repeated; Otoroshi keeps the last, backends differ, so Torii refuses). A single value
/// that is not UTF-8 once decoded counts as absent. `a` alone gives the empty value.
pub fn query_param<'q>(query: &'q [u8], name: &str) -> Occurs<Cow<'q, str>> {
    let mut found = Occurs::Absent;
    for pair in query.split(|&b| b == b'&') {
        if pair.is_empty() {
            continue;
        }
        let (k, v) = match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &pair[pair.len()..]),
        };
        if percent_decode(k, true).as_ref() == name.as_bytes() {
            found.add(v);
        }
    }
    match found {
        Occurs::Once(v) => match cow_utf8(percent_decode(v, true)) {
            Some(v) => Occurs::Once(v),
            None => Occurs::Absent,
        },
        Occurs::Absent => Occurs::Absent,
        Occurs::Repeated => Occurs::Repeated,
    }
}

/// Cookie `name` over the values of every `Cookie` field (`a=1; b=2`): exact name match,
/// every occurrence counted, the value with surrounding double quotes removed (RFC 6265
/// §4.2.1). No decoding. A client sends one `Cookie` field (RFC 6265 §5.4); HTTP/2 splits it
/// into several (RFC 9113 §8.2.3), which count together.
pub fn cookie<'h>(fields: impl IntoIterator<Item = &'h [u8]>, name: &str) -> Occurs<&'h [u8]> {
    let mut found = Occurs::Absent;
    for field in fields {
        for part in field.split(|&b| b == b';') {
            let part = part.trim_ascii();
            let Some(eq) = part.iter().position(|&b| b == b'=') else {
                continue;
            };
            if part[..eq].trim_ascii() != name.as_bytes() {
                continue;
            }
            let value = part[eq + 1..].trim_ascii();
            let value = match value {
                [b'"', inner @ .., b'"'] => inner,
                v => v,
            };
            found.add(value);
        }
    }
    found
}

/// If `value` starts with `scheme` followed by a space (scheme case-insensitive, RFC 7235),
/// the rest with leading spaces removed.
pub fn strip_scheme<'v>(value: &'v [u8], scheme: &str) -> Option<&'v [u8]> {
    let n = scheme.len();
    if value.len() > n && value[..n].eq_ignore_ascii_case(scheme.as_bytes()) && value[n] == b' ' {
        Some(value[n..].trim_ascii_start())
    } else {
        None
    }
}

const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(true);
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

/// Decoded HTTP Basic credentials: `id:secret` split at the **first** `:`.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicCredentials {
    raw: Vec<u8>,
    colon: usize,
}

impl std::fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicCredentials")
            .field("id", &String::from_utf8_lossy(self.id()))
            .finish_non_exhaustive()
    }
}

impl BasicCredentials {
    /// Decodes the base64 part of a Basic value (no `Basic ` prefix): the standard or the
    /// URL-safe alphabet, padded or not. `None` when it is too long, not base64, has no `:`, or
    /// the id or the secret is empty.
    pub fn decode(b64: &[u8]) -> Option<Self> {
        let b64 = b64.trim_ascii();
        if b64.len() > MAX_BASIC_LEN {
            return None;
        }
        let engine = if b64.iter().any(|&b| b == b'-' || b == b'_') {
            &URL_SAFE_LENIENT
        } else {
            &STANDARD_LENIENT
        };
        let raw = engine.decode(b64).ok()?;
        let colon = raw.iter().position(|&b| b == b':')?;
        if colon == 0 || colon + 1 == raw.len() {
            return None;
        }
        Some(BasicCredentials { raw, colon })
    }

    /// The client id as sent.
    pub fn id(&self) -> &[u8] {
        &self.raw[..self.colon]
    }

    /// The secret as sent (may contain `:`).
    pub fn secret(&self) -> &[u8] {
        &self.raw[self.colon + 1..]
    }

    /// Id and secret form-URL-decoded, as RFC 6749 §2.3.1 asks for OAuth2 client
    /// authentication (`%3A` → `:`, `+` → space).
    pub fn oauth_decoded(&self) -> (Cow<'_, [u8]>, Cow<'_, [u8]>) {
        (
            percent_decode(self.id(), true),
            percent_decode(self.secret(), true),
        )
    }
}

/// An owned request head implementing [`RequestView`]: headers (names compared
/// case-insensitively), the raw query string and the helpers above.
#[derive(Debug, Clone, Default)]
pub struct SimpleRequest {
    /// `(name, value)` pairs in arrival order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The raw query string, without `?`.
    pub query: Vec<u8>,
}

impl SimpleRequest {
    /// An empty request.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }
    /// Sets the raw query string.
    pub fn with_query(mut self, query: &str) -> Self {
        self.query = query.as_bytes().to_vec();
        self
    }
}

impl SimpleRequest {
    fn fields<'s, 'n>(&'s self, name: &'n [u8]) -> impl Iterator<Item = &'s [u8]> + use<'s, 'n> {
        self.headers
            .iter()
            .filter(move |(n, _)| n.as_bytes().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
}

impl RequestView for SimpleRequest {
    fn header(&self, name: &[u8]) -> Occurs<&[u8]> {
        self.fields(name).collect()
    }
    fn query_param(&self, name: &str) -> Occurs<Cow<'_, str>> {
        query_param(&self.query, name)
    }
    fn cookie(&self, name: &str) -> Occurs<&[u8]> {
        cookie(self.fields(b"cookie"), name)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn percent() {
        assert_eq!(&*percent_decode(b"a%3Ab+c%2", true), b"a:b c%2");
        assert_eq!(&*percent_decode(b"a+b", false), b"a+b");
        assert!(matches!(percent_decode(b"plain", true), Cow::Borrowed(_)));
        assert_eq!(&*percent_decode(b"%zz%4", true), b"%zz%4");
        // `+` stays itself outside form values even when the input needs decoding anyway.
        assert_eq!(&*percent_decode(b"a+b%41", false), b"a+bA");
        // Hex digits in either case, and the full byte range.
        assert_eq!(
            &*percent_decode(b"%2f%2F%aA%fF%00", false),
            b"//\xaa\xff\x00"
        );
        assert_eq!(&*percent_decode(b"%g0%0g", false), b"%g0%0g");
    }

    #[test]
    fn basic_length_bound() {
        // "id:" followed by a secret, base64 exactly MAX_BASIC_LEN characters long: decoded.
        let raw_len = MAX_BASIC_LEN / 4 * 3;
        let mut raw = b"id:".to_vec();
        raw.resize(raw_len, b's');
        let at_limit = STANDARD_LENIENT.encode(&raw);
        assert_eq!(at_limit.len(), MAX_BASIC_LEN);
        let creds = BasicCredentials::decode(at_limit.as_bytes()).unwrap();
        assert_eq!(creds.id(), b"id");
        assert_eq!(creds.secret().len(), raw_len - 3);
        // Three more bytes, four more characters: refused before decoding.
        raw.extend_from_slice(b"sss");
        let over = STANDARD_LENIENT.encode(&raw);
        assert_eq!(over.len(), MAX_BASIC_LEN + 4);
        assert_eq!(BasicCredentials::decode(over.as_bytes()), None);
        // Surrounding blanks do not count towards the bound.
        let padded = format!("  {at_limit}  ");
        assert!(BasicCredentials::decode(padded.as_bytes()).is_some());
    }

    #[test]
    fn queries() {
        let q = b"a=1&x-api-key=first&k=v%20w&flag&e=";
        assert_eq!(query_param(q, "k"), Occurs::Once(Cow::Borrowed("v w")));
        assert_eq!(query_param(q, "x-api-key"), Occurs::Once("first".into()));
        assert_eq!(query_param(q, "flag"), Occurs::Once("".into()));
        assert_eq!(query_param(q, "e"), Occurs::Once("".into()));
        assert_eq!(query_param(q, "zz"), Occurs::Absent);
        assert_eq!(query_param(b"k=%FF", "k"), Occurs::Absent);
    }

    /// A name repeated under any spelling that decodes to it, with any values, empty ones
    /// too, is repeated: `?%74oken=forged&token=valid` must not be read as one token.
    #[test]
    fn repeated_query_names_after_decoding() {
        for q in [
            &b"x-api-key=first&x%2Dapi-key=last"[..],
            b"token=a&token=a",
            b"%74oken=f&token=v",
            b"token=v&t%6fken=",
            b"token&token=v",
            b"token=%FF&token=v",
        ] {
            let name = if q.starts_with(b"x-") {
                "x-api-key"
            } else {
                "token"
            };
            assert_eq!(query_param(q, name), Occurs::Repeated, "{q:?}");
        }
    }

    #[test]
    fn cookies() {
        let h: &[u8] = b"a=1; access_token=\"tok\" ;b=; c=second";
        assert_eq!(cookie([h], "access_token"), Occurs::Once(&b"tok"[..]));
        assert_eq!(cookie([h], "b"), Occurs::Once(&b""[..]));
        assert_eq!(cookie([h], "A"), Occurs::Absent);
        assert_eq!(cookie([&b";;=x;"[..]], "x"), Occurs::Absent);
    }

    /// Two cookies of one name, in one field or across fields, are repeated.
    #[test]
    fn repeated_cookies_across_fields() {
        let one: &[u8] = b"jwt=v; jwt=f";
        assert_eq!(cookie([one], "jwt"), Occurs::Repeated);
        let first: &[u8] = b"a=1; jwt=v";
        let second: &[u8] = b"jwt=f";
        assert_eq!(cookie([first, second], "jwt"), Occurs::Repeated);
        assert_eq!(cookie([first, second], "a"), Occurs::Once(&b"1"[..]));
        assert_eq!(
            cookie([&b"a=1"[..], b"jwt=\"v\""], "jwt"),
            Occurs::Once(&b"v"[..])
        );
    }

    #[test]
    fn simple_request_counts_every_field_line() {
        let r = SimpleRequest::new()
            .with_header("Authorization", "Bearer a")
            .with_header("authorization", "Bearer b")
            .with_header("X-One", "1")
            .with_header("Cookie", "a=1")
            .with_header("Cookie", "a=2");
        assert_eq!(r.header(b"AUTHORIZATION"), Occurs::Repeated);
        assert_eq!(r.header(b"x-one"), Occurs::Once(&b"1"[..]));
        assert_eq!(r.header(b"x-two"), Occurs::Absent);
        assert_eq!(r.cookie("a"), Occurs::Repeated);
    }

    #[test]
    fn schemes() {
        assert_eq!(strip_scheme(b"bearer  abc", "Bearer").unwrap(), b"abc");
        assert_eq!(strip_scheme(b"Bearerabc", "Bearer"), None);
        assert_eq!(strip_scheme(b"Basic", "Basic"), None);
    }
}
