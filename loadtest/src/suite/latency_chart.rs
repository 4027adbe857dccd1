//! The latency-by-percentile charts of the suite report: one line per scenario from p0 to the
//! max, the x axis spaced by "nines" (p90, p99, p99.9, …) as HdrHistogram plots are, the
//! latency linear or logarithmic.
//!
//! The linear chart is for the body of the distributions: its axis stops at the highest p99 of
//! all scenarios when a tail goes further (one stall would otherwise flatten every line to the
//! floor), says so on the chart, and lets the lines leave the top; the log chart shows every
//! point up to the max, on round decades (1 µs, 10 µs, … 1 s), and the table keeps the max.
//!
//! Pure SVG text from a [`SuiteReport`]; the page around it is [`super::html`].

use std::fmt::Write as _;

use super::results::SuiteReport;
use super::svg::{escape, style};

/// Chart size in SVG user units (beside the 620-wide bar chart on a 1400-pixel window).
const W: f64 = 640.0;
const H: f64 = 380.0;
/// Margins: left (axis labels), right (legend), top (the note on a cut axis), bottom.
const ML: f64 = 58.0;
const MR: f64 = 150.0;
const MT: f64 = 30.0;
const MB: f64 = 45.0;
/// Percentiles on the x axis: p0 … p99.999 and the max, plotted at log10(1 / (1 - p)).
const X_TICKS: [(f64, &str); 7] = [
    (0.0, "p0"),
    (90.0, "p90"),
    (99.0, "p99"),
    (99.9, "p99.9"),
    (99.99, "p99.99"),
    (99.999, "p99.999"),
    (100.0, "max"),
];
/// Where p100 (the max) is drawn: one decade past p99.999.
const X_MAX: f64 = 6.0;
/// At most this many intervals between the ticks of a linear axis.
const LINEAR_INTERVALS: f64 = 5.0;

/// The x position (in decades) of percentile `p`.
fn x_decades(p: f64) -> f64 {
    if p >= 100.0 {
        X_MAX
    } else {
        (1.0 / (1.0 - p / 100.0)).log10().min(X_MAX)
    }
}

/// A latency axis: its range in µs, the values to label, and, for a linear axis stopped
/// short of the largest latency, the highest p99 it stops at.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// Logarithmic (decades) or linear from 0.
    pub log: bool,
    /// Bottom, µs (0 on a linear axis, a power of ten on a log one).
    pub lo: f64,
    /// Top, µs: the last tick.
    pub hi: f64,
    /// Every tick from `lo` to `hi`, µs.
    pub ticks: Vec<f64>,
    /// The highest p99 when the axis stops below the largest latency shown.
    pub cut_at_p99: Option<u64>,
}

impl Axis {
    /// Round decades from the one at or below `min_us` to the one at or above `max_us` (at
    /// least one decade): 1 µs, 10 µs, 100 µs, 1 ms, …
    pub fn log(min_us: u64, max_us: u64) -> Axis {
        let decade = |us: u64| (us.max(1) as f64).log10();
        let first = decade(min_us).floor() as i32;
        let last = (decade(max_us).ceil() as i32).max(first + 1);
        let ticks: Vec<f64> = (first..=last).map(|e| 10f64.powi(e)).collect();
        Axis {
            log: true,
            lo: ticks[0],
            hi: ticks[ticks.len() - 1],
            ticks,
            cut_at_p99: None,
        }
    }

