//! JSON objects whose member names are unique, at every depth: the parser for every JSON
//! document that decides who gets through (JOSE headers, JWT claims, JWK sets, OAuth2 bodies).
//!
//! Why: RFC 7515 §4 and RFC 7519 §4 require unique header parameter and claim names, and let a
//! parser either refuse duplicates or keep the last one. `serde_json` keeps the last one, other
//! stacks keep the first (or expose both), so `{"client_id":"key-b","client_id":"key-a"}` or a
//! token with two `sub` means one thing to Torii and another to whoever reads the same bytes
//! next. Torii refuses the ambiguity instead (I-JSON, RFC 7493 §2.3): a member name that appears
//! twice in one object, whatever the object's depth and however the name is escaped (`"exp"` and
//! `"\u0065xp"` are the same name), makes the whole document invalid.
//!
//! Work: what `serde_json::from_slice::<Map<String, Value>>` does, and no more allocation (the
//! duplicate check is the return value of the map insertion that parse makes anyway; not
//! benchmarked separately). [`parse_members`], for callers that read a fixed set of members,
//! allocates nothing for an object of up to eight members with unescaped names, as a derived
//! struct with ignored fields would.
//!
//! This module owns only the syntax rule; it knows nothing of tokens, claims or HTTP.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::BTreeSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Why a document was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// Not a JSON object: a syntax error, invalid UTF-8, another JSON type, or bytes after it.
    #[error("not a JSON object")]
    Invalid,
    /// An object (at any depth) has the same member name twice.
    #[error("duplicate member name in a JSON object")]
    DuplicateMember,
}

/// Parses `json` as one JSON object (surrounding whitespace allowed) and refuses a repeated
/// member name in any object inside it. Otherwise the result equals
/// `serde_json::from_slice::<Map<String, Value>>(json)`.
pub fn parse_object(json: &[u8]) -> Result<Map<String, Value>, JsonError> {
    let dup = Cell::new(false);
    let mut de = serde_json::Deserializer::from_slice(json);
    let parsed = de
        .deserialize_map(ObjectVisitor { dup: &dup })
        .and_then(|map| de.end().map(|()| map));
    parsed.map_err(|_| classify(&dup))
}

/// The members a caller of [`parse_members`] keeps: for each name it wants, a slot that
/// receives the member's value (JSON `null` included, as `Some(Value::Null)`).
pub(crate) trait MemberSlots {
    /// The slot for member `name`, or `None` to check the value's syntax and drop it.
    fn slot(&mut self, name: &str) -> Option<&mut Option<Value>>;
}

/// Parses `json` (already known to be UTF-8) as one JSON object under the rules of
/// [`parse_object`], storing only the members `slots` asks for; every other value is checked
/// (syntax, UTF-8, unique names in nested objects) and dropped without being built.
pub(crate) fn parse_members(json: &str, slots: &mut dyn MemberSlots) -> Result<(), JsonError> {
    let dup = Cell::new(false);
    let mut de = serde_json::Deserializer::from_str(json);
    let parsed = de
        .deserialize_map(SlotsVisitor { dup: &dup, slots })
        .and_then(|()| de.end());
    parsed.map_err(|_| classify(&dup))
}

fn classify(dup: &Cell<bool>) -> JsonError {
    if dup.get() {
        JsonError::DuplicateMember
    } else {
        JsonError::Invalid
    }
}

fn duplicate<E: de::Error>(dup: &Cell<bool>) -> E {
    dup.set(true);
    E::custom("duplicate member name")
}

/// Builds a [`Value`] exactly as `serde_json`'s own visitor does, objects through
/// [`ObjectVisitor`]. Only the calls `serde_json`'s `deserialize_any` makes are implemented
/// (strings arrive as `&str`, `null` as unit; never `String`, `None` or `Some`).
#[derive(Clone, Copy)]
struct ValueSeed<'a> {
    dup: &'a Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        ObjectVisitor { dup: self.dup }
            .visit_map(map)
            .map(Value::Object)
    }
}

/// A JSON object into a [`Map`], refusing a name already inserted.
struct ObjectVisitor<'a> {
    dup: &'a Cell<bool>,
}

