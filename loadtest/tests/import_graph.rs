//! Keeps `loadtest/src` free of import circles: no file may import, directly or through other
//! files, a file that imports it (a file imports only from modules below it).
//!
//! The check reads the sources as text: every path that starts with `crate::`, `super::`,
//! `self::` or the name of a child module (in `use` trees and inline, e.g.
//! `crate::generator::run(...)`) is resolved to the longest module it names, and the resulting
//! graph must have no cycle. Declaring a child (`pub mod x;`) is not an import. The unit tests at
//! the bottom of a file (`#[cfg(test)] mod tests`) count too, their `super` being the file.

// Test-only helpers (outside #[test] functions) may panic on an unreadable source tree.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path inside the crate: `[]` is the crate root, `["suite", "lab"]` is
/// `suite/lab.rs`.
type Module = Vec<String>;

/// Every `.rs` file under `dir` with its module path.
fn modules(dir: &Path) -> BTreeMap<Module, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(dir).unwrap().with_extension("");
                let mut module: Module = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                if matches!(
                    module.last().map(String::as_str),
                    Some("mod" | "lib" | "main")
                ) {
                    module.pop();
                }
                out.insert(module, path);
            }
        }
    }
    out
}

/// Identifiers and the punctuation of paths and use trees, without comments, string and
/// character literals (so a URL or a message cannot look like a path).
fn tokens(src: &str) -> Vec<String> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                i += 1;
            }
            i += 2;
        } else if c == b'r' && matches!(b.get(i + 1), Some(b'"' | b'#')) {
            // Raw string: r"…", r#"…"#, r##"…"##.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push("r".into());
                i += 1;
                continue;
            }
            j += 1;
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            while j < b.len() && !b[j..].starts_with(&close) {
                j += 1;
            }
            i = j + close.len();
        } else if c == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c == b'\'' {
            // A char literal ('x', '\n', '\'') or a lifetime ('a): skip the literal only.
            if b.get(i + 1) == Some(&b'\\') {
                i += 3;
                while i < b.len() && b[i] != b'\'' {
                    i += 1;
                }
                i += 1;
            } else if b.get(i + 2) == Some(&b'\'') {
                i += 3;
            } else {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(src[start..i].to_string());
        } else if c == b':' && b.get(i + 1) == Some(&b':') {
            out.push("::".into());
            i += 2;
        } else {
            if matches!(c, b'{' | b'}' | b',' | b';' | b'*') {
                out.push((c as char).to_string());
            } else if !c.is_ascii_whitespace() {
                out.push("·".into());
            }
            i += 1;
        }
    }
    out
}

/// Every path written in `toks`, use trees expanded (`a::{b::C, d}` gives `a::b::C` and
/// `a::d`).
fn paths(toks: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if is_ident(&toks[i]) && toks.get(i + 1).map(String::as_str) == Some("::") {
            // Not the tail of a longer path (`x::a::b` is read once, from `x`).
            if i == 0 || toks[i - 1] != "::" {
                i = path_at(toks, i, Vec::new(), &mut out);
                continue;
            }
        }
        i += 1;
    }
    out
}

fn is_ident(t: &str) -> bool {
    t.bytes()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
}

/// Reads the path starting at `toks[i]` under `prefix`; returns the index after it.
fn path_at(
    toks: &[String],
    mut i: usize,
    prefix: Vec<String>,
    out: &mut Vec<Vec<String>>,
) -> usize {
    let mut path = prefix;
    loop {
        match toks.get(i).map(String::as_str) {
            Some(t) if is_ident(t) => {
                path.push(t.to_string());
                i += 1;
            }
            Some("*") => {
                i += 1;
                break;
            }
            Some("{") => {
                // A use tree: each comma-separated branch is a path under `path`.
                i += 1;
                while let Some(t) = toks.get(i).map(String::as_str) {
                    match t {
                        "}" => {
                            i += 1;
                            break;
                        }
                        "," => i += 1,
                        _ if is_ident(t) => i = path_at(toks, i, path.clone(), out),
                        _ => i += 1,
                    }
                }
                return i;
            }
            _ => break,
        }
        if toks.get(i).map(String::as_str) == Some("::") {
            i += 1;
        } else {
            break;
        }
    }
    out.push(path);
    i
}

/// The module `path` refers to when written in module `at`, if it is one of `mods` (the
/// longest module prefix of the path). `None` for other crates (`std`, `serde`, …).
fn resolve(at: &[String], path: &[String], mods: &BTreeMap<Module, PathBuf>) -> Option<Module> {
    let first = path.first()?;
    let (mut base, rest): (Module, &[String]) = match first.as_str() {
        "crate" => (Vec::new(), &path[1..]),
        "self" => (at.to_vec(), &path[1..]),
        "super" => {
            let mut base = at.to_vec();
            let mut k = 0;
            while path.get(k).map(String::as_str) == Some("super") {
                base.pop();
                k += 1;
            }
            (base, &path[k..])
        }
        child => {
            let mut m = at.to_vec();
            m.push(child.to_string());
            if !mods.contains_key(&m) {
                return None;
            }
            (at.to_vec(), path)
        }
    };
    let mut best = mods.contains_key(&base).then(|| base.clone());
    for seg in rest {
        base.push(seg.clone());
        if mods.contains_key(&base) {
            best = Some(base.clone());
        }
    }
    best
}

