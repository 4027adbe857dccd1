//! The "at a glance" chart of the suite report: per scenario, one bar of requests per second
//! and one of CPU microseconds per request (the proxy's, with the backend's stacked after it),
//! side by side, the scenarios in table order and in the colours of the latency chart.
//!
//! Pure SVG text from a [`SuiteReport`]; the page around it is [`super::html`]. Exact figures
//! are written at the end of each bar and in its tooltip.

use std::fmt::Write as _;

use super::results::{ScenarioResult, SuiteReport};
use super::svg::{escape, style};

/// Width of the chart in SVG user units (beside a 640-wide latency chart on a 1400-pixel
/// window).
const W: f64 = 620.0;
/// Scenario names, right-aligned before this x.
const LABEL_RIGHT: f64 = 125.0;
/// Left edge of the requests/s bars and of the CPU bars.
const RPS_X: f64 = 135.0;
const CPU_X: f64 = 360.0;
/// The longest bar of each panel; the rest of the panel holds its figure.
const BAR_MAX: f64 = 150.0;
/// Rows: the first one's top, each one's height, the bar's height.
const ROW0: f64 = 36.0;
const ROW_H: f64 = 24.0;
const BAR_H: f64 = 14.0;
/// Colour of the backend's share of the CPU bar.
const BACKEND_COLOUR: &str = "#c8c8c8";

/// `37585.4` → `"37 585"`: whole numbers with a space every three digits.
pub fn group_thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// CPU µs per request of the proxy (0 for the direct run) and of the backend.
fn cpu_parts(sc: &ScenarioResult) -> (f64, f64) {
    (
        sc.proxy_cpu_us_per_request.unwrap_or(0.0),
        sc.backend_cpu_us_per_request.unwrap_or(0.0),
    )
}

/// The figure written after a CPU bar: `"24.5 + 12.1 µs"`, or `"12.1 µs (backend)"` for the
/// direct run.
fn cpu_label(sc: &ScenarioResult) -> String {
    let (proxy, backend) = cpu_parts(sc);
    match sc.proxy_cpu_us_per_request {
        Some(_) => format!("{proxy:.1} + {backend:.1} µs"),
        None => format!("{backend:.1} µs (backend)"),
    }
}

/// `len` for `v` on a scale where `max` is [`BAR_MAX`].
fn bar_len(v: f64, max: f64) -> f64 {
    if max > 0.0 && v.is_finite() && v > 0.0 {
        (v / max * BAR_MAX).min(BAR_MAX)
    } else {
        0.0
    }
}

/// The chart: every scenario of `report`, requests/s on the left, CPU per request on the right.
pub fn throughput_and_cpu_chart(report: &SuiteReport) -> String {
    let n = report.scenarios.len();
    let h = ROW0 + ROW_H * n as f64 + 34.0;
    let max_rps = report
        .scenarios
        .iter()
        .map(|s| s.report.requests_per_s)
        .fold(0.0, f64::max);
    let max_cpu = report
        .scenarios
        .iter()
        .map(|s| {
            let (p, b) = cpu_parts(s);
            p + b
        })
        .fold(0.0, f64::max);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {h}" width="{W}" height="{h}" font-family="sans-serif" font-size="11">"#
    );
    let _ = write!(
        s,
        r#"<text x="{RPS_X}" y="16" font-weight="bold">requests per second</text><text x="{CPU_X}" y="16" font-weight="bold">CPU µs per request: proxy + backend</text>"#
    );
    for x in [RPS_X, CPU_X] {
        let _ = write!(
            s,
            r##"<line x1="{x}" y1="{:.1}" x2="{x}" y2="{:.1}" stroke="#999"/>"##,
            ROW0 - 8.0,
            ROW0 + ROW_H * n as f64
        );
    }
    for (i, sc) in report.scenarios.iter().enumerate() {
        let fill = style(i).colour;
        let name = escape(&sc.name);
        let y = ROW0 + ROW_H * i as f64;
        let text_y = y + BAR_H - 3.0;
        let _ = write!(
            s,
            r#"<text x="{LABEL_RIGHT}" y="{text_y:.1}" text-anchor="end">{name}</text>"#
        );
        let rps = sc.report.requests_per_s;
        let len = bar_len(rps, max_rps);
        let _ = write!(
            s,
            r#"<rect x="{RPS_X}" y="{y:.1}" width="{len:.1}" height="{BAR_H}" fill="{fill}"><title>{name}: {rps:.1} requests/s</title></rect><text x="{:.1}" y="{text_y:.1}">{}</text>"#,
            RPS_X + len + 4.0,
            group_thousands(rps)
        );
        let (proxy, backend) = cpu_parts(sc);
        let (plen, blen) = (bar_len(proxy, max_cpu), bar_len(backend, max_cpu));
        let _ = write!(
            s,
            r#"<rect x="{CPU_X}" y="{y:.1}" width="{plen:.1}" height="{BAR_H}" fill="{fill}"><title>{name}: proxy {proxy:.1} µs CPU per request</title></rect><rect x="{:.1}" y="{y:.1}" width="{blen:.1}" height="{BAR_H}" fill="{BACKEND_COLOUR}"><title>{name}: backend {backend:.1} µs CPU per request</title></rect><text x="{:.1}" y="{text_y:.1}">{}</text>"#,
            CPU_X + plen,
            CPU_X + plen + blen + 4.0,
            cpu_label(sc)
        );
    }
    // Legend: the proxy's share is drawn in the scenario's colour (a swatch of three), the
    // backend's in grey.
    let ly = ROW0 + ROW_H * n as f64 + 18.0;
    let _ = write!(
        s,
        r##"<text x="{RPS_X}" y="{ly:.1}" fill="#555">longer is better</text><text x="{:.1}" y="{ly:.1}" fill="#555">shorter is better</text>"##,
        CPU_X + 170.0
    );
    for k in 0..3 {
        let _ = write!(
            s,
            r#"<rect x="{:.1}" y="{:.1}" width="4" height="10" fill="{}"/>"#,
            CPU_X + 4.0 * k as f64,
            ly - 9.0,
            style(k).colour
        );
    }
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{ly:.1}">proxy</text><rect x="{:.1}" y="{:.1}" width="10" height="10" fill="{BACKEND_COLOUR}"/><text x="{:.1}" y="{ly:.1}">backend (mirror)</text>"#,
        CPU_X + 16.0,
        CPU_X + 52.0,
        ly - 9.0,
        CPU_X + 66.0
    );
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(group_thousands(0.0), "0");
        assert_eq!(group_thousands(999.4), "999");
        assert_eq!(group_thousands(1000.0), "1 000");
        assert_eq!(group_thousands(37_585.4), "37 585");
        assert_eq!(group_thousands(1_234_567.0), "1 234 567");
        assert_eq!(group_thousands(-5.0), "0");
    }

    #[test]
    fn bars_scale_to_the_largest_and_never_overflow() {
        assert_eq!(bar_len(50.0, 100.0), BAR_MAX / 2.0);
        assert_eq!(bar_len(100.0, 100.0), BAR_MAX);
        assert_eq!(bar_len(0.0, 100.0), 0.0);
        assert_eq!(bar_len(5.0, 0.0), 0.0);
        assert_eq!(bar_len(f64::NAN, 1.0), 0.0);
    }
}
