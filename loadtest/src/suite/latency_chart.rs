//! The latency-by-percentile chart of the suite report: one line per scenario from p0 to the
//! max, the x axis spaced by "nines" (p90, p99, p99.9, …) as HdrHistogram plots are, the
//! latency linear or logarithmic.
//!
//! Pure SVG text from a [`SuiteReport`]; the page around it is [`super::html`].

use std::fmt::Write as _;

use super::results::SuiteReport;
use super::svg::{colour, escape};
use crate::report::fmt_us;

/// Chart size in SVG user units (beside the 620-wide bar chart on a 1400-pixel window).
const W: f64 = 640.0;
const H: f64 = 360.0;
/// Margins: left (axis labels), right (legend), top, bottom.
const ML: f64 = 70.0;
const MR: f64 = 130.0;
const MT: f64 = 20.0;
const MB: f64 = 45.0;
/// Percentiles on the x axis: p0 … p99.999, plotted at log10(1 / (1 - p)).
const X_TICKS: [(f64, &str); 6] = [
    (0.0, "p0"),
    (90.0, "p90"),
    (99.0, "p99"),
    (99.9, "p99.9"),
    (99.99, "p99.99"),
    (99.999, "p99.999"),
];
/// Where p100 (the max) is drawn: one decade past p99.999.
const X_MAX: f64 = 6.0;

/// The x position (in decades) of percentile `p`.
fn x_decades(p: f64) -> f64 {
    if p >= 100.0 {
        X_MAX
    } else {
        (1.0 / (1.0 - p / 100.0)).log10().min(X_MAX)
    }
}

/// A latency-by-percentile chart of every scenario; `log_y` draws latency on a log scale.
pub fn latency_chart(report: &SuiteReport, log_y: bool) -> String {
    let max_us = report
        .scenarios
        .iter()
        .flat_map(|s| s.report.latency.curve_us.iter().map(|&(_, v)| v))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let (pw, ph) = (W - ML - MR, H - MT - MB);
    let y_of = |us: f64| -> f64 {
        let frac = if log_y {
            us.max(1.0).log10() / max_us.log10().max(1e-9)
        } else {
            us / max_us
        };
        MT + ph * (1.0 - frac.clamp(0.0, 1.0))
    };
    let x_of = |p: f64| ML + pw * x_decades(p) / X_MAX;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" font-family="sans-serif" font-size="11">"#
    );
    let _ = write!(
        s,
        r##"<rect x="{ML}" y="{MT}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>"##
    );
    for (p, label) in X_TICKS {
        let x = x_of(p);
        let _ = write!(
            s,
            r##"<line x1="{x:.1}" y1="{MT}" x2="{x:.1}" y2="{:.1}" stroke="#eee"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{label}</text>"##,
            MT + ph,
            MT + ph + 15.0
        );
    }
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">percentile</text>"#,
        ML + pw / 2.0,
        H - 8.0
    );
    for i in 0..=4 {
        let us = if log_y {
            10f64.powf(max_us.log10() * f64::from(i) / 4.0)
        } else {
            max_us * f64::from(i) / 4.0
        };
        let y = y_of(us);
        let _ = write!(
            s,
            r##"<line x1="{ML}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            ML + pw,
            ML - 5.0,
            y + 4.0,
            fmt_us(us.round() as u64)
        );
    }
    for (i, sc) in report.scenarios.iter().enumerate() {
        let colour = colour(i);
        let points: Vec<String> = sc
            .report
            .latency
            .curve_us
            .iter()
            .map(|&(p, us)| format!("{:.1},{:.1}", x_of(p), y_of(us as f64)))
            .collect();
        let _ = write!(
            s,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
            points.join(" ")
        );
        let ly = MT + 14.0 + 16.0 * i as f64;
        let lx = W - MR + 10.0;
        let _ = write!(
            s,
            r#"<rect x="{lx:.1}" y="{:.1}" width="12" height="3" fill="{colour}"/><text x="{:.1}" y="{ly:.1}">{}</text>"#,
            ly - 4.0,
            lx + 16.0,
            escape(&sc.name)
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_map_to_decades() {
        assert_eq!(x_decades(0.0), 0.0);
        assert!((x_decades(90.0) - 1.0).abs() < 1e-9);
        assert!((x_decades(99.9) - 3.0).abs() < 1e-6);
        assert_eq!(x_decades(100.0), X_MAX);
    }
}
