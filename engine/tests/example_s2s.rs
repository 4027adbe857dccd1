//! The service-to-service example (`examples/service-to-service/run.sh`) end to end: the script
//! generates its CA, certificates and the STS's RSA key, starts the STS (Torii's client-credentials
//! token service), fetches its JWKS, starts two `torii mirror` services, their TLS sidecars and
//! the edge gateway (the real `torii` binary), gets a token from the STS and walks through the
//! five steps with curl. It must finish with "all five steps passed".
//!
//! Needs `openssl` and `curl` (`.ci/test` installs them); without them the test fails, unless
//! `TORII_ALLOW_SKIP` names the missing tool (docs/testing.md).

#![allow(clippy::unwrap_used)]

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
        || Command::new(tool)
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success())
}

/// A base port with the 6 ports from it free on 127.0.0.1 (checked by binding them).
fn free_base() -> u16 {
    let start = 20_000 + (std::process::id() % 2_000) as u16 * 10;
    for base in (start..50_000).step_by(7) {
        let free = (0..6).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok());
        if free {
            return base;
        }
    }
    panic!("no free port range");
}

#[test]
fn service_to_service_example_runs_its_five_steps() {
    for tool in ["openssl", "curl"] {
        if !have(tool) {
            common::prereq::missing(
                tool,
                &format!("{tool} is not installed (the example's script runs it)"),
            );
            return;
        }
    }
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/service-to-service/run.sh");
    let out = Command::new("bash")
        .arg(&script)
        .env("TORII", env!("CARGO_BIN_EXE_torii"))
        .env("BASE_PORT", free_base().to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("all five steps passed"),
        "run.sh failed ({:?})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    for step in ["1. ", "2. ", "3. ", "4. ", "5. "] {
        assert!(
            stdout.contains(&format!("== {step}")),
            "step {step} missing:\n{stdout}"
        );
    }
}
