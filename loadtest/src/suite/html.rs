//! `report.html`: the suite's results as one self-contained page (no network, no JavaScript):
//! the setup (date, host, Torii version and commit, the workers of every proxy), the results
//! table, what each scenario measures, and the charts — requests/s and CPU per request as bars
//! ([`super::bar_chart`]) beside the latency-by-percentile lines ([`super::latency_chart`]).
//!
//! Pure text generation from a [`SuiteReport`]; writing the file is the caller's job. Every
//! string that comes from outside (names, URLs, reasons, host facts) is HTML-escaped.

use std::fmt::Write as _;

use super::bar_chart::throughput_and_cpu_chart;
use super::latency_chart::latency_chart;
use super::results::SuiteReport;
use super::svg::{escape, key, style};
use crate::report::fmt_us;

const STYLE: &str = "body{font-family:sans-serif;margin:2em;max-width:1500px}\
table{border-collapse:collapse;margin-bottom:1em}\
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td{white-space:nowrap}\
td:first-child,th:first-child{text-align:left}\
table.text td,table.text th{text-align:left}\
th[scope=row]{text-align:left;background:#f4f4f4}\
.charts{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}\
figure{margin:0}figcaption{font-weight:bold;margin-bottom:6px}\
svg.key{vertical-align:middle;margin-right:6px}";

