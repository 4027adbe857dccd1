//! Where each key of a configuration file is written: [`KeyLocations`], a map from key paths in
//! the error style (`routes[2].challenge.ttl`) to the 1-based line and column of the key.
//!
//! Built once per load from the parsed document (with spans), kept in the validated
//! [`super::Config`] so that errors found later (when the snapshot reads key files) and
//! warnings can say where to look ([`KeyLocations::describe`]): a key that is written is placed
//! at the key itself; a path that names nothing written in the file (a required key that is
//! missing) is said to be missing from the table it belongs in, placed at that table's header
//! (`[routes.info_token]`, `[[routes]]`) or `{`. Positions only: no text of the file is kept.

use std::collections::HashMap;
use std::ops::Range;

use toml_edit::{Item, Table, Value};

/// Line and column (both from 1) of every key written in a file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyLocations {
    by_path: HashMap<String, (usize, usize)>,
    /// Where each table written in the file starts: its `[header]` or `[[header]]`, or the `{`
    /// of an inline table.
    tables: HashMap<String, (usize, usize)>,
}

impl KeyLocations {
    /// Walks a parsed document (one that kept its spans) and records every key, table,
    /// array-of-tables element and array element.
    pub(crate) fn of_document(text: &str, root: &Table) -> Self {
        let mut out = KeyLocations::default();
        out.table(text, root, "");
        out
    }

    /// Where exactly `path` is written (no ancestor fallback).
    pub fn exact(&self, path: &str) -> Option<(usize, usize)> {
        self.by_path.get(path).copied()
    }

    /// Where a message about `path` points, as the suffix printed after it: `(line L, column
    /// C)` at the key when it is written; `(missing from the table at line L, column C)` at the
    /// header of the nearest table written around it when it is not (a required key left
    /// out); `None` when nothing around it is written either (a missing top-level table).
    pub fn describe(&self, path: &str) -> Option<String> {
        if let Some((l, c)) = self.exact(path) {
            return Some(format!("(line {l}, column {c})"));
        }
        let mut p = path;
        loop {
            p = parent(p)?;
            if let Some((l, c)) = self.tables.get(p) {
                return Some(format!("(missing from the table at line {l}, column {c})"));
            }
            if let Some((l, c)) = self.by_path.get(p) {
                return Some(format!("(line {l}, column {c})"));
            }
        }
    }

    fn record(&mut self, text: &str, path: &str, span: Option<Range<usize>>) {
        if let Some(span) = span {
            self.by_path
                .entry(path.to_owned())
                .or_insert_with(|| line_col(text, span.start));
        }
    }

    fn record_table(&mut self, text: &str, path: &str, span: Option<Range<usize>>) {
        if let Some(span) = span {
            self.tables
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
            Item::Table(t) => {
                // An implicit table (`[a.b]` makes `a`) has no header of its own.
                self.record_table(text, path, t.span());
                self.table(text, t, path);
            }
            Item::ArrayOfTables(a) => {
                for (i, t) in a.iter().enumerate() {
                    let p = format!("{path}[{i}]");
                    self.record(text, &p, t.span());
                    self.record_table(text, &p, t.span());
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
                self.record_table(text, path, v.span());
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
        assert_eq!(l.exact("routes[1].challenge"), Some((9, 9)));
        assert!(l.exact("routes[1].challenge.secret").is_none());
        // Written: at the key. Not written: missing from the table around it, at its header.
        assert_eq!(
            l.describe("routes[1].challenge.ttl").as_deref(),
            Some("(line 10, column 1)")
        );
        assert_eq!(
            l.describe("routes[1].challenge.secret").as_deref(),
            Some("(missing from the table at line 9, column 1)")
        );
        assert_eq!(
            l.describe("routes[0].targets").as_deref(),
            Some("(missing from the table at line 4, column 1)")
        );
        assert_eq!(
            l.describe("routes[1].upstream_tls.client_key").as_deref(),
            Some("(missing from the table at line 8, column 16)")
        );
        assert_eq!(
            l.describe("gateway.admin").as_deref(),
            Some("(missing from the table at line 1, column 1)")
        );
        // Inside a value that is not a table: at that value.
        assert_eq!(
            l.describe("gateway.http[2]").as_deref(),
            Some("(line 2, column 1)")
        );
        assert_eq!(l.describe("access_log.path"), None);
    }
}
