//! A synthetic [`SuiteReport`] with every scenario a fully equipped lab runs (challenge
//! mirrors, Redis, the external issuer, nginx with TLS), for looking at the report page without
//! starting any process: the page's tests render it, and `examples/sample-report.rs` writes it
//! to a file for a browser.
//!
//! Owns the fake lab and the made-up numbers only; the latencies are deterministic (no clock,
//! no randomness), shaped like a real run: a body, a tail about four times the median at p99,
//! and a few outliers far beyond it.

use std::path::PathBuf;
use std::time::Duration;

use super::host::{CommitSource, HostInfo, ToriiBuild};
use super::lab::{Gateway, Lab, Nginx, Proc};
use super::results::{ProxyInfo, ScenarioResult, Skipped, SuiteReport};
use super::scenarios::scenarios;
use super::setup::Pki;
use crate::report::{Latency, Report};
use crate::stats::Stats;

/// Worker threads of the fake proxies.
const WORKERS: usize = 2;
/// Latencies recorded per scenario.
const SAMPLES: u32 = 20_000;

/// A lab where every optional part is present, with made-up ports and pids: what
/// [`scenarios`] needs to list the whole suite. Nothing runs.
pub fn full_lab() -> Lab {
    let p = |port, pid| Proc { port, pid };
    Lab {
        guards: Vec::new(),
        mirror: p(9001, 1),
        challenge: Some((p(9002, 2), p(9003, 3))),
        gateway: Gateway {
            http: 8080,
            https: 8443,
            pid: 10,
        },
        proxy_workers: WORKERS,
        nginx: Some(Nginx {
            http: 7000,
            https: Some(7443),
            pid: 20,
            workers: WORKERS,
        }),
        nginx_version: Some("nginx/1.22.1".into()),
        pki: Pki {
            ca: PathBuf::from("/nonexistent/ca.pem"),
            cert: PathBuf::from("/nonexistent/server.pem"),
            key: PathBuf::from("/nonexistent/server.key"),
        },
        apikey_secret: "s3cret".into(),
        redis: Some(p(6390, 30)),
        jwt_token: Some("jw.t.sig".into()),
        skipped: Vec::new(),
    }
}

/// One scenario's result with the given latencies (µs), throughput and CPU per request.
pub fn scenario_result(
    name: &str,
    about: &str,
    proxy: Option<ProxyInfo>,
    latencies_us: impl IntoIterator<Item = u64>,
    requests_per_s: f64,
    cpu_us: (Option<f64>, f64),
) -> ScenarioResult {
    let mut stats = Stats::new();
    for us in latencies_us {
        stats.record_response(200, Duration::from_micros(us), true);
    }
    let requests = stats.responses();
    ScenarioResult {
        name: name.into(),
        about: about.into(),
        proxy,
        report: Report {
            url: "http://127.0.0.1:1/suite?q=1".into(),
            mode: "closed",
            target_rate: None,
            connections: 16,
            threads: 1,
            driver: "io_uring",
            requests,
            duration_s: requests as f64 / requests_per_s.max(1.0),
            requests_per_s,
            latency: Latency::from_histogram(&stats.latency),
            status: stats.status.clone(),
            errors: stats.errors,
            check_failures: 0,
            bad_response_example: None,
            tls: None,
            tls_error_example: None,
            cpu: Default::default(),
            cpu_us_per_request: 0.0,
        },
        proxy_cpu_us_per_request: cpu_us.0,
        backend_cpu_us_per_request: Some(cpu_us.1),
    }
}

/// [`SAMPLES`] latencies around `median_us`: an exponential body and tail (p99 ≈ 4 × the
/// median) and three outliers of 15, 30 and `worst` × the median.
pub fn latencies(median_us: u64, worst: u64) -> impl Iterator<Item = u64> {
    let m = median_us as f64;
    let body = (0..SAMPLES).map(move |i| {
        let u = (f64::from(i) + 0.5) / f64::from(SAMPLES);
        // Quantile u of 0.4·m + an exponential whose median is 0.6·m.
        let us = 0.4 * m - 0.6 * m / std::f64::consts::LN_2 * (1.0 - u).ln();
        us.round() as u64
    });
    body.chain([15 * median_us, 30 * median_us, worst * median_us])
}

