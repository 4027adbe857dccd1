//! TOML text → [`RawConfig`], reporting every unknown key and every wrong type of a file at once.
//!
//! serde stops at the first problem, so this module loops: deserialize the document; on a
//! failure, record it (key path, message, "did you mean" for a misspelt key), remove the key it
//! concerns from the document, and deserialize again, until the rest of the file reads. Each
//! round removes a key, so the loop ends; it is bounded by the number of keys anyway. The
//! removed paths are returned so that validation does not report the same keys again as
//! missing. Syntax errors stop everything (the rest of the file cannot be read), with their
//! line and column. Messages never quote the file's text (a misplaced secret could be there):
//! only positions, key names and the deserializer's words, with quoted strings removed. The
//! file's text itself is read here too ([`read_bounded`]: at most `defaults::MAX_FILE_BYTES`).

use serde_path_to_error::Segment;
use toml_edit::{DocumentMut, ImDocument, Item};

use super::error::{index, join, one_line, redact, ConfigError, ConfigErrors};
use super::location::{line_col, KeyLocations};
use super::raw::RawConfig;
use super::schema::{did_you_mean, keys_of_table};
use std::path::Path;

/// Most unknown keys and wrong types reported for one file: each costs a new pass over the
/// document, and past this many the file is not what its author thinks anyway.
const MAX_REPORTED: usize = 100;

/// A file read as far as it could be.
#[derive(Debug)]
pub(crate) struct Parsed {
    /// The file without the keys that failed to read.
    pub raw: RawConfig,
    /// One error per unknown key or value of the wrong type, in file order of discovery.
    pub errors: Vec<ConfigError>,
    /// The key paths removed from the document (validation errors at or under them are noise).
    pub removed: Vec<String>,
    /// Where every key is written.
    pub locations: KeyLocations,
}

/// Parses `text`. `Err` for a TOML syntax error (nothing else can be read then), or for a
/// failure that names no key that could be removed (the errors found so far are returned).
pub(crate) fn parse(text: &str) -> Result<Parsed, ConfigErrors> {
    let im = ImDocument::parse(text).map_err(|e| {
        let message = one_line(e.message());
        let m = match e.span() {
            Some(s) => {
                let (l, c) = line_col(text, syntax_error_offset(text, s.start, &message));
                format!("invalid TOML at line {l}, column {c}: {message}")
            }
            None => format!("invalid TOML: {message}"),
        };
        ConfigErrors::single("", m)
    })?;
    let locations = KeyLocations::of_document(text, im.as_table());
    let mut doc: DocumentMut = im.into_mut();
    let mut errors = Vec::new();
    let mut removed = Vec::new();
    // Each failed round removes one key; a file has fewer keys than bytes.
    for _ in 0..=text.len() {
        if errors.len() == MAX_REPORTED {
            errors.push(ConfigError::new(
                "",
                format!("more than {MAX_REPORTED} unknown keys or wrong types: the first {MAX_REPORTED} are shown"),
            ));
            break;
        }
        let de = toml_edit::de::Deserializer::from(doc.clone());
        let err = match serde_path_to_error::deserialize::<_, RawConfig>(de) {
            Ok(raw) => {
                return Ok(Parsed {
                    raw,
                    errors,
                    removed,
                    locations,
                })
            }
            Err(e) => e,
        };
        let segments: Vec<Segment> = err.path().iter().cloned().collect();
        let message = err.inner().message().trim().to_owned();
        let (segments, error) = describe(segments, &message);
        errors.push(error);
        match remove(&mut doc, &segments) {
            Some(path) => removed.push(path),
            // Nothing could be removed: the rest cannot be read past this error.
            None => break,
        }
    }
    Err(ConfigErrors(errors))
}

