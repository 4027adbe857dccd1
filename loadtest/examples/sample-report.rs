//! Writes the suite's `report.html` and `report.json` from made-up numbers covering every
//! scenario (`torii_loadtest::suite::sample`), to look at the page in a browser after changing
//! it, without building `torii` or starting any process:
//!
//! ```sh
//! cargo run -p torii-loadtest --example sample-report -- /tmp/sample-report
//! chromium --headless --no-sandbox --window-size=1400,2400 \
//!     --screenshot=/tmp/sample-report.png file:///tmp/sample-report/report.html
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use torii_loadtest::suite::{sample::sample_report, write_reports};

fn main() -> ExitCode {
    let Some(out) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: sample-report OUT_DIR");
        return ExitCode::from(2);
    };
    match write_reports(&out, &sample_report()) {
        Ok(()) => {
            println!("{}", out.join("report.html").display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sample-report: {e}");
            ExitCode::FAILURE
        }
    }
}