    /// From 0 to the first round value at or above `max_us` (at least 1 µs), in at most
    /// [`LINEAR_INTERVALS`] steps of 1, 2, 2.5 or 5 times a power of ten, and of 1 µs at least.
    pub fn linear(max_us: f64) -> Axis {
        let max_us = if max_us.is_finite() {
            max_us.max(1.0)
        } else {
            1.0
        };
        let raw = max_us / LINEAR_INTERVALS;
        let magnitude = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 2.5, 5.0, 10.0]
            .iter()
            .map(|m| m * magnitude)
            .find(|&s| s >= raw)
            .unwrap_or(10.0 * magnitude)
            // The histograms count whole microseconds.
            .max(1.0);
        let intervals = (max_us / step - 1e-9).ceil().max(1.0) as u32;
        let ticks: Vec<f64> = (0..=intervals).map(|i| step * f64::from(i)).collect();
        Axis {
            log: false,
            lo: 0.0,
            hi: step * f64::from(intervals),
            ticks,
            cut_at_p99: None,
        }
    }

    /// The linear axis for `report`: up to the largest latency, unless that lies beyond the
    /// axis that holds the highest p99 of all scenarios; then up to that p99, marked as cut.
    pub fn linear_for(report: &SuiteReport) -> Axis {
        let latencies = report.scenarios.iter().map(|s| &s.report.latency);
        let max = latencies
            .clone()
            .flat_map(|l| l.curve_us.iter().map(|&(_, us)| us))
            .max()
            .unwrap_or(0);
        let p99 = latencies.map(|l| l.get(99.0)).max().unwrap_or(0);
        let cut = Axis::linear(p99 as f64);
        if p99 > 0 && max as f64 > cut.hi {
            Axis {
                cut_at_p99: Some(p99),
                ..cut
            }
        } else {
            Axis::linear(max as f64)
        }
    }

    /// The log axis for `report`: every point of every line.
    pub fn log_for(report: &SuiteReport) -> Axis {
        let points = || {
            report
                .scenarios
                .iter()
                .flat_map(|s| s.report.latency.curve_us.iter().map(|&(_, us)| us))
        };
        Axis::log(points().min().unwrap_or(1), points().max().unwrap_or(1_000))
    }

    /// Where `us` lies between the bottom (0) and the top (1); above 1 past the top of a cut
    /// axis, never below 0.
    fn fraction(&self, us: f64) -> f64 {
        let f = if self.log {
            (us.max(self.lo).log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
        } else {
            us / self.hi
        };
        if f.is_finite() {
            f.max(0.0)
        } else {
            0.0
        }
    }
}

/// A tick's label: `0`, `250 µs`, `1 ms`, `2.5 ms`, `10 ms`, `1 s`.
pub fn tick_label(us: f64) -> String {
    let (value, unit) = if us >= 1e6 {
        (us / 1e6, "s")
    } else if us >= 1e3 {
        (us / 1e3, "ms")
    } else {
        (us, "µs")
    };
    if us <= 0.0 {
        return "0".into();
    }
    let digits = format!("{value:.2}");
    let digits = digits.trim_end_matches('0').trim_end_matches('.');
    format!("{digits} {unit}")
}

