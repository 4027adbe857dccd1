//! An independent re-statement of the JOSE JSON rule "no object has a member name twice, at any
//! depth" for the token and body targets: every object's names are collected, sorted and
//! compared with their deduplicated list. Written apart from `torii_protocol::strict_json`
//! (which checks on insertion), so a bug there is not mirrored in its own oracle.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// True when `json` parses (with `serde_json`) and some object in it repeats a member name.
/// False for unique names, and for input that does not parse at all.
pub fn has_duplicate_member(json: &[u8]) -> bool {
    let mut de = serde_json::Deserializer::from_slice(json);
    matches!(Walk.deserialize(&mut de), Ok(true))
}

/// Whether the value walked contains an object with a repeated name.
#[derive(Clone, Copy)]
struct Walk;

impl<'de> DeserializeSeed<'de> for Walk {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_str<E>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        let mut found = false;
        while let Some(d) = seq.next_element_seed(Walk)? {
            found |= d;
        }
        Ok(found)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut names: Vec<String> = Vec::new();
        let mut found = false;
        while let Some(name) = map.next_key::<String>()? {
            names.push(name);
            found |= map.next_value_seed(Walk)?;
        }
        let all = names.len();
        names.sort_unstable();
        names.dedup();
        Ok(found || names.len() != all)
    }
}
