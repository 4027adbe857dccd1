//! The `torii-loadtest` command line: `run` (the generator) and `suite` (the scenario suite).
//!
//! Owns argument definitions, their validation into [`RunOptions`], the exit-code rule and the
//! printing of the final report. It does no load generation itself.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::generator::{RunOptions, MAX_RUN};
use crate::report::Report;
use crate::response::Checks;
use crate::suite::SuiteArgs;
use crate::target::RequestSpec;
use crate::tls::TlsOptions;

/// Load generator and load-test suite for Torii (HTTP/1.1, keep-alive, io_uring).
#[derive(Debug, Parser)]
#[command(name = "torii-loadtest", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load one URL and print a report. Exit code 1 when any error or check failure happened.
    Run(Box<RunArgs>),
    /// Run the scenario suite (mirror, Torii plain/V1/V2/V2+info token/API key/bearer/TLS,
    /// nginx plain and TLS) and write report.json and report.html.
    Suite(SuiteArgs),
}

/// `torii-loadtest run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Target, `http://127.0.0.1:PORT/path?query` (loopback only unless --allow-remote).
    #[arg(long)]
    pub url: String,
    /// Host header to send (default: the URL's host:port).
    #[arg(long)]
    pub host: Option<String>,
    /// Open connections in total.
    #[arg(short = 'c', long, default_value_t = 16)]
    pub connections: usize,
    /// Generator threads, each with its own runtime.
    #[arg(short = 't', long, default_value_t = 1)]
    pub threads: usize,
    /// How long to send (`10s`, `500ms`, `2m`). Default 10s, or 1h as a cap when -n is given.
    #[arg(short = 'd', long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Stop after this many requests (attempts, errors included).
    #[arg(short = 'n', long = "max-requests")]
    pub max_requests: Option<u64>,
    /// Extra request header, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header")]
    pub headers: Vec<String>,
    /// Request method.
    #[arg(short = 'm', long, default_value = "GET")]
    pub method: String,
    /// Request body: a string, or `@file` to read it from a file.
    #[arg(long)]
    pub body: Option<String>,
    /// Open loop: send this many requests per second in total and measure latency from the
    /// intended send time (coordinated omission corrected). Closed loop when absent.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Per-request timeout (connect, send and the whole response).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Count a check failure when the status differs.
    #[arg(long)]
    pub expect_status: Option<u16>,
    /// Count a check failure unless this header is present (`NAME` or `NAME:substring`).
    #[arg(long)]
    pub expect_header: Vec<String>,
    /// Count a check failure unless the body contains this string.
    #[arg(long)]
    pub expect_body_contains: Option<String>,
    /// Count a check failure when the body contains this string (repeatable), e.g. a
    /// credential the gateway must not forward to a backend that echoes requests.
    #[arg(long)]
    pub expect_body_lacks: Vec<String>,
    /// https: trust the certificates in this PEM file (instead of the built-in Mozilla roots).
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// https: INSECURE, accept any server certificate and name (signatures are still checked).
    /// For self-signed test setups only.
    #[arg(long)]
    pub insecure: bool,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Allow targets outside 127.0.0.0/8 and ::1.
    #[arg(long)]
    pub allow_remote: bool,
    /// Do not print the once-a-second progress line.
    #[arg(long)]
    pub quiet: bool,
}

/// Parses `500ms`, `10s`, `2m`, `1h`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected e.g. 10s, 500ms, 2m"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1e3,
        "us" | "µs" => n / 1e6,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

/// Parses `--expect-header` values: `Name` or `Name:substring`.
pub fn parse_expect_header(v: &str) -> (String, Option<String>) {
    match v.split_once(':') {
        Some((n, sub)) => (n.trim().to_ascii_lowercase(), Some(sub.trim().to_string())),
        None => (v.trim().to_ascii_lowercase(), None),
    }
}

