//! PyJWT from the integration tests: `python3 -c` scripts whose stdout is a token or a verdict.
//! PyJWT itself is required (`.ci/test` installs it): without it these helpers fail, never skip.
//! Its `cryptography` extra (RSA/EC) is optional: [`pyjwt_has_crypto`] says SKIPPED without it.
#![allow(dead_code, clippy::unwrap_used)]

use std::process::Command;

/// Fails the test unless `python3` can import PyJWT.
pub fn require_pyjwt() {
    let probe = Command::new("python3").args(["-c", "import jwt"]).output();
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "python3 with PyJWT is required (.ci/test installs it)"
    );
}

/// Whether PyJWT can sign and verify RSA/EC (its `cryptography` extra). When it cannot, prints
/// `SKIPPED: <what> (…)` so the skip shows in the test output.
pub fn pyjwt_has_crypto(what: &str) -> bool {
    require_pyjwt();
    let crypto = Command::new("python3")
        .args([
            "-c",
            "import sys, jwt.algorithms; sys.exit(0 if jwt.algorithms.has_crypto else 1)",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if !crypto {
        eprintln!(
            "SKIPPED: {what} (the `cryptography` module is missing; .ci/test installs \
             pyjwt[crypto] where pip can)"
        );
    }
    crypto
}

/// Runs `python3 -c script args…`, fails the test on a non-zero exit (with Python's stderr),
/// and returns stdout, trimmed.
pub fn python_stdout(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}