/// The median (µs) of each scenario: the mirror fastest, TLS and signatures slower; no two
/// alike, so that no line of the charts hides another.
fn median_of(name: &str) -> u64 {
    match name {
        "mirror" => 300,
        "mirror-ws" => 260,
        "torii-plain" => 650,
        "torii-ws" => 560,
        "nginx" => 600,
        "nginx-ws" => 520,
        "torii-v1" => 700,
        "torii-apikey" => 720,
        "torii-apikey-quota" => 780,
        "torii-v2" => 1_100,
        "torii-v2-info" => 1_200,
        "torii-tls" => 1_000,
        "nginx-tls" => 950,
        "torii-jwt" => 1_350,
        "torii-bearer" => 1_500,
        _ => 800,
    }
}

/// The whole suite, every scenario with its made-up numbers; one outlier (a 400 ms max on
/// `torii-tls`) dwarfs the rest, as a single stall does in a real run.
pub fn sample_report() -> SuiteReport {
    let lab = full_lab();
    let results = scenarios(&lab, "tok.en.sig")
        .into_iter()
        .enumerate()
        .map(|(i, sc)| {
            let median = median_of(&sc.name);
            let worst = if sc.name == "torii-tls" {
                400
            } else {
                40 + 3 * i as u64
            };
            // A closed loop of 16 connections: throughput follows latency.
            let rps = 16.0 * 1e6 / (median as f64 * 1.2);
            let cpu = (
                sc.proxy_info.as_ref().map(|_| median as f64 / 40.0),
                median as f64 / 90.0 + 6.0,
            );
            scenario_result(
                &sc.name,
                &sc.about,
                sc.proxy_info.clone(),
                latencies(median, worst),
                rps,
                cpu,
            )
        })
        .collect();
    SuiteReport {
        quick: true,
        started_utc: "2026-12-05T10:00:00Z".into(),
        host: HostInfo {
            cpu_model: "Synthetic CPU (sample data, not a measurement)".into(),
            logical_cpus: 2,
            usable_cpus: 2,
            kernel: "6.1.0".into(),
            os: "Debian GNU/Linux 12 (bookworm)".into(),
            load_average: "0.10 0.10 0.10".into(),
        },
        torii: ToriiBuild {
            version: "torii 0.1.0".into(),
            binary: "target/release/torii".into(),
            git_commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
            git_dirty: false,
            commit_source: CommitSource::BinaryWorkTree,
        },
        nginx_version: lab.nginx_version.clone(),
        proxy_workers: WORKERS,
        backend_workers: 1,
        generator_threads: 1,
        connections: 16,
        duration_s: 2.0,
        driver: "io_uring".into(),
        scenarios: results,
        skipped: vec![Skipped {
            name: "example-skipped".into(),
            reason: "how a skipped scenario is listed".into(),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_covers_the_whole_suite_with_a_tail_and_an_outlier() {
        let report = sample_report();
        let names: Vec<&str> = report.scenarios.iter().map(|s| s.name.as_str()).collect();
        // The full lab has every optional part: every scenario is there.
        assert_eq!(names.len(), 15);
        for optional in [
            "torii-v2-info",
            "torii-apikey-quota",
            "torii-jwt",
            "nginx-tls",
        ] {
            assert!(names.contains(&optional), "{optional}");
        }
        let plain = &report.scenarios[1].report.latency;
        let (p50, p99, max) = (plain.get(50.0), plain.get(99.0), plain.max_us);
        assert!((600..=700).contains(&p50), "{p50}");
        assert!(p99 > 3 * p50 && p99 < 6 * p50, "{p50} {p99}");
        assert!(max > 30 * p50, "{max}");
        let tls = report.scenarios.iter().find(|s| s.name == "torii-tls");
        assert!(tls.is_some_and(|s| s.report.latency.max_us >= 390_000));
    }
}