impl<'de> Visitor<'de> for ObjectVisitor<'_> {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut map = Map::new();
        while let Some(name) = access.next_key::<String>()? {
            let value = access.next_value_seed(ValueSeed { dup: self.dup })?;
            if map.insert(name, value).is_some() {
                return Err(duplicate(self.dup));
            }
        }
        Ok(map)
    }
}

/// Names seen in one object, borrowed from the input unless escaped. The first
/// [`MemberNames::INLINE`] live on the stack; more spill into a set.
struct MemberNames<'de> {
    inline: [Cow<'de, str>; MemberNames::INLINE],
    len: usize,
    spill: BTreeSet<Cow<'de, str>>,
}

impl<'de> MemberNames<'de> {
    const INLINE: usize = 8;

    fn new() -> Self {
        MemberNames {
            inline: [const { Cow::Borrowed("") }; MemberNames::INLINE],
            len: 0,
            spill: BTreeSet::new(),
        }
    }

    /// Records `name`; false when it was already there.
    fn insert(&mut self, name: Cow<'de, str>) -> bool {
        let seen = self.inline.get(..self.len).unwrap_or_default();
        if seen.contains(&name) {
            return false;
        }
        match self.inline.get_mut(self.len) {
            Some(slot) => {
                *slot = name;
                self.len += 1;
                true
            }
            None => self.spill.insert(name),
        }
    }
}

/// A member name, borrowed when it has no escape (`serde_json` hands names over as
/// borrowed or scratch `&str`, never as `String`).
struct NameSeed;

impl<'de> DeserializeSeed<'de> for NameSeed {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for NameSeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    /// A name with an escape, unescaped into `serde_json`'s scratch buffer.
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

/// Reads one object's members with `next_value` and refuses a repeated name.
fn each_member<'de, A, F>(
    mut access: A,
    dup: &Cell<bool>,
    mut next_value: F,
) -> Result<(), A::Error>
where
    A: MapAccess<'de>,
    F: FnMut(&str, &mut A) -> Result<(), A::Error>,
{
    let mut names = MemberNames::new();
    while let Some(name) = access.next_key_seed(NameSeed)? {
        next_value(&name, &mut access)?;
        if !names.insert(name) {
            return Err(duplicate(dup));
        }
    }
    Ok(())
}

/// Checks a value (syntax, UTF-8 of every string, unique names in its objects) and drops it
/// without building it.
#[derive(Clone, Copy)]
struct CheckedSkip<'a> {
    dup: &'a Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for CheckedSkip<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for CheckedSkip<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        each_member(map, self.dup, |_, access| access.next_value_seed(self))
    }
}

/// The top-level object of [`parse_members`].
struct SlotsVisitor<'a, 's> {
    dup: &'a Cell<bool>,
    slots: &'s mut dyn MemberSlots,
}

