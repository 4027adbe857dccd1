//! Where each key of a configuration file is written: [`KeyLocations`], a map from key paths in
//! the error style (`routes[2].challenge.ttl`) to the 1-based line and column of the key.
//!
//! Built once per load from the parsed document (with spans), kept in the validated
//! [`super::Config`] so that errors found later (when the snapshot reads key files) and
//! warnings can say where to look. A path that names nothing written in the file (a required key
//! that is missing) is placed at its nearest written ancestor (the table it belongs in).
//! Positions only: no text of the file is kept.

use std::collections::HashMap;
use std::ops::Range;

use toml_edit::{Item, Table, Value};

/// Line and column (both from 1) of every key written in a file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyLocations {
    by_path: HashMap<String, (usize, usize)>,
}

impl KeyLocations {
    /// Walks a parsed document (one that kept its spans) and records every key, table,
    /// array-of-tables element and array element.
    pub(crate) fn of_document(text: &str, root: &Table) -> Self {
        let mut out = KeyLocations::default();
        out.table(text, root, "");
        out
    }

    /// Where `path` is written, or its nearest written ancestor; `None` when neither is.
    pub fn find(&self, path: &str) -> Option<(usize, usize)> {
        let mut p = path;
        loop {
            if let Some(at) = self.by_path.get(p) {
                return Some(*at);
            }
            p = parent(p)?;
        }
    }

    /// Where exactly `path` is written (no ancestor fallback).
    pub fn exact(&self, path: &str) -> Option<(usize, usize)> {
        self.by_path.get(path).copied()
    }

    fn record(&mut self, text: &str, path: &str, span: Option<Range<usize>>) {
        if let Some(span) = span {
            self.by_path
                .entry(path.to_owned())
                .or_insert_with(|| line_col(text, span.start));
        }
    }

    fn table(&mut self, text: &str, t: &Table, path: &str) {
        for (k, item) in t.iter() {
            let p = join(path, k);
            let key_span = t.get_key_value(k).and_then(|(key, _)| key.span());
            self.record(text, &p, key_span.or_else(|| item.span()));
            self.item(text, item, &p);
        }
    }

    fn item(&mut self, text: &str, item: &Item, path: &str) {
        match item {
            Item::Table(t) => self.table(text, t, path),
            Item::ArrayOfTables(a) => {
                for (i, t) in a.iter().enumerate() {
                    let p = format!("{path}[{i}]");
                    self.record(text, &p, t.span());
                    self.table(text, t, &p);
                }
            }
            Item::Value(v) => self.value(text, v, path),
            Item::None => {}
        }
    }

    fn value(&mut self, text: &str, v: &Value, path: &str) {
        match v {
            Value::InlineTable(t) => {
                for (k, v) in t.iter() {
                    let p = join(path, k);
                    let key_span = t.get_key_value(k).and_then(|(key, _)| key.span());
                    self.record(text, &p, key_span.or_else(|| v.span()));
                    self.value(text, v, &p);
                }
            }
            Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    let p = format!("{path}[{i}]");
                    self.record(text, &p, v.span());
                    self.value(text, v, &p);
                }
            }
            _ => {}
        }
    }
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// `a.b[2].c` → `a.b[2]` → `a.b` → `a` → none.
fn parent(path: &str) -> Option<&str> {
    let cut = path.rfind(['.', '['])?;
    Some(&path[..cut])
}

/// 1-based line and column of byte `offset` in `text` (columns count characters).
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |nl| nl + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locations(text: &str) -> KeyLocations {
        let doc = toml_edit::ImDocument::parse(text).unwrap();
        KeyLocations::of_document(text, doc.as_table())
    }

    #[test]
    fn line_col_counts_from_one() {
        let t = "a = 1\nbb = 2\né = 3\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 6), (2, 1));
        assert_eq!(line_col(t, 8), (2, 3));
        assert_eq!(line_col(t, 16), (3, 3));
        assert_eq!(line_col(t, 999), (4, 1));
    }

    #[test]
    fn every_kind_of_key_is_placed() {
        let text = "[gateway]\nhttp = [\"a\", \"b\"]\n\n[[routes]]\nid = \"x\"\n[[routes]]\nid = \"y\"\nupstream_tls = { ca = \"c\" }\n[routes.challenge]\nttl = \"5s\"\n";
        let l = locations(text);
        assert_eq!(l.exact("gateway.http"), Some((2, 1)));
        assert_eq!(l.exact("gateway.http[1]"), Some((2, 14)));
        assert_eq!(l.exact("routes[1].id"), Some((7, 1)));
        assert_eq!(l.exact("routes[1].upstream_tls.ca"), Some((8, 18)));
        assert_eq!(l.exact("routes[1].challenge.ttl"), Some((10, 1)));
        // Not written: placed at the nearest ancestor that is.
        assert_eq!(
            l.find("routes[1].challenge.secret"),
            l.exact("routes[1].challenge")
        );
        assert_eq!(l.find("routes[0].targets"), l.exact("routes[0]"));
        assert!(l.exact("routes[0]").is_some());
        assert_eq!(l.find("access_log.path"), None);
    }
}