/// A latency-by-percentile chart of every scenario; `log_y` draws latency on a log scale.
pub fn latency_chart(report: &SuiteReport, log_y: bool) -> String {
    let axis = if log_y {
        Axis::log_for(report)
    } else {
        Axis::linear_for(report)
    };
    let (pw, ph) = (W - ML - MR, H - MT - MB);
    let y_of = |us: f64| MT + ph * (1.0 - axis.fraction(us));
    let x_of = |p: f64| ML + pw * x_decades(p) / X_MAX;
    let clip = if log_y { "plot-log" } else { "plot-linear" };
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" font-family="sans-serif" font-size="11">"#
    );
    let _ = write!(
        s,
        r#"<defs><clipPath id="{clip}"><rect x="{ML}" y="{MT}" width="{pw}" height="{ph}"/></clipPath></defs>"#
    );
    if let Some(p99) = axis.cut_at_p99 {
        let _ = write!(
            s,
            r##"<text x="{ML}" y="{:.1}" fill="#a00">Axis cut at {}, the highest p99 ({}): the tails are in the log chart and the table.</text>"##,
            MT - 10.0,
            tick_label(axis.hi),
            tick_label(p99 as f64),
        );
    }
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
    for &us in &axis.ticks {
        let y = y_of(us);
        let _ = write!(
            s,
            r##"<line x1="{ML}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e4e4e4"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            ML + pw,
            ML - 5.0,
            y + 4.0,
            tick_label(us)
        );
    }
    let _ = write!(
        s,
        r##"<rect x="{ML}" y="{MT}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>"##
    );
    for (i, sc) in report.scenarios.iter().enumerate() {
        let look = style(i);
        let points: Vec<String> = sc
            .report
            .latency
            .curve_us
            .iter()
            .map(|&(p, us)| format!("{:.1},{:.1}", x_of(p), y_of(us as f64)))
            .collect();
        let _ = write!(
            s,
            r#"<polyline fill="none" {} stroke-width="2" clip-path="url(#{clip})" points="{}"><title>{}</title></polyline>"#,
            look.stroke(),
            points.join(" "),
            escape(&sc.name)
        );
        let ly = MT + 10.0 + 16.0 * i as f64;
        let lx = W - MR + 8.0;
        let _ = write!(
            s,
            r#"<line x1="{lx:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" {} stroke-width="2"/><text x="{:.1}" y="{ly:.1}">{}</text>"#,
            ly - 4.0,
            lx + 22.0,
            ly - 4.0,
            look.stroke(),
            lx + 26.0,
            escape(&sc.name)
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::sample::sample_report;

    #[test]
    fn percentiles_map_to_decades() {
        assert_eq!(x_decades(0.0), 0.0);
        assert!((x_decades(90.0) - 1.0).abs() < 1e-9);
        assert!((x_decades(99.9) - 3.0).abs() < 1e-6);
        assert_eq!(x_decades(100.0), X_MAX);
    }

    #[test]
    fn log_ticks_are_round_decades() {
        let labels = |a: &Axis| a.ticks.iter().map(|&t| tick_label(t)).collect::<Vec<_>>();
        let a = Axis::log(1, 16_450);
        assert_eq!(a.ticks, [1.0, 10.0, 100.0, 1e3, 1e4, 1e5]);
        assert_eq!(
            labels(&a),
            ["1 µs", "10 µs", "100 µs", "1 ms", "10 ms", "100 ms"]
        );
        assert_eq!((a.lo, a.hi), (1.0, 1e5));
        let a = Axis::log(118, 288_255);
        assert_eq!(labels(&a), ["100 µs", "1 ms", "10 ms", "100 ms", "1 s"]);
        // Exact decades stay where they are; one value still gets a decade to stand in.
        assert_eq!(Axis::log(100, 10_000).ticks, [100.0, 1e3, 1e4]);
        assert_eq!(Axis::log(1_000, 1_000).ticks, [1e3, 1e4]);
        assert_eq!(Axis::log(0, 0).ticks, [1.0, 10.0]);
        assert_eq!(tick_label(1e7), "10 s");
    }

    #[test]
    fn linear_ticks_are_round_steps() {
        let labels = |a: &Axis| a.ticks.iter().map(|&t| tick_label(t)).collect::<Vec<_>>();
        assert_eq!(
            labels(&Axis::linear(29_967.0)),
            ["0", "10 ms", "20 ms", "30 ms"]
        );
        assert_eq!(
            labels(&Axis::linear(22_447.0)),
            ["0", "5 ms", "10 ms", "15 ms", "20 ms", "25 ms"]
        );
        assert_eq!(
            labels(&Axis::linear(1_100.0)),
            ["0", "250 µs", "500 µs", "750 µs", "1 ms", "1.25 ms"]
        );
        let exact = Axis::linear(20_000.0);
        assert_eq!(exact.hi, 20_000.0);
        assert_eq!(exact.ticks.len(), 5);
        assert_eq!(Axis::linear(0.0).ticks, [0.0, 1.0]);
        assert_eq!(Axis::linear(f64::NAN).ticks, [0.0, 1.0]);
        for max in [1.0, 7.0, 99.0, 333.0, 4_999.0, 123_456.0, 9e6] {
            let a = Axis::linear(max);
            assert!(a.hi >= max && a.ticks.len() <= 6, "{max}: {a:?}");
        }
    }

    #[test]
    fn the_linear_axis_stops_at_the_highest_p99_when_a_tail_goes_beyond() {
        let mut report = sample_report();
        let p99 = report
            .scenarios
            .iter()
            .map(|s| s.report.latency.get(99.0))
            .max()
            .unwrap();
        let axis = Axis::linear_for(&report);
        assert_eq!(axis.cut_at_p99, Some(p99));
        assert!(
            axis.hi >= p99 as f64 && axis.hi < 2.0 * p99 as f64,
            "{axis:?}"
        );
        let chart = latency_chart(&report, false);
        assert!(
            chart.contains(&format!(
                "Axis cut at {}, the highest p99 ({})",
                tick_label(axis.hi),
                tick_label(p99 as f64)
            )),
            "{chart}"
        );
        assert_eq!(
            chart.matches(r#"clip-path="url(#plot-linear)""#).count(),
            15
        );
        // The log chart reaches the max, cut nowhere, ending on a round decade.
        let log = latency_chart(&report, true);
        assert!(!log.contains("Axis cut"));
        assert!(log.contains(">1 s</text>"), "{log}");
        assert!(log.contains(">100 µs</text>") && log.contains(">1 ms</text>"));
        // Without tails beyond the p99 axis nothing is cut.
        for sc in &mut report.scenarios {
            let p99 = sc.report.latency.get(99.0);
            for point in &mut sc.report.latency.curve_us {
                point.1 = point.1.min(p99);
            }
        }
        assert_eq!(Axis::linear_for(&report).cut_at_p99, None);
        assert!(!latency_chart(&report, false).contains("Axis cut"));
    }

    #[test]
    fn every_line_and_its_legend_share_a_look_of_their_own() {
        let report = sample_report();
        let chart = latency_chart(&report, true);
        for (i, sc) in report.scenarios.iter().enumerate() {
            let stroke = style(i).stroke();
            // The line and the legend's sample.
            assert_eq!(
                chart.matches(&format!("{stroke} ")).count(),
                2,
                "{}",
                sc.name
            );
            assert!(chart.contains(&format!(">{}</text>", sc.name)));
        }
    }
}
