//! The keys the configuration file accepts, read from the serde structs of [`super::raw`]
//! themselves, so that no second, hand-kept list can drift from the parser.
//!
//! Owns a small probing [`serde::Deserializer`]: asked to build a [`RawConfig`], it answers each
//! struct with every one of its fields (serde hands them over in `deserialize_struct`), each
//! `Option` with `Some`, each list with one element and each free map (`metadata`) with no
//! entry, and records the dotted path of every field it is asked for. Arrays of tables are not
//! indexed (`routes.challenge.ttl`). The result is what "did you mean" compares an unknown key
//! with, and what the documentation test compares `docs/configuration.md` with. Runs once per
//! process (cached); never on the request path. Knows nothing of defaults or validation.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::raw::{RawConfig, RawTargetTable};

/// What the file holds at a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// A table (`[gateway]`, `[[routes]]`, `upstream_tls = { … }`) whose keys are listed too.
    Table,
    /// A value: a string, number, boolean, or a list of them.
    Value,
    /// A table with free keys (`metadata`): its keys are not checked.
    FreeTable,
}

/// Every key path the file accepts (`gateway.workers`, `routes.challenge.to_backend.secret`)
/// with its kind, in a stable order. Tables are listed as well as their keys.
pub fn accepted_keys() -> &'static BTreeMap<String, KeyKind> {
    static KEYS: OnceLock<BTreeMap<String, KeyKind>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut keys = BTreeMap::new();
        let probe = Probe {
            path: String::new(),
            keys: &mut keys,
            depth: 0,
        };
        // The probe answers every request serde makes with a value the raw structs accept;
        // a failure would mean a raw type this probe does not model (then the list is partial
        // and the documentation test says which keys are missing).
        if let Err(e) = RawConfig::deserialize(probe) {
            tracing::debug!(error = %e, "config key probe stopped early");
        }
        // A list whose entries are a string or a table (`targets`): the probe above took the
        // string form; the table form's keys are read here, which makes the list a table.
        let probe = Probe {
            path: "routes.targets".to_owned(),
            keys: &mut keys,
            depth: 2,
        };
        if let Err(e) = RawTargetTable::deserialize(probe) {
            tracing::debug!(error = %e, "config key probe stopped early");
        }
        keys
    })
}

/// The keys accepted directly under the table at `table_path` (a path with or without array
/// indexes: `routes[2].challenge` and `routes.challenge` are the same table).
pub fn keys_of_table(table_path: &str) -> Vec<&'static str> {
    let table = strip_indexes(table_path);
    let prefix = if table.is_empty() {
        String::new()
    } else {
        format!("{table}.")
    };
    accepted_keys()
        .keys()
        .filter_map(|k| k.strip_prefix(prefix.as_str()))
        .filter(|rest| !rest.contains('.'))
        .collect()
}

/// `routes[2].challenge` → `routes.challenge`.
pub fn strip_indexes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => in_index = true,
            ']' => in_index = false,
            c if !in_index => out.push(c),
            _ => {}
        }
    }
    out
}

/// The accepted key closest to `unknown` among `candidates`, when it is close enough to be a
/// typo: at most 2 edits for keys of 5 characters or more, 1 for shorter ones.
pub fn did_you_mean<'a>(unknown: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = if unknown.len() >= 5 { 2 } else { 1 };
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(unknown, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Deepest nesting the probe follows (the raw structs are 4 levels deep).
const MAX_DEPTH: usize = 16;

#[derive(Debug)]
struct ProbeError(String);

impl std::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProbeError {}

impl de::Error for ProbeError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        ProbeError(msg.to_string())
    }
}

/// Deserializes the value at `path`, recording what it finds into `keys`.
struct Probe<'k> {
    path: String,
    keys: &'k mut BTreeMap<String, KeyKind>,
    depth: usize,
}

impl Probe<'_> {
    fn mark(&mut self, kind: KeyKind) {
        if !self.path.is_empty() {
            self.keys.insert(self.path.clone(), kind);
        }
    }
}

macro_rules! leaf {
    ($($method:ident => $visit:ident($($value:expr)?)),* $(,)?) => {
        $(fn $method<V: Visitor<'de>>(mut self, v: V) -> Result<V::Value, ProbeError> {
            self.mark(KeyKind::Value);
            v.$visit($($value)?)
        })*
    };
}

