//! Configuration errors: one [`ConfigError`] per problem, each naming the key path it concerns
//! (`routes[2].challenge.ttl`), collected in [`ConfigErrors`].
//!
//! Errors say where the key is written (`(line 12, column 1)`), or the table it is missing from,
//! once [`ConfigErrors::located`] has placed them with the file's [`KeyLocations`]. Nothing here
//! quotes the source text (which could hold a literal secret): [`redact`] removes the values a
//! deserializer's message quotes.

use std::fmt;

use super::location::KeyLocations;

/// One problem in a configuration, tied to the key it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Key path in the `routes[2].challenge.ttl` style; empty for file-level problems
    /// (unreadable file, TOML syntax).
    pub path: String,
    /// What is wrong, in words. Never contains a secret value.
    pub message: String,
}

impl ConfigError {
    /// Builds an error for `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in one configuration (never empty when returned as an `Err`).
///
/// `Display` prints one error per line as `path: message`, in the order they were found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// A list holding a single error.
    pub fn single(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self(vec![ConfigError::new(path, message)])
    }

    /// The errors, in the order they were found.
    pub fn errors(&self) -> &[ConfigError] {
        &self.0
    }

    /// Appends where to look to every error whose key, or the table it belongs in, is in the
    /// file: `(line L, column C)` at a key that is written, `(missing from the table at line L,
    /// column C)` for one that is not ([`KeyLocations::describe`]). Call once per list.
    pub fn located(mut self, locations: &KeyLocations) -> Self {
        for e in &mut self.0 {
            if let Some(at) = locations.describe(&e.path) {
                e.message = format!("{} {at}", e.message);
            }
        }
        self
    }

    /// Whether an error was reported for exactly this path.
    pub fn has_path(&self, path: &str) -> bool {
        self.0.iter().any(|e| e.path == path)
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// A setup that loads but probably does not do what was meant (`torii check` prints it and
/// exits 0; `torii run` logs it at start and after each reload). Same shape as an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// Key path in the `routes[2].challenge.secret` style.
    pub path: String,
    /// What is probably wrong and what to do, in words, ending with `(line L, column C)` once
    /// placed. Never contains a secret value.
    pub message: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Collects errors (and warnings) while validating; `path` helpers keep the key path
/// formatting in one place.
#[derive(Debug, Default)]
pub(crate) struct Collector {
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigWarning>,
}

impl Collector {
    /// Records one warning (kept only if the file loads).
    pub(crate) fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        let w = ConfigWarning {
            path: path.into(),
            message: message.into(),
        };
        if !self.warnings.contains(&w) {
            self.warnings.push(w);
        }
    }

    /// The warnings recorded so far, leaving none.
    pub(crate) fn take_warnings(&mut self) -> Vec<ConfigWarning> {
        std::mem::take(&mut self.warnings)
    }

    /// Records one error.
    pub(crate) fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError::new(path, message));
    }

    /// Records the error of a failed check, if any, and returns the value of a successful one.
    pub(crate) fn check<T>(&mut self, path: &str, r: Result<T, String>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(m) => {
                self.push(path, m);
                None
            }
        }
    }

    /// `Ok(value)` when nothing was recorded, else every recorded error with the value as far as
    /// it was built (for a configuration: keys in error left out or at their defaults), for the
    /// stages that report more errors of the same file (key and certificate files).
    pub(crate) fn finish_partial<T>(self, value: T) -> Result<T, (ConfigErrors, T)> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err((ConfigErrors(self.errors), value))
        }
    }

    /// Moves `other`'s errors and warnings here, skipping any already recorded (same path and
    /// message).
    pub(crate) fn absorb_unique(&mut self, other: Collector) {
        for e in other.errors {
            if !self.errors.contains(&e) {
                self.errors.push(e);
            }
        }
        for w in other.warnings {
            self.warn(w.path, w.message);
        }
    }
}

/// `message` with `{kind} {q}…{q}` cut to `{kind}`, the closing quote being the last one
/// followed by `, expected` (serde's "invalid type: X, expected Y", where only X quotes the
/// file: the value may itself hold a quote and a comma); without one, it is kept.
fn drop_quoted(message: &str, kind: &str, q: char) -> String {
    let opening = format!("{kind} {q}");
    let closing = format!("{q}, expected");
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find(&opening) {
        let after = &rest[start + opening.len()..];
        match after.rfind(&closing) {
            Some(end) => {
                out.push_str(&rest[..start]);
                out.push_str(kind);
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    out.push_str(rest);
    out
}

/// `message` with each line break (and the blanks around it) replaced by `"; "`: log records
/// and `torii check` lines hold one error each.
pub fn one_line(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for part in message
        .split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        if !out.is_empty() {
            out.push_str("; ");
        }
        out.push_str(part);
    }
    out
}

/// What an IO error says, without the `(os error N)` that Rust appends to the system's words
/// (`No such file or directory`).
pub fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => text[..at].to_owned(),
        _ => text,
    }
}

/// `parent.key`, or `key` at the top level.
pub(crate) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// `parent[index]`.
pub(crate) fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// Removes the values a deserializer message quotes (`string "…"`, and the ones between
/// backticks after `integer`, `floating point`, `character` and `boolean`), since a misplaced
/// secret could be one (`secret = 12345678`), and replaces Rust type names (`struct RawAlgo`)
/// with "a table".
pub(crate) fn redact(message: &str) -> String {
    let mut out = drop_quoted(message, "string", '"');
    for kind in ["integer", "floating point", "character", "boolean"] {
        out = drop_quoted(&out, kind, '`');
    }
    while let Some(start) = out.find("struct Raw") {
        let name = start + "struct ".len();
        let end = out[name..]
            .find(|c: char| !c.is_ascii_alphanumeric())
            .map_or(out.len(), |e| name + e);
        out.replace_range(start..end, "a table");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_strings_and_type_names() {
        assert_eq!(
            redact("invalid type: string \"s3cret\", expected struct RawAlgo"),
            "invalid type: string, expected a table"
        );
        assert_eq!(
            redact("expected struct RawAlgo here"),
            "expected a table here"
        );
        assert_eq!(
            redact("unterminated string \"abc"),
            "unterminated string \"abc"
        );
        for (message, redacted) in [
            (
                "invalid type: integer `12345678`, expected a string",
                "invalid type: integer, expected a string",
            ),
            (
                "invalid type: floating point `1500.0`, expected a string",
                "invalid type: floating point, expected a string",
            ),
            (
                "invalid type: boolean `true`, expected a string",
                "invalid type: boolean, expected a string",
            ),
            (
                "invalid value: string \"a\", b\", expected x",
                "invalid value: string, expected x",
            ),
        ] {
            assert_eq!(redact(message), redacted);
        }
    }

    #[test]
    fn one_line_joins_the_lines_of_a_message() {
        assert_eq!(
            one_line("invalid array\nexpected `]`"),
            "invalid array; expected `]`"
        );
        assert_eq!(one_line(" a \r\n\n b\rc\n"), "a; b; c");
        assert_eq!(one_line("plain"), "plain");
    }

    #[test]
    fn io_reasons_hold_the_systems_words_only() {
        let e = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(io_reason(&e), "No such file or directory");
        let e = std::io::Error::other("plain words");
        assert_eq!(io_reason(&e), "plain words");
    }

    #[test]
    fn display_one_per_line() {
        let e = ConfigErrors(vec![
            ConfigError::new("a.b", "bad"),
            ConfigError::new("", "file-level"),
        ]);
        assert_eq!(e.to_string(), "a.b: bad\nfile-level");
        assert!(e.has_path("a.b"));
    }
}
