//! PyJWT from the integration tests: `python -c` scripts whose stdout is a token or a verdict.
//! The interpreter is `$TORII_PYTHON` (`.ci/test` points it at the virtual environment where it
//! installed `pyjwt[crypto]`), else `python3`. PyJWT itself is required: without it these
//! helpers fail, never skip. Its `cryptography` extra (RSA/EC) is required too, unless
//! `TORII_ALLOW_SKIP` holds `pyjwt-crypto` ([`super::prereq`]).
//! Also the check every Python-backed test makes before it starts a script
//! ([`require_imports`]: PyJWT here, `h2` for the HTTP/2 client, `websockets` in `ws.rs`).
#![allow(dead_code, clippy::unwrap_used)]

use std::process::Command;

use super::prereq;

/// The Python interpreter the tests run: `$TORII_PYTHON`, else `python3`.
pub fn python() -> String {
    std::env::var("TORII_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".to_owned())
}

/// Fails the test unless the interpreter can run `imports` (a Python import statement);
/// returns the interpreter. The message names what to install (`pip`, a pip requirement list)
/// and who needs it (`what`): a missing package never shows only as a script's traceback and
/// a test that waited for traffic that never came.
pub fn require_imports(imports: &str, pip: &str, what: &str) -> String {
    let py = python();
    match Command::new(&py).args(["-c", imports]).output() {
        Ok(o) if o.status.success() => py,
        Ok(o) => panic!(
            "{py} cannot `{imports}` (`bash .ci/test` installs {pip} in a virtual environment \
             and sets TORII_PYTHON; or `{py} -m pip install {pip}`): {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("cannot run {py} ({e}): {what} need Python with {pip}"),
    }
}

/// Fails the test unless the interpreter can import PyJWT.
pub fn require_pyjwt() {
    require_imports("import jwt", "'pyjwt[crypto]'", "these tests");
}

/// Fails the test unless the interpreter can import Python's HTTP/2 stack (`h2`, `hyperframe`,
/// `hpack`), which `tests/h2/hostile.py` is written with; returns the interpreter.
pub fn require_h2() -> String {
    require_imports("import h2, hyperframe, hpack", "h2", "the HTTP/2 tests")
}

/// Whether PyJWT can sign and verify RSA/EC (its `cryptography` extra). Without it the test
/// fails, unless `TORII_ALLOW_SKIP` holds `pyjwt-crypto`: then this returns false and the
/// caller skips `what`.
pub fn pyjwt_crypto_or_skip(what: &str) -> bool {
    require_pyjwt();
    let crypto = Command::new(python())
        .args([
            "-c",
            "import sys, jwt.algorithms; sys.exit(0 if jwt.algorithms.has_crypto else 1)",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if !crypto {
        prereq::missing(
            "pyjwt-crypto",
            &format!("{what} needs PyJWT's `cryptography` extra (`pip install 'pyjwt[crypto]'`)"),
        );
    }
    crypto
}

/// Runs `python -c script args…`, fails the test on a non-zero exit (with Python's stderr),
/// and returns stdout, trimmed.
pub fn python_stdout(script: &str, args: &[&str]) -> String {
    let out = Command::new(python())
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
