//! Process logging: a `tracing` subscriber writing human-readable lines to stderr.
//!
//! Owns the log filter precedence: `--log` flag, then the `TORII_LOG` environment variable,
//! then `RUST_LOG`, then `info`. Secrets never reach the log: config errors and request failures log key paths
//! and reasons, not values.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Safe to call more than once (later calls do nothing).
pub fn init(flag: Option<&str>) {
    let filter = flag
        .map(str::to_owned)
        .or_else(|| std::env::var("TORII_LOG").ok())
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".to_owned());
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}