/// Module → the modules it imports (itself and the crate root excluded).
fn import_graph(dir: &Path) -> BTreeMap<Module, BTreeSet<Module>> {
    let mods = modules(dir);
    let mut graph = BTreeMap::new();
    for (module, file) in &mods {
        let src = std::fs::read_to_string(file).unwrap();
        // The unit tests live in `mod tests` inside the file: their `super` is the file.
        let (code, tests) = src.split_at(src.find("#[cfg(test)]").unwrap_or(src.len()));
        let mut test_module = module.clone();
        test_module.push("tests".into());
        let mut deps = BTreeSet::new();
        for (at, text) in [(module, code), (&test_module, tests)] {
            for p in paths(&tokens(text)) {
                if let Some(d) = resolve(at, &p, &mods) {
                    if &d != module && !d.is_empty() {
                        deps.insert(d);
                    }
                }
            }
        }
        graph.insert(module.clone(), deps);
    }
    graph
}

/// A cycle through `start`, if there is one (depth-first search).
fn cycle_from(graph: &BTreeMap<Module, BTreeSet<Module>>, start: &Module) -> Option<Vec<Module>> {
    fn walk(
        graph: &BTreeMap<Module, BTreeSet<Module>>,
        start: &Module,
        path: &mut Vec<Module>,
        seen: &mut BTreeSet<Module>,
    ) -> bool {
        let Some(last) = path.last().cloned() else {
            return false;
        };
        for next in graph.get(&last).into_iter().flatten() {
            if next == start {
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(graph, start, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.clone()];
    let mut seen = BTreeSet::new();
    walk(graph, start, &mut path, &mut seen).then_some(path)
}

fn name(m: &Module) -> String {
    if m.is_empty() {
        "crate".into()
    } else {
        m.join("/")
    }
}

#[test]
fn the_checker_sees_paths_in_use_trees_and_code_but_not_in_strings() {
    let toks = tokens(
        "use super::{lab::Lab, results::{Skipped, X}};\n// crate::comment::x\n\
         let u = \"crate::in_string\"; let r = r#\"super::raw\"#; let c = ':'; let q = '\\'';\n\
         crate::generator::run(o); Self::f(); x.y::<u8>();",
    );
    let found: Vec<String> = paths(&toks).iter().map(|p| p.join("::")).collect();
    assert_eq!(
        found,
        [
            "super::lab::Lab",
            "super::results::Skipped",
            "super::results::X",
            "crate::generator::run",
            "Self::f",
            "y",
        ]
    );
    let mods: BTreeMap<Module, PathBuf> = [vec![], vec!["a".into()], vec!["a".into(), "b".into()]]
        .into_iter()
        .map(|m| (m, PathBuf::new()))
        .collect();
    let at: Module = vec!["a".into(), "b".into()];
    let p = |s: &str| s.split("::").map(String::from).collect::<Vec<_>>();
    assert_eq!(
        resolve(&at, &p("super::Item"), &mods),
        Some(vec!["a".into()])
    );
    assert_eq!(resolve(&at, &p("crate::a::b::f"), &mods), Some(at.clone()));
    assert_eq!(resolve(&at, &p("std::io::Read"), &mods), None);
    let top: Module = vec!["a".into()];
    assert_eq!(resolve(&top, &p("b::f"), &mods), Some(at.clone()));
    let mut graph = BTreeMap::new();
    graph.insert(top.clone(), BTreeSet::from([at.clone()]));
    graph.insert(at.clone(), BTreeSet::from([top.clone()]));
    assert_eq!(cycle_from(&graph, &top), Some(vec![top, at]));
}

#[test]
fn loadtest_src_has_no_import_circle() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = import_graph(&dir);
    assert!(graph.len() > 10, "read {} modules only", graph.len());
    // Sanity: known edges are seen, so an empty graph cannot pass.
    let m = |s: &str| s.split('/').map(String::from).collect::<Module>();
    assert!(graph[&m("generator")].contains(&m("conn")));
    assert!(graph[&m("suite/lab")].contains(&m("suite/procs")));
    let cycles: Vec<String> = graph
        .keys()
        .filter_map(|start| cycle_from(&graph, start))
        .map(|c| {
            let mut names: Vec<String> = c.iter().map(name).collect();
            names.push(name(&c[0]));
            names.join(" → ")
        })
        .collect();
    assert!(cycles.is_empty(), "import circles:\n{}", cycles.join("\n"));
}
