//! Secrets as written in the file: [`RawSecret`], a redacting wrapper around the unresolved string
//! (`"${env.NAME}"`, `"${file:/path}"` or a literal), and [`SecretRef`], its parsed form.
//!
//! This module checks the reference syntax and, through the loader's [`LoadEnv`], that a
//! referenced environment variable is set. It never reads the value into the `Config`: resolving
//! and building keys is the snapshot builder's job. No message or `Debug` output produced here
//! contains a secret value; only variable names and file paths, which are not secret.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

use super::error::Collector;
use super::LoadEnv;

/// An unresolved secret string. `Debug` prints `"***"`; there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct RawSecret(String);

impl RawSecret {
    /// Wraps a raw secret string (a reference or a literal).
    pub fn new(raw: impl Into<String>) -> Self {
        Self(raw.into())
    }

    /// The raw string as written (after relative `${file:…}` paths were made absolute).
    /// Call only to resolve it; never log the result.
    pub fn expose_raw(&self) -> &str {
        &self.0
    }

    /// The parsed reference, or an error message without the value.
    pub fn reference(&self) -> Result<SecretRef<'_>, String> {
        SecretRef::parse(&self.0)
    }

    /// When the string is written as a shell variable (`"$CHALLENGE_SECRET"`), which Torii
    /// does not expand (the secret would be that text, silently): the hint that says how to
    /// write it, naming the variable (`looks like a shell variable: write
    /// "${env.CHALLENGE_SECRET}" …`). The hint never quotes the string itself: a name is
    /// quoted only when it is a conventional environment variable name of at most 64
    /// characters (not a plausible secret), and a longer one is not named.
    pub fn shell_hint(&self) -> Option<String> {
        const WHY: &str =
            "Torii does not expand shell syntax, so as written the secret is the text itself";
        match shell_variable(&self.0)? {
            ShellName::Named(name) => Some(format!(
                "looks like a shell variable: write \"${{env.{name}}}\" to read it from the environment ({WHY})"
            )),
            ShellName::TooLong => Some(format!(
                "looks like a shell variable: write \"${{env.NAME}}\" with the variable's name to read it from the environment ({WHY})"
            )),
        }
    }
}

impl fmt::Debug for RawSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

impl<'de> Deserialize<'de> for RawSecret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(RawSecret)
    }
}

/// What a secret string points to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SecretRef<'a> {
    /// `${env.NAME}`: the value of an environment variable.
    Env(&'a str),
    /// `${file:/path}`: the content of a file (trailing newline trimmed by the resolver).
    File(&'a str),
    /// Any string without `${`: the secret itself.
    Literal(&'a str),
}

impl fmt::Debug for SecretRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(n) => write!(f, "Env({n:?})"),
            SecretRef::File(p) => write!(f, "File({p:?})"),
            SecretRef::Literal(_) => f.write_str("Literal(\"***\")"),
        }
    }
}

impl<'a> SecretRef<'a> {
    /// Parses a raw secret string. Strings containing `${` must be exactly one reference.
    pub fn parse(raw: &'a str) -> Result<Self, String> {
        const SYNTAX: &str = "invalid secret reference: expected \"${env.NAME}\" or \"${file:/path}\" (a literal secret must not contain \"${\")";
        if !raw.contains("${") {
            if raw.is_empty() {
                return Err("secret must not be empty".to_owned());
            }
            return Ok(SecretRef::Literal(raw));
        }
        let inner = raw
            .strip_prefix("${")
            .and_then(|r| r.strip_suffix('}'))
            .ok_or_else(|| SYNTAX.to_owned())?;
        // `${NAME}` is how a shell writes it; Torii wants the source named.
        let shell_name = !inner.is_empty()
            && !inner.starts_with(|c: char| c.is_ascii_digit())
            && inner
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if shell_name {
            return Err(format!(
                "invalid secret reference: Torii does not expand shell variables; write \"${{env.{inner}}}\" for an environment variable or \"${{file:/path}}\" for a file"
            ));
        }
        if let Some(name) = inner.strip_prefix("env.") {
            let valid =
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid {
                return Err(
                    "invalid environment variable name in secret reference (letters, digits and _)"
                        .to_owned(),
                );
            }
            return Ok(SecretRef::Env(name));
        }
        if let Some(path) = inner.strip_prefix("file:") {
            if path.is_empty() || path.contains('}') {
                return Err(SYNTAX.to_owned());
            }
            return Ok(SecretRef::File(path));
        }
        Err(SYNTAX.to_owned())
    }
}

/// Checks a secret and returns it with a relative `${file:…}` path made absolute against
/// `base_dir`. Environment references must name a variable that `env` knows.
pub(crate) fn check_secret(
    secret: &RawSecret,
    base_dir: &Path,
    env: &dyn LoadEnv,
) -> Result<RawSecret, String> {
    match secret.reference()? {
        SecretRef::Env(name) => {
            if env.var(name).is_some() {
                Ok(secret.clone())
            } else {
                Err(format!("environment variable {name} is not set"))
            }
        }
        SecretRef::File(p) => {
            let path = resolve_path(base_dir, p);
            Ok(RawSecret(format!("${{file:{}}}", path.display())))
        }
        SecretRef::Literal(_) => Ok(secret.clone()),
    }
}