impl RunArgs {
    /// Validates the arguments into run options (reads the `@file` body).
    pub fn to_options(&self) -> Result<RunOptions, String> {
        if self.connections == 0 || self.threads == 0 {
            return Err("-c and -t must be at least 1".into());
        }
        if let Some(rate) = self.rate {
            if !(rate.is_finite() && rate > 0.0) {
                return Err("--rate must be a positive number".into());
            }
        }
        if self.timeout.is_zero() {
            return Err("--timeout must be positive".into());
        }
        let body = match self.body.as_deref() {
            None => Vec::new(),
            Some(b) => match b.strip_prefix('@') {
                Some(path) => std::fs::read(path).map_err(|e| format!("--body @{path}: {e}"))?,
                None => b.as_bytes().to_vec(),
            },
        };
        let duration = match (self.duration, self.max_requests) {
            (Some(d), _) => d.min(MAX_RUN),
            (None, Some(_)) => MAX_RUN,
            (None, None) => Duration::from_secs(10),
        };
        Ok(RunOptions {
            url: self.url.clone(),
            request: RequestSpec {
                method: self.method.to_ascii_uppercase(),
                host: self.host.clone(),
                headers: self.headers.clone(),
                body,
            },
            connections: self.connections.max(self.threads),
            threads: self.threads,
            duration,
            max_requests: self.max_requests,
            rate: self.rate,
            timeout: self.timeout,
            checks: Checks {
                status: self.expect_status,
                headers: self
                    .expect_header
                    .iter()
                    .map(|h| parse_expect_header(h))
                    .collect(),
                body_contains: self
                    .expect_body_contains
                    .as_ref()
                    .map(|s| s.as_bytes().to_vec()),
                body_lacks: self
                    .expect_body_lacks
                    .iter()
                    .map(|s| s.as_bytes().to_vec())
                    .collect(),
            },
            tls: TlsOptions {
                ca: self.ca.clone(),
                insecure: self.insecure,
            },
            allow_remote: self.allow_remote,
            progress: !self.quiet,
        })
    }
}

/// `torii-loadtest run`: runs, prints the table, writes JSON; returns the exit code (0 clean,
/// 1 errors or check failures, 2 could not run).
pub fn run_command(args: &RunArgs) -> i32 {
    let options = match args.to_options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("torii-loadtest: {e}");
            return 2;
        }
    };
    let result = match crate::generator::run(options) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("torii-loadtest: {e}");
            return 2;
        }
    };
    let report = Report::from_run(&result);
    print!("{}", report.table());
    if let Some(path) = &args.json {
        let written = serde_json::to_vec_pretty(&report)
            .map_err(|e| e.to_string())
            .and_then(|j| std::fs::write(path, j).map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("torii-loadtest: --json {}: {e}", path.display());
            return 2;
        }
    }
    if report.failed() {
        println!(
            "FAILED: {} errors and {} check failures",
            report.errors.total(),
            report.check_failures
        );
        return 1;
    }
    0
}

/// Parses the command line and runs the command. Returns the exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => run_command(&args),
        Command::Suite(args) => crate::suite::main(&args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("3 weeks").is_err());
    }

    #[test]
    fn arguments_become_options() {
        let cli = Cli::try_parse_from([
            "torii-loadtest",
            "run",
            "--url",
            "http://127.0.0.1:1/",
            "-n",
            "5",
            "-c",
            "1",
            "-t",
            "2",
            "--expect-header",
            "Content-Type: json",
            "--expect-header",
            "X-A",
            "-m",
            "post",
        ])
        .unwrap();
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        let o = args.to_options().unwrap();
        assert_eq!(o.duration, MAX_RUN);
        assert_eq!(o.connections, 2, "at least one connection per thread");
        assert_eq!(o.request.method, "POST");
        assert_eq!(
            o.checks.headers,
            vec![
                ("content-type".into(), Some("json".into())),
                ("x-a".into(), None)
            ]
        );
        let bad = RunArgs {
            rate: Some(0.0),
            ..*args.clone()
        };
        assert!(bad.to_options().is_err());
        let missing = RunArgs {
            body: Some("@/nonexistent/file".into()),
            ..*args
        };
        assert!(missing
            .to_options()
            .unwrap_err()
            .contains("/nonexistent/file"));
    }
}
