//! Keeps `docs/configuration.md` honest: every key the parser accepts is documented there, and
//! every key documented there is accepted.
//!
//! The accepted keys come from the parser's own serde structs (`config::schema`), not from a
//! list kept by hand. The documented keys are read from the page: a heading that names a
//! section in backticks (`` ## `[gateway]` ``, `` ### `[routes.challenge]` ``, several in one
//! heading allowed) opens it, and each table row that starts with a backticked key
//! (`` | `workers` | … ``) documents `section.key`; any other heading closes the section.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use torii_engine::config::schema::{accepted_keys, KeyKind};

fn page() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The backticked words of `line`.
fn backticked(line: &str) -> Vec<&str> {
    line.split('`').skip(1).step_by(2).collect()
}

/// The keys `text` documents, as dotted paths (`routes.challenge.ttl`), sections included.
fn documented(text: &str) -> BTreeSet<String> {
    let tables: BTreeSet<&str> = accepted_keys()
        .iter()
        .filter(|(_, kind)| **kind == KeyKind::Table)
        .map(|(k, _)| k.as_str())
        .collect();
    let mut out = BTreeSet::new();
    let mut sections: Vec<String> = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            sections = backticked(line)
                .into_iter()
                .map(|w| w.trim_matches(|c| c == '[' || c == ']').to_owned())
                .filter(|w| tables.contains(w.as_str()))
                .collect();
            out.extend(sections.iter().cloned());
            continue;
        }
        let Some(row) = line.strip_prefix("| `") else {
            continue;
        };
        let Some(key) = row.split('`').next() else {
            continue;
        };
        for section in &sections {
            out.insert(format!("{section}.{key}"));
        }
    }
    out
}

#[test]
fn every_accepted_key_is_documented_and_every_documented_key_is_accepted() {
    let accepted: BTreeSet<String> = accepted_keys().keys().cloned().collect();
    assert!(
        accepted.len() > 100,
        "the key probe found only {accepted:?}"
    );
    let documented = documented(&page());
    let undocumented: Vec<&String> = accepted.difference(&documented).collect();
    let unknown: Vec<&String> = documented.difference(&accepted).collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty(),
        "docs/configuration.md is out of step with the parser.\n\
         Accepted but not documented: {undocumented:#?}\n\
         Documented but not accepted: {unknown:#?}"
    );
}

#[test]
fn the_reader_of_the_page_finds_sections_and_rows() {
    let text = "## `[gateway]`\n| key | type |\n|---|---|\n| `workers` | x |\n\
                ### Route matching\n| `ignored` | x |\n\
                #### `[routes.challenge.to_backend]` and `[routes.challenge.from_backend]`\n\
                | `secret` | x |\n";
    let got: Vec<String> = documented(text).into_iter().collect();
    assert_eq!(
        got,
        [
            "gateway",
            "gateway.workers",
            "routes.challenge.from_backend",
            "routes.challenge.from_backend.secret",
            "routes.challenge.to_backend",
            "routes.challenge.to_backend.secret",
        ]
    );
}
