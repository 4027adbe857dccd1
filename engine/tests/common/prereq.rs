//! Missing prerequisites fail the test: a test that cannot run because a tool, a library or a
//! machine capability is missing fails with a message naming what is missing, unless the
//! environment says that skip is intended (`TORII_ALLOW_SKIP`, a comma-separated list of the
//! names below; docs/testing.md). A skip that passes silently would hide a suite that tests
//! less than it claims, since the harness hides a passing test's output.
#![allow(dead_code, clippy::unwrap_used)]

/// Every name `TORII_ALLOW_SKIP` may hold, with what it skips.
pub const SKIP_NAMES: [(&str, &str); 6] = [
    (
        "pyjwt-crypto",
        "PyJWT's RS256/ES256 checks (the `cryptography` package is missing)",
    ),
    ("openssl", "tests that run `openssl`"),
    ("curl", "tests that run `curl`"),
    ("chromium", "the real-browser CORS test (headless Chromium)"),
    (
        "cpus",
        "tests that need two CPUs this process may run on (engine unit tests)",
    ),
    (
        "ring-setup",
        "io_uring setups the kernel refuses (engine unit tests)",
    ),
];

/// The names listed in `TORII_ALLOW_SKIP`. Fails the test on a name that is not in
/// [`SKIP_NAMES`], so a typo cannot pass for a permission.
pub fn allowed_skips() -> Vec<String> {
    let raw = std::env::var("TORII_ALLOW_SKIP").unwrap_or_default();
    let names: Vec<String> = raw
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    for n in &names {
        assert!(
            SKIP_NAMES.iter().any(|(k, _)| k == n),
            "TORII_ALLOW_SKIP names {n:?}, which is not one of {:?}",
            SKIP_NAMES.map(|(k, _)| k)
        );
    }
    names
}

/// Called when prerequisite `name` is missing (`why` says what and how to get it): fails the
/// test unless `TORII_ALLOW_SKIP` lists `name`, in which case it prints `SKIPPED` and returns
/// (the caller then returns without running the part that needs it).
pub fn missing(name: &str, why: &str) {
    assert!(
        SKIP_NAMES.iter().any(|(k, _)| *k == name),
        "unknown prerequisite {name}"
    );
    if allowed_skips().iter().any(|n| n == name) {
        eprintln!("SKIPPED ({name}, allowed by TORII_ALLOW_SKIP): {why}");
        return;
    }
    panic!(
        "missing prerequisite: {why}. `bash .ci/test` installs it; to skip this on purpose, \
         set TORII_ALLOW_SKIP={name} (docs/testing.md)"
    );
}

/// True when `tool` runs (`tool --version`, or `tool version` for those that take no flag).
pub fn have(tool: &str) -> bool {
    let runs = |arg: &str| {
        std::process::Command::new(tool)
            .arg(arg)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    runs("--version") || runs("version")
}
