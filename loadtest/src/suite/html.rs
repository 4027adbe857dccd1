//! `report.html`: the suite's results as one self-contained page (a table and latency-percentile
//! charts drawn as inline SVG; no network, no JavaScript).
//!
//! Pure text generation from a [`SuiteReport`]; writing the file is the caller's job. Every
//! string that comes from outside (names, URLs, reasons) is HTML-escaped.

use std::fmt::Write as _;

use super::results::SuiteReport;
use crate::report::fmt_us;

/// Chart size in SVG user units.
const W: f64 = 760.0;
const H: f64 = 360.0;
/// Margins: left (axis labels), right (legend), top, bottom.
const ML: f64 = 70.0;
const MR: f64 = 150.0;
const MT: f64 = 20.0;
const MB: f64 = 45.0;
/// Line colours, one per scenario (cycled).
const COLOURS: [&str; 11] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    "#7f7f7f", "#bcbd22", "#000000",
];
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
        let colour = COLOURS[i % COLOURS.len()];
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

/// The whole page.
pub fn render(report: &SuiteReport) -> String {
    let mut s = String::new();
    s.push_str("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Torii load-test suite</title>\n");
    s.push_str("<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}</style>\n");
    s.push_str("</head><body>\n<h1>Torii load-test suite</h1>\n");
    let _ = writeln!(
        s,
        "<p>{} run: {} connections, {:.1} s per scenario, generator on {}.</p>",
        if report.quick { "Quick" } else { "Full" },
        report.connections,
        report.duration_s,
        escape(&report.driver)
    );
    s.push_str("<table><tr><th>scenario</th><th>req/s</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th><th>errors</th><th>check failures</th><th>proxy CPU µs/req</th><th>backend CPU µs/req</th></tr>\n");
    for sc in &report.scenarios {
        let r = &sc.report;
        let l = &r.latency;
        let cpu = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into());
        let _ = writeln!(
            s,
            "<tr><td title=\"{}\">{}</td><td>{:.0}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&sc.about),
            escape(&sc.name),
            r.requests_per_s,
            fmt_us(l.get(50.0)),
            fmt_us(l.get(90.0)),
            fmt_us(l.get(99.0)),
            fmt_us(l.get(99.9)),
            fmt_us(l.max_us),
            r.errors.total(),
            r.check_failures,
            cpu(sc.proxy_cpu_us_per_request),
            cpu(sc.backend_cpu_us_per_request)
        );
    }
    s.push_str("</table>\n");
    if !report.skipped.is_empty() {
        s.push_str("<h2>Skipped</h2><ul>\n");
        for sk in &report.skipped {
            let _ = writeln!(s, "<li>{}: {}</li>", escape(&sk.name), escape(&sk.reason));
        }
        s.push_str("</ul>\n");
    }
    s.push_str("<h2>Latency by percentile</h2>\n");
    s.push_str(&latency_chart(report, false));
    s.push_str("\n<h2>Latency by percentile (log scale)</h2>\n");
    s.push_str(&latency_chart(report, true));
    s.push_str("\n</body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Latency, Report};
    use crate::stats::Stats;
    use crate::suite::results::{ScenarioResult, Skipped};

    fn sample() -> SuiteReport {
        let mut stats = Stats::new();
        for us in [100u64, 200, 300, 5000] {
            stats.record_response(200, std::time::Duration::from_micros(us), true);
        }
        let report = Report {
            url: "http://127.0.0.1:1/".into(),
            mode: "closed",
            target_rate: None,
            connections: 1,
            threads: 1,
            driver: "epoll",
            requests: 4,
            duration_s: 1.0,
            requests_per_s: 4.0,
            latency: Latency::from_histogram(&stats.latency),
            status: stats.status.clone(),
            errors: stats.errors,
            check_failures: 0,
            bad_response_example: None,
            tls: None,
            tls_error_example: None,
            cpu: Default::default(),
            cpu_us_per_request: 0.0,
        };
        SuiteReport {
            quick: true,
            connections: 1,
            duration_s: 1.0,
            driver: "epoll".into(),
            scenarios: vec![ScenarioResult {
                name: "torii <plain>".into(),
                about: "a & b".into(),
                report,
                proxy_cpu_us_per_request: Some(12.5),
                backend_cpu_us_per_request: None,
            }],
            skipped: vec![Skipped {
                name: "nginx".into(),
                reason: "not on PATH".into(),
            }],
        }
    }

    #[test]
    fn page_is_self_contained_and_escaped() {
        let page = render(&sample());
        assert!(page.contains("torii &lt;plain&gt;"));
        assert!(!page.contains("torii <plain>"));
        assert!(page.contains("a &amp; b"));
        assert_eq!(page.matches("<svg").count(), 2);
        assert_eq!(page.matches("<polyline").count(), 2);
        assert!(page.contains("12.5"));
        assert!(page.contains("nginx: not on PATH"));
        assert!(!page.contains("<script"));
        assert!(!page.contains("https://"));
    }

    #[test]
    fn percentiles_map_to_decades() {
        assert_eq!(x_decades(0.0), 0.0);
        assert!((x_decades(90.0) - 1.0).abs() < 1e-9);
        assert!((x_decades(99.9) - 3.0).abs() < 1e-6);
        assert_eq!(x_decades(100.0), X_MAX);
    }
}