/// [`check_secret`] recording its error at `path`, plus a warning when the secret looks like
/// a shell variable ([`RawSecret::shell_hint`]): Torii does not expand those, so the key would
/// be that text, silently.
pub(crate) fn secret(
    c: &mut Collector,
    path: &str,
    secret: &RawSecret,
    base_dir: &Path,
    env: &dyn LoadEnv,
) -> Option<RawSecret> {
    if let Some(hint) = secret.shell_hint() {
        c.warn(path, hint);
    }
    c.check(path, check_secret(secret, base_dir, env))
}

/// What a `$NAME` string names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ShellName<'a> {
    /// A conventional environment variable name (capitals, digits, `_`), at most 64 bytes.
    Named(&'a str),
    /// The same shape, longer: not quoted back.
    TooLong,
}

/// Whether `raw` is `$NAME` with `NAME` shaped like a conventional environment variable name
/// (a capital or `_`, then capitals, digits and `_`). Only such names are quoted back, and
/// only up to 64 bytes: they are not plausible secrets.
fn shell_variable(raw: &str) -> Option<ShellName<'_>> {
    let name = raw.strip_prefix('$')?;
    let conventional = name.starts_with(|c: char| c.is_ascii_uppercase() || c == '_')
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    match name.len() {
        _ if !conventional => None,
        1..=64 => Some(ShellName::Named(name)),
        _ => Some(ShellName::TooLong),
    }
}

/// `p` if absolute, else `base_dir/p`.
pub(crate) fn resolve_path(base_dir: &Path, p: &str) -> PathBuf {
    let path = Path::new(p);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base_dir.join(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MapEnv;

    #[test]
    fn debug_is_redacted() {
        let s = RawSecret::new("hunter2-very-secret");
        assert_eq!(format!("{s:?}"), "\"***\"");
        let r = SecretRef::Literal("hunter2");
        assert!(!format!("{r:?}").contains("hunter2"));
    }

    #[test]
    fn parses_references() {
        assert_eq!(SecretRef::parse("${env.A_B1}"), Ok(SecretRef::Env("A_B1")));
        assert_eq!(SecretRef::parse("${file:/k}"), Ok(SecretRef::File("/k")));
        assert_eq!(SecretRef::parse("plain"), Ok(SecretRef::Literal("plain")));
        for bad in [
            "${env.}",
            "${env.A-B}",
            "x${env.A}",
            "${env.A}x",
            "${vault:a}",
            "${file:}",
            "",
        ] {
            assert!(SecretRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shell_syntax_is_an_error_or_a_warning() {
        let e = SecretRef::parse("${CHALLENGE_SECRET}")
            .err()
            .unwrap_or_default();
        assert!(e.contains("\"${env.CHALLENGE_SECRET}\""), "{e}");
        assert_eq!(
            shell_variable("$CHALLENGE_SECRET"),
            Some(ShellName::Named("CHALLENGE_SECRET"))
        );
        assert_eq!(shell_variable("$_X1"), Some(ShellName::Named("_X1")));
        let longest = format!("${}", "A".repeat(64));
        assert_eq!(
            shell_variable(&longest),
            Some(ShellName::Named(&longest[1..]))
        );
        let longer = format!("${}", "A".repeat(65));
        assert_eq!(shell_variable(&longer), Some(ShellName::TooLong));
        for not in [
            "CHALLENGE_SECRET",
            "$",
            "$1A",
            "$lower",
            "$Mixed9xYz",
            "a$B",
            "$A-B",
        ] {
            assert_eq!(shell_variable(not), None, "{not}");
        }
        let env = MapEnv::default();
        let mut c = Collector::default();
        let s = secret(
            &mut c,
            "k",
            &RawSecret::new("$MY_KEY"),
            Path::new("/"),
            &env,
        );
        assert!(s.is_some(), "a literal is accepted");
        let w = c.take_warnings();
        assert_eq!(w.len(), 1);
        assert!(
            w[0].message
                .starts_with("looks like a shell variable: write \"${env.MY_KEY}\""),
            "{w:?}"
        );
        assert!(
            !w[0].message.contains("$MY_KEY"),
            "the value is quoted: {w:?}"
        );
        // A longer name is not quoted back at all.
        secret(&mut c, "k", &RawSecret::new(&longer), Path::new("/"), &env);
        let w = c.take_warnings();
        assert_eq!(w.len(), 1);
        assert!(!w[0].message.contains(&longer[1..]), "{w:?}");
        assert!(w[0].message.contains("\"${env.NAME}\""), "{w:?}");
        secret(
            &mut c,
            "k",
            &RawSecret::new("plain-literal"),
            Path::new("/"),
            &env,
        );
        assert!(c.take_warnings().is_empty());
    }

    #[test]
    fn errors_never_contain_the_value() {
        let e = SecretRef::parse("${sup3rsecret").err().unwrap_or_default();
        assert!(!e.contains("sup3rsecret"));
    }

    #[test]
    fn env_must_be_set_and_files_resolve() {
        let env = MapEnv::new([("SET", "v")]);
        let base = Path::new("/etc/torii");
        assert!(check_secret(&RawSecret::new("${env.SET}"), base, &env).is_ok());
        let e = check_secret(&RawSecret::new("${env.UNSET}"), base, &env);
        assert_eq!(e, Err("environment variable UNSET is not set".to_owned()));
        let f = check_secret(&RawSecret::new("${file:keys/s}"), base, &env);
        assert_eq!(f.map(|s| s.0), Ok("${file:/etc/torii/keys/s}".to_owned()));
    }
}