/// Where to report a syntax error that the parser found at `offset`: the line the user must
/// edit. An array left open (`targets = ["http://a"` with no `]`) is only noticed at the next
/// token, which may be lines further down (after blank lines and comments, at the next key or
/// `[table]`); when the array's last value ends an earlier line, the `]` belongs right after it,
/// so the error is placed there. Anywhere else (a value expected after `,` or `[`, any other
/// error) the parser's offset stands.
fn syntax_error_offset(text: &str, offset: usize, message: &str) -> usize {
    if !message.starts_with("invalid array") || !message.contains("`]`") {
        return offset;
    }
    let offset = offset.min(text.len());
    let Some(head) = text.get(..offset) else {
        return offset;
    };
    let line_start = head.rfind('\n').map_or(0, |nl| nl + 1);
    if !head[line_start..].trim().is_empty() {
        // Something precedes the token on its own line: that line is the one to edit.
        return offset;
    }
    let mut end = line_start;
    while end > 0 {
        // `end` is the start of a line: look at the line before it.
        let before = &text[..end - 1];
        let start = before.rfind('\n').map_or(0, |nl| nl + 1);
        let line = &before[start..];
        let significant = line[..comment_start(line)].trim_end();
        if !significant.is_empty() {
            if significant.ends_with([',', '[']) {
                return offset;
            }
            return start + significant.len();
        }
        end = start;
    }
    offset
}

/// Where the comment of one TOML line starts (its length when it has none): the first `#`
/// outside a basic (`"…"`, with `\` escapes) or literal (`'…'`) string.
fn comment_start(line: &str) -> usize {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, ch) in line.char_indices() {
        match quote {
            Some('"') if escaped => escaped = false,
            Some('"') if ch == '\\' => escaped = true,
            Some(q) if ch == q => quote = None,
            Some(_) => {}
            None if ch == '#' => return i,
            None if ch == '"' || ch == '\'' => quote = Some(ch),
            None => {}
        }
    }
    line.len()
}

/// The error for one deserializer failure at `segments`, and the segments of the key to remove
/// before trying again.
fn describe(mut segments: Vec<Segment>, message: &str) -> (Vec<Segment>, ConfigError) {
    if let Some(key) = unknown_field(message) {
        // serde_path_to_error includes the offending key on some paths, not on others.
        let last_is_key = matches!(segments.last(), Some(Segment::Map { key: k }) if k == key);
        if !last_is_key {
            segments.push(Segment::Map {
                key: key.to_owned(),
            });
        }
        let path = format_path(&segments);
        let table = format_path(&segments[..segments.len() - 1]);
        let candidates = keys_of_table(&table);
        let message = match did_you_mean(key, &candidates) {
            Some(near) => format!("unknown key (did you mean `{near}`?)"),
            None => "unknown key".to_owned(),
        };
        return (segments, ConfigError::new(path, message));
    }
    let path = format_path(&segments);
    let message = redact(message);
    if path.is_empty() {
        return (
            segments,
            ConfigError::new("", format!("invalid file: {message}")),
        );
    }
    (segments, ConfigError::new(path, message))
}

/// The key name in serde's "unknown field `x`, expected …" message.
fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.find('`').map(|end| &rest[..end])
}

/// Removes the key `segments` names (for an array element, the key holding the array) and
/// returns its path; `None` when no such key exists.
fn remove(doc: &mut DocumentMut, segments: &[Segment]) -> Option<String> {
    let last_key = segments
        .iter()
        .rposition(|s| matches!(s, Segment::Map { .. }))?;
    let Segment::Map { key } = &segments[last_key] else {
        return None;
    };
    let mut item: &mut Item = doc.as_item_mut();
    for seg in &segments[..last_key] {
        item = match seg {
            Segment::Map { key } => item.as_table_like_mut()?.get_mut(key)?,
            Segment::Seq { index } => item.get_mut(*index)?,
            Segment::Enum { .. } | Segment::Unknown => return None,
        };
    }
    item.as_table_like_mut()?.remove(key)?;
    Some(format_path(&segments[..=last_key]))
}

