//! Markup shared by the report page and its charts: HTML/XML escaping and how each scenario is
//! drawn — its colour (bars and lines) and its line's dash pattern — the same in every chart,
//! so that a scenario is found by its look.
//!
//! Pure functions; no knowledge of reports or of the page's layout.

/// Sixteen colours, one per scenario in table order, none repeated before the seventeenth
/// scenario. No grey: the bar chart draws the backend's share in grey. The first eight are
/// drawn as solid lines, the next eight dashed; each eight are far apart from one another, and
/// a dashed colour that resembles a solid one (maroon and brown, gold and orange) differs from
/// it by its dashes.
pub const COLOURS: [&str; 16] = [
    "#1f77b4", // blue
    "#d62728", // red
    "#2ca02c", // green
    "#ff7f0e", // orange
    "#9467bd", // purple
    "#8c564b", // brown
    "#e377c2", // pink
    "#17becf", // cyan
    "#000000", // black
    "#e6ab02", // gold
    "#1b9e77", // teal
    "#843c39", // maroon
    "#7570b3", // indigo
    "#ce1256", // magenta
    "#637939", // olive green
    "#6baed6", // light blue
];

/// Line dash patterns (`stroke-dasharray`): solid, dashed, dotted.
pub const DASHES: [Option<&str>; 3] = [None, Some("7 3"), Some("2 2")];

/// How many scenarios of one report get a look no other scenario of it has: colours repeat
/// after [`COLOURS`]`.len()`, but each repetition has another dash pattern.
pub const DISTINCT_STYLES: usize = COLOURS.len() * DASHES.len();

/// How a scenario is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Style {
    /// Fill of its bars and stroke of its line.
    pub colour: &'static str,
    /// `stroke-dasharray` of its line; `None` for a solid line.
    pub dash: Option<&'static str>,
}

impl Style {
    /// The attributes of a line in this style: `stroke="…"` and, when dashed,
    /// ` stroke-dasharray="…"`.
    pub fn stroke(&self) -> String {
        match self.dash {
            Some(d) => format!(r#"stroke="{}" stroke-dasharray="{d}""#, self.colour),
            None => format!(r#"stroke="{}""#, self.colour),
        }
    }
}

/// The look of the scenario at `index` in the table: the first eight solid, the next eight
/// dashed, each in its own colour; past sixteen the colours come round again with the next
/// dash pattern, so that the first [`DISTINCT_STYLES`] scenarios all differ.
pub fn style(index: usize) -> Style {
    Style {
        colour: COLOURS[index % COLOURS.len()],
        dash: DASHES[(index / 8) % DASHES.len()],
    }
}

/// A short line in `style`, to put before a scenario's name in a table: the key to the charts.
pub fn key(style: Style) -> String {
    format!(
        r#"<svg class="key" width="24" height="10" viewBox="0 0 24 10"><line x1="1" y1="5" x2="23" y2="5" {} stroke-width="3"/></svg>"#,
        style.stroke()
    )
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
    use std::collections::HashSet;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn the_first_styles_all_differ_and_colours_do_not_repeat_before_sixteen() {
        let styles: HashSet<Style> = (0..DISTINCT_STYLES).map(style).collect();
        assert_eq!(styles.len(), DISTINCT_STYLES);
        let colours: HashSet<&str> = (0..COLOURS.len()).map(|i| style(i).colour).collect();
        assert_eq!(colours.len(), COLOURS.len());
        // Past the distinct ones the looks come round again.
        assert_eq!(style(DISTINCT_STYLES), style(0));
        assert_eq!(style(0).stroke(), r##"stroke="#1f77b4""##);
        assert!(key(style(0)).contains(
            r##"<line x1="1" y1="5" x2="23" y2="5" stroke="#1f77b4" stroke-width="3"/>"##
        ));
        assert_eq!(
            style(8).stroke(),
            r##"stroke="#000000" stroke-dasharray="7 3""##
        );
        // No scenario is drawn in the bar chart's grey or in white.
        for c in COLOURS {
            assert!(c.len() == 7 && c.starts_with('#'), "{c}");
            assert!(!["#c8c8c8", "#ffffff"].contains(&c), "{c}");
        }
    }
}
