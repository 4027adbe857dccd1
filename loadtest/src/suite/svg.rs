//! Markup shared by the report page and its charts: HTML/XML escaping and the colour of each
//! scenario (the same in every chart, so a scenario is found by its colour).
//!
//! Pure functions; no knowledge of reports or of the page's layout.

/// One colour per scenario, in table order (cycled past the eleventh). No grey: the bar chart
/// draws the backend's share in grey.
pub const COLOURS: [&str; 11] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    "#393b79", "#bcbd22", "#000000",
];

/// The colour of the scenario at `index` in the table.
pub fn colour(index: usize) -> &'static str {
    COLOURS[index % COLOURS.len()]
}

/// Escapes `&`, `<`, `>`, `"` and `'`.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped_and_colours_cycle() {
        assert_eq!(
            escape("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(colour(0), colour(COLOURS.len()));
        assert_ne!(colour(0), colour(1));
    }
}