/// Formats segments as `routes[2].challenge.ttl`.
fn format_path(segments: &[Segment]) -> String {
    let mut out = String::new();
    for seg in segments {
        match seg {
            Segment::Seq { index: i } => out = index(&out, *i),
            Segment::Map { key } => out = join(&out, key),
            Segment::Enum { variant } => out = join(&out, variant),
            Segment::Unknown => out = join(&out, "?"),
        }
    }
    out
}

/// Whether a validation error at `path` concerns a key that failed to read (`removed`): the
/// same key or one inside it.
pub(crate) fn is_under_removed(path: &str, removed: &[String]) -> bool {
    removed.iter().any(|r| {
        path == r
            || path
                .strip_prefix(r.as_str())
                .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
    })
}

/// The file's text, or one line saying why it cannot be had.
pub(super) fn read_bounded(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let shown = path.display();
    let cannot = |e: std::io::Error| format!("cannot read {shown}: {}", super::io_reason(&e));
    let file = std::fs::File::open(path).map_err(cannot)?;
    let mut text = String::new();
    let mut limited = file.take(super::defaults::MAX_FILE_BYTES + 1);
    limited.read_to_string(&mut text).map_err(cannot)?;
    if text.len() as u64 > super::defaults::MAX_FILE_BYTES {
        return Err(format!(
            "{shown} is larger than {} bytes",
            super::defaults::MAX_FILE_BYTES
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(text: &str) -> Vec<String> {
        match parse(text) {
            Ok(p) => p.errors.iter().map(ToString::to_string).collect(),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn every_unknown_key_and_wrong_type_is_reported() {
        let text = "[gateway]\nworkerz = 2\nhttp = 5\ndrain_timeout = \"1s\"\n[limits]\nmax_headers = \"x\"\nkeepalive_timeout = 3\n[[routes]]\nid = \"a\"\ndomainz = [\"a\"]\n[routes.challenge]\ntll = \"5s\"\nsecret = 7\n";
        assert_eq!(
            messages(text),
            [
                "gateway.workerz: unknown key (did you mean `workers`?)",
                "gateway.http: invalid type: integer, expected a sequence",
                "limits.max_headers: invalid type: string, expected i64",
                "routes[0].domainz: unknown key (did you mean `domains`?)",
                "routes[0].challenge.tll: unknown key (did you mean `ttl`?)",
                "routes[0].challenge.secret: invalid type: integer, expected a string",
            ]
        );
        let p = parse(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.raw.routes[0].id.as_deref(), Some("a"));
        assert!(p.removed.contains(&"gateway.http".to_owned()));
    }

    #[test]
    fn a_wrong_element_removes_its_array() {
        let p = parse("[gateway]\nhttp = [\"127.0.0.1:1\", 2]\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.errors.len(), 1);
        assert_eq!(p.errors[0].path, "gateway.http[1]");
        assert_eq!(p.removed, ["gateway.http"]);
        assert!(is_under_removed("gateway.http", &p.removed));
        assert!(is_under_removed("gateway.http[0]", &p.removed));
        assert!(!is_under_removed("gateway.https", &p.removed));
    }

    #[test]
    fn the_report_stops_after_a_hundred_problems() {
        let text: String = (0..150).map(|i| format!("bogus{i} = 1\n")).collect();
        let e = match parse(&text) {
            Err(e) => e.0,
            Ok(p) => panic!("{:?}", p.errors),
        };
        assert_eq!(e.len(), MAX_REPORTED + 1);
        assert!(
            e[MAX_REPORTED].message.starts_with("more than 100"),
            "{e:?}"
        );
    }

    #[test]
    fn far_from_every_key_gets_no_suggestion() {
        assert_eq!(
            messages("[gateway]\ncolour = 1\n"),
            ["gateway.colour: unknown key"]
        );
        assert_eq!(messages("bogus = 1\n[gateway]\n"), ["bogus: unknown key"]);
    }
}
