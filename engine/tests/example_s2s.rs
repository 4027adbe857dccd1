//! The service-to-service example (`examples/service-to-service/run.sh`) end to end: the script
//! generates its CA and certificates, starts an identity server that is not Torii (`sts.py`,
//! PyJWT, serving its JWKS over HTTPS) and a rogue one, the two services (`service.py`:
//! order-processing calls inventory through Torii over TLS) and the real `torii` binary with
//! `jwks_url`, then walks through six steps with curl: a token with the scope `place-order`
//! goes through both services; one without it is refused 403 at inventory; after the identity
//! server rotates its key, a token signed with the new key is accepted without a reload; a token
//! from the rogue server is refused; the services refuse clients without a certificate. It must
//! finish with "all six steps passed".
//!
//! Needs `openssl`, `curl` and python3 with PyJWT and `cryptography` (`.ci/test` installs them);
//! without one of them the test fails and says which, unless `TORII_ALLOW_SKIP` names the
//! missing tool (docs/testing.md).

#![allow(clippy::unwrap_used)]

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;

/// A base port with the 5 ports from it free on 127.0.0.1 (checked by binding them).
fn free_base() -> u16 {
    let start = 20_000 + (std::process::id() % 2_000) as u16 * 10;
    for base in (start..50_000).step_by(7) {
        let free = (0..5).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok());
        if free {
            return base;
        }
    }
    panic!("no free port range");
}

#[test]
fn service_to_service_example_runs_its_six_steps() {
    for tool in ["openssl", "curl"] {
        if !common::prereq::have(tool) {
            common::prereq::missing(
                tool,
                &format!("{tool} is not installed (the example's script runs it)"),
            );
            return;
        }
    }
    let pyjwt = Command::new("python3")
        .args(["-c", "import jwt, cryptography"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        pyjwt,
        "python3 with PyJWT and cryptography is required (.ci/test installs pyjwt[crypto])"
    );
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
        out.status.success() && stdout.contains("all six steps passed"),
        "run.sh failed ({:?})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    for step in ["1. ", "2. ", "3. ", "4. ", "5. ", "6. "] {
        assert!(
            stdout.contains(&format!("== {step}")),
            "step {step} missing:\n{stdout}"
        );
    }
}
