//! The small writers of the Prometheus text format (0.0.4) that every renderer shares: a
//! metric's `# HELP`/`# TYPE` lines, an escaped label value, one per-route series.
//!
//! Pure string building; knows no metric of Torii's.

use std::fmt::Write;

/// Appends `v` escaped as a label value (backslash, double quote and newline).
pub(super) fn label(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// `# HELP` and `# TYPE` lines of metric `name`.
pub(super) fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// One series of a per-route metric, with an optional second label.
pub(super) fn route_series(
    out: &mut String,
    name: &str,
    route: &str,
    extra: Option<(&str, &str)>,
    v: u64,
) {
    out.push_str(name);
    out.push_str("{route=\"");
    label(out, route);
    out.push('"');
    if let Some((k, val)) = extra {
        let _ = write!(out, ",{k}=\"");
        label(out, val);
        out.push('"');
    }
    let _ = writeln!(out, "}} {v}");
}