impl<'de> Deserializer<'de> for Probe<'_> {
    type Error = ProbeError;

    // Hand-written deserializers (durations, `workers`) ask for "any" and accept a string.
    leaf! {
        deserialize_any => visit_str(""),
        deserialize_str => visit_str(""),
        deserialize_string => visit_str(""),
        deserialize_identifier => visit_str(""),
        deserialize_bool => visit_bool(false),
        deserialize_i8 => visit_i8(0),
        deserialize_i16 => visit_i16(0),
        deserialize_i32 => visit_i32(0),
        deserialize_i64 => visit_i64(0),
        deserialize_u8 => visit_u8(0),
        deserialize_u16 => visit_u16(0),
        deserialize_u32 => visit_u32(0),
        deserialize_u64 => visit_u64(0),
        deserialize_f32 => visit_f32(0.0),
        deserialize_f64 => visit_f64(0.0),
        deserialize_char => visit_char(' '),
        deserialize_bytes => visit_bytes(b""),
        deserialize_byte_buf => visit_bytes(b""),
        deserialize_unit => visit_unit(),
        deserialize_ignored_any => visit_unit(),
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ProbeError> {
        v.visit_some(self)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, ProbeError> {
        self.deserialize_unit(v)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, ProbeError> {
        v.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ProbeError> {
        v.visit_seq(OneElement { probe: Some(self) })
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, ProbeError> {
        self.deserialize_seq(v)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        v: V,
    ) -> Result<V::Value, ProbeError> {
        self.deserialize_seq(v)
    }

    fn deserialize_map<V: Visitor<'de>>(mut self, v: V) -> Result<V::Value, ProbeError> {
        self.mark(KeyKind::FreeTable);
        v.visit_map(Fields {
            fields: &[],
            next: 0,
            parent: self,
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        mut self,
        _name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, ProbeError> {
        if self.depth > MAX_DEPTH {
            return Err(ProbeError(format!("{} nests too deep", self.path)));
        }
        self.mark(KeyKind::Table);
        v.visit_map(Fields {
            fields,
            next: 0,
            parent: self,
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        _variants: &'static [&'static str],
        _v: V,
    ) -> Result<V::Value, ProbeError> {
        Err(ProbeError(format!(
            "{}: enum {name} is not modelled by the key probe",
            self.path
        )))
    }
}

/// A list of one element, probed at the list's own path (arrays are not indexed).
struct OneElement<'k> {
    probe: Option<Probe<'k>>,
}

impl<'de> SeqAccess<'de> for OneElement<'_> {
    type Error = ProbeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ProbeError> {
        match self.probe.take() {
            Some(p) => seed.deserialize(p).map(Some),
            None => Ok(None),
        }
    }
}

/// Every field of a struct, each once, in declaration order.
struct Fields<'k> {
    fields: &'static [&'static str],
    next: usize,
    parent: Probe<'k>,
}

impl<'de> MapAccess<'de> for Fields<'_> {
    type Error = ProbeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ProbeError> {
        let Some(field) = self.fields.get(self.next) else {
            return Ok(None);
        };
        seed.deserialize(de::value::StrDeserializer::<ProbeError>::new(field))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ProbeError> {
        let field = self.fields.get(self.next).copied().unwrap_or_default();
        self.next += 1;
        let path = if self.parent.path.is_empty() {
            field.to_owned()
        } else {
            format!("{}.{field}", self.parent.path)
        };
        seed.deserialize(Probe {
            path,
            keys: self.parent.keys,
            depth: self.parent.depth + 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_section_and_nested_table_is_found() {
        let keys = accepted_keys();
        for (path, kind) in [
            ("gateway", KeyKind::Table),
            ("gateway.workers", KeyKind::Value),
            ("gateway.http", KeyKind::Value),
            ("gateway.client_auth.mode", KeyKind::Value),
            ("limits.keepalive_timeout", KeyKind::Value),
            ("routes", KeyKind::Table),
            ("routes.challenge.to_backend.secret", KeyKind::Value),
            ("routes.upstream_tls.server_name", KeyKind::Value),
            (
                "routes.apikeys.custom_headers.client_secret",
                KeyKind::Value,
            ),
            ("routes.jwt.source.cookie", KeyKind::Value),
            ("routes.targets", KeyKind::Table),
            ("routes.targets.url", KeyKind::Value),
            ("routes.targets.weight", KeyKind::Value),
            ("routes.targets.backup", KeyKind::Value),
            ("routes.targets.protocol", KeyKind::Value),
            ("routes.hash.client_ip", KeyKind::Value),
            ("routes.timeouts.response_header", KeyKind::Value),
            ("routes.health_check.statuses", KeyKind::Value),
            ("routes.outlier_detection.max_ejection_time", KeyKind::Value),
            ("routes.retry.backoff", KeyKind::Table),
            ("routes.retry.backoff.max", KeyKind::Value),
            ("apikeys.metadata", KeyKind::FreeTable),
            ("apikeys.client_secret", KeyKind::Value),
            ("access_log.path", KeyKind::Value),
        ] {
            assert_eq!(keys.get(path), Some(&kind), "{path}");
        }
        assert!(!keys.keys().any(|k| k.contains('[')));
    }

    #[test]
    fn keys_of_a_table_ignore_indexes() {
        let keys = keys_of_table("routes[3].challenge");
        assert!(keys.contains(&"ttl") && keys.contains(&"to_backend"));
        let mut target = keys_of_table("routes[0].targets[2]");
        target.sort_unstable();
        assert_eq!(target, ["backup", "protocol", "url", "weight"]);
        assert!(!keys.contains(&"secret.x"));
        let top = keys_of_table("");
        assert!(top.contains(&"gateway") && top.contains(&"routes"));
        assert_eq!(strip_indexes("a[1].b[22].c"), "a.b.c");
    }

    #[test]
    fn near_misses_are_suggested_and_far_ones_are_not() {
        let ttl = ["ttl", "leeway", "version", "request_header"];
        assert_eq!(did_you_mean("tll", &ttl), Some("ttl"));
        assert_eq!(did_you_mean("leway", &ttl), Some("leeway"));
        assert_eq!(did_you_mean("verison", &ttl), Some("version"));
        assert_eq!(did_you_mean("colour", &ttl), None);
        assert_eq!(did_you_mean("x", &ttl), None);
    }
}