/// The whole page.
pub fn render(report: &SuiteReport) -> String {
    let mut s = String::new();
    s.push_str("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Torii load-test suite</title>\n");
    let _ = writeln!(s, "<style>{STYLE}</style>");
    s.push_str("</head><body>\n<h1>Torii load-test suite</h1>\n");

    s.push_str("<table class=\"text\">\n");
    for (k, v) in report.setup_lines() {
        let _ = writeln!(
            s,
            "<tr><th scope=\"row\">{k}</th><td>{}</td></tr>",
            escape(&v)
        );
    }
    s.push_str("</table>\n");

    s.push_str("<table><tr><th>scenario</th><th>proxy × workers</th><th>req/s</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th><th>errors</th><th>check failures</th><th>proxy CPU µs/req</th><th>backend CPU µs/req</th></tr>\n");
    let cpu = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into());
    for (i, sc) in report.scenarios.iter().enumerate() {
        let r = &sc.report;
        let l = &r.latency;
        let _ = writeln!(
            s,
            "<tr><td title=\"{}\">{}{}</td><td>{}</td><td>{:.0}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&sc.about),
            key(style(i)),
            escape(&sc.name),
            escape(&sc.proxy_label()),
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
    s.push_str("<p>Proxy CPU: user + system time of the proxy's processes during the scenario, per request (nginx: master and workers). Compare scenarios of one run: everything shares the machine's CPUs.</p>\n");

    s.push_str("<div class=\"charts\">\n<figure><figcaption>At a glance: throughput and CPU per request</figcaption>\n");
    s.push_str(&throughput_and_cpu_chart(report));
    s.push_str("\n</figure>\n<figure><figcaption>Latency by percentile</figcaption>\n");
    s.push_str(&latency_chart(report, false));
    s.push_str("\n</figure>\n<figure><figcaption>Latency by percentile (log scale)</figcaption>\n");
    s.push_str(&latency_chart(report, true));
    s.push_str("\n</figure>\n</div>\n");

    s.push_str("<h2>Scenarios</h2>\n<table class=\"text\"><tr><th>scenario</th><th>what it measures</th></tr>\n");
    for sc in &report.scenarios {
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td>{}</td></tr>",
            escape(&sc.name),
            escape(&sc.about)
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
    s.push_str("</body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::host::{HostInfo, ToriiBuild};
    use crate::suite::results::{ProxyInfo, ScenarioResult, Skipped};
    use crate::suite::sample::scenario_result;

    fn scenario(name: &str, about: &str, proxy: Option<(&str, usize)>, rps: f64) -> ScenarioResult {
        let cpu = (proxy.map(|_| 12.5), 7.0);
        let proxy = proxy.map(|(name, workers)| ProxyInfo {
            name: name.into(),
            workers,
        });
        scenario_result(name, about, proxy, [100, 200, 300, 5000], rps, cpu)
    }

    fn sample() -> SuiteReport {
        SuiteReport {
            quick: true,
            started_utc: "2026-12-04T17:00:00Z".into(),
            host: HostInfo {
                cpu_model: "AMD <EPYC>".into(),
                logical_cpus: 2,
                usable_cpus: 2,
                kernel: "6.1.0".into(),
                os: "Debian GNU/Linux 12 (bookworm)".into(),
                load_average: "0.50 0.40 0.30".into(),
            },
            torii: ToriiBuild {
                version: "torii 0.1.0".into(),
                binary: "target/release/torii".into(),
                git_commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
                git_dirty: true,
                commit_source: crate::suite::host::CommitSource::BinaryWorkTree,
            },
            nginx_version: Some("nginx/1.22.1".into()),
            proxy_workers: 2,
            backend_workers: 1,
            generator_threads: 1,
            connections: 16,
            duration_s: 2.0,
            driver: "epoll".into(),
            scenarios: vec![
                scenario("mirror", "generator → mirror", None, 50_000.0),
                scenario("torii <plain>", "a & b", Some(("torii", 2)), 37_585.4),
                scenario("nginx", "generator → nginx", Some(("nginx", 2)), 30_000.0),
            ],
            skipped: vec![Skipped {
                name: "nginx-tls".into(),
                reason: "no SSL module".into(),
            }],
        }
    }

    #[test]
    fn page_is_self_contained_and_escaped() {
        let page = render(&sample());
        assert!(page.contains("torii &lt;plain&gt;"));
        assert!(!page.contains("torii <plain>"));
        assert!(page.contains("a &amp; b"));
        assert!(page.contains("AMD &lt;EPYC&gt;"));
        // Bars beside two latency charts, and each scenario's key in the table.
        assert_eq!(page.matches("<svg xmlns").count(), 3);
        assert_eq!(page.matches("<svg class=\"key\"").count(), 3);
        assert_eq!(page.matches("<polyline").count(), 6);
        assert!(page.contains("12.5"));
        assert!(page.contains("nginx-tls: no SSL module"));
        assert!(!page.contains("<script"));
        assert!(!page.contains("https://"));
    }

    #[test]
    fn the_whole_suite_is_on_the_page_each_scenario_keyed_to_its_look() {
        let report = crate::suite::sample::sample_report();
        let page = render(&report);
        for (i, sc) in report.scenarios.iter().enumerate() {
            let row = format!("\">{}{}</td>", key(style(i)), sc.name);
            assert_eq!(page.matches(&row).count(), 1, "{row}");
        }
        // Bar chart and log chart: every point of every line; the linear chart is cut.
        assert_eq!(page.matches("Axis cut at").count(), 1);
        assert_eq!(
            page.matches("<polyline").count(),
            2 * report.scenarios.len()
        );
    }

    #[test]
    fn the_setup_says_when_where_what_and_how_many_workers() {
        let report = sample();
        let page = render(&report);
        for needle in [
            "2026-12-04T17:00:00Z",
            "2 logical CPUs (2 usable), kernel 6.1.0, Debian GNU/Linux 12 (bookworm)",
            "load average at start 0.50 0.40 0.30",
            "torii 0.1.0, commit 0123456789ab + uncommitted changes, binary target/release/torii",
            "torii 2 worker threads, nginx 2 worker processes (nginx/1.22.1), mirror 1 worker thread each, generator 1 thread",
            "quick run: closed loop, 16 connections, 2.0 s per scenario",
            "<td>torii ×2</td>",
            "<td>nginx ×2</td>",
            // Each scenario's description is on the page, not only in a tooltip.
            "<tr><td>nginx</td><td>generator → nginx</td></tr>",
        ] {
            assert!(page.contains(needle), "{needle} not in\n{page}");
        }
        let table = report.table();
        assert!(table.contains("date     2026-12-04T17:00:00Z"), "{table}");
        assert!(table.contains("torii ×2"), "{table}");
    }

    #[test]
    fn the_bar_chart_has_one_row_per_scenario_with_its_figures() {
        let chart = throughput_and_cpu_chart(&sample());
        assert!(chart.contains(">37 585</text>"), "{chart}");
        assert!(chart.contains(">50 000</text>"));
        assert!(chart.contains(">12.5 + 7.0 µs</text>"));
        assert!(chart.contains(">7.0 µs (backend)</text>"));
        // Three requests/s bars, three proxy bars (the direct run's is empty), three backend bars.
        // Plus the legend: three proxy colours and the backend grey.
        assert_eq!(chart.matches("<rect").count(), 3 * 3 + 4);
        // The fastest scenario has the full-length bar.
        assert!(
            chart.contains(
                r##"width="150.0" height="14" fill="#1f77b4"><title>mirror: 50000.0 requests/s"##
            ),
            "{chart}"
        );
    }
}