impl<'de> Visitor<'de> for SlotsVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        let dup = self.dup;
        let slots = self.slots;
        each_member(map, dup, |name, access| match slots.slot(name) {
            Some(slot) => {
                *slot = Some(access.next_value_seed(ValueSeed { dup })?);
                Ok(())
            }
            None => access.next_value_seed(CheckedSkip { dup }),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Documents without duplicates: the result must be serde_json's own.
    const UNIQUE: &[&str] = &[
        r#"{}"#,
        r#" {"a":1} "#,
        r#"{"a":1,"b":-2,"c":1.5,"d":1e300,"e":18446744073709551615,"f":-9223372036854775808}"#,
        r#"{"n":null,"t":true,"f":false,"s":"\u00e9\n\"","arr":[1,"x",null,[],{}]}"#,
        r#"{"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}]}"#,
        r#"{"a\u0062":1,"ab\u0063":2}"#,
        r#"{"":1,"x":{"":2}}"#,
        r#"{"big":123456789012345678901234567890}"#,
    ];

    #[test]
    fn agrees_with_serde_json_without_duplicates() {
        for doc in UNIQUE {
            let ours = parse_object(doc.as_bytes()).unwrap();
            let theirs: Map<String, Value> = serde_json::from_str(doc).unwrap();
            assert_eq!(ours, theirs, "{doc}");
            // Numbers stay numbers (a serde_json feature such as arbitrary_precision would
            // hand them to the visitor as maps and break this).
            if let Some(v) = ours.get("c") {
                assert!(v.is_f64(), "{doc}");
            }
        }
    }

    #[test]
    fn duplicates_are_refused_at_every_depth_and_in_every_spelling() {
        for doc in [
            r#"{"a":1,"a":1}"#,
            r#"{"client_id":"key-b","client_id":"key-a"}"#,
            r#"{"exp":1,"\u0065xp":2}"#,
            r#"{"a":null,"a":null}"#,
            r#"{"":1,"":2}"#,
            r#"{"x":{"a":1,"a":2}}"#,
            r#"{"x":[1,{"y":[{"a":1,"a":2}]}]}"#,
            r#"{"k1":1,"k2":1,"k3":1,"k4":1,"k5":1,"k6":1,"k7":1,"k8":1,"k9":1,"k1":1}"#,
            r#"{"k1":1,"k2":1,"k3":1,"k4":1,"k5":1,"k6":1,"k7":1,"k8":1,"k9":1,"k9":1}"#,
        ] {
            assert_eq!(
                parse_object(doc.as_bytes()),
                Err(JsonError::DuplicateMember),
                "{doc}"
            );
            let mut none = NoSlots;
            assert_eq!(
                parse_members(doc, &mut none),
                Err(JsonError::DuplicateMember),
                "{doc}"
            );
            let mut all = Slots::default();
            assert_eq!(
                parse_members(doc, &mut all),
                Err(JsonError::DuplicateMember),
                "{doc}"
            );
        }
    }

    #[test]
    fn other_failures_are_invalid() {
        for doc in [
            "",
            "null",
            "[]",
            r#"[{"a":1}]"#,
            r#""a""#,
            r#"{"a":1} x"#,
            r#"{"a":1}{"a":1}"#,
            r#"{"a":1,}"#,
            r#"{"a"}"#,
            r#"{a:1}"#,
        ] {
            assert_eq!(
                parse_object(doc.as_bytes()),
                Err(JsonError::Invalid),
                "{doc}"
            );
            assert_eq!(
                parse_members(doc, &mut NoSlots),
                Err(JsonError::Invalid),
                "{doc}"
            );
        }
        // Invalid UTF-8 inside a string nobody reads.
        let bytes = [&br#"{"x":""#[..], &[0xff], br#""}"#].concat();
        assert_eq!(parse_object(&bytes), Err(JsonError::Invalid));
    }

    struct NoSlots;
    impl MemberSlots for NoSlots {
        fn slot(&mut self, _: &str) -> Option<&mut Option<Value>> {
            None
        }
    }

    /// Keeps the first four names asked for, in order.
    #[derive(Default)]
    struct Slots {
        names: Vec<String>,
        values: [Option<Value>; 4],
    }
    impl MemberSlots for Slots {
        fn slot(&mut self, name: &str) -> Option<&mut Option<Value>> {
            let i = match self.names.iter().position(|n| n == name) {
                Some(i) => i,
                None => {
                    self.names.push(name.to_owned());
                    self.names.len() - 1
                }
            };
            self.values.get_mut(i)
        }
    }

    #[test]
    fn members_keeps_the_slots_it_is_asked_for() {
        let doc = r#"{"a":[1,{"b":null}],"b":"x","c":{"d":1},"d":null,"e":7}"#;
        let mut slots = Slots::default();
        parse_members(doc, &mut slots).unwrap();
        let theirs: Map<String, Value> = serde_json::from_str(doc).unwrap();
        assert_eq!(slots.names, ["a", "b", "c", "d", "e"]);
        for (name, value) in slots.names.iter().zip(&slots.values) {
            assert_eq!(value.as_ref(), theirs.get(name), "{name}");
        }
    }

    #[test]
    fn spilled_name_sets_still_find_duplicates_and_accept_distinct_names() {
        let mut names: Vec<String> = (0..40).map(|i| format!("\"n{i}\":{i}")).collect();
        let doc = format!("{{{}}}", names.join(","));
        assert_eq!(parse_members(&doc, &mut NoSlots), Ok(()));
        names.push("\"n17\":0".to_owned());
        let doc = format!("{{{}}}", names.join(","));
        assert_eq!(
            parse_members(&doc, &mut NoSlots),
            Err(JsonError::DuplicateMember)
        );
    }
}
