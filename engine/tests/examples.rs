//! The configurations shipped in `examples/` pass `torii check`, and `torii run` serves them.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::process::{torii_bin, TempDir, Torii};
use common::*;

const SECRET: &str = "an-example-secret-that-is-long-enough-for-hs512-0123456789";

fn examples() -> Vec<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 2);
    files
}

#[test]
fn every_example_passes_check() {
    for file in examples() {
        let out = Command::new(torii_bin())
            .args(["check", "--config", file.to_str().unwrap()])
            .env("CHALLENGE_SECRET", SECRET)
            .env("CLAIM_SECRET", SECRET)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok"));
    }
}

#[test]
fn run_serves_the_basic_example() {
    let text = std::fs::read_to_string(
        examples()
            .into_iter()
            .find(|p| p.ends_with("basic.toml"))
            .unwrap(),
    )
    .unwrap();
    let m = mirror();
    // Same file, on a free port and with the mirror as its backend.
    let text = text
        .replace("127.0.0.1:8080", "127.0.0.1:0")
        .replace("http://127.0.0.1:9001", &format!("http://{m}"));
    let dir = TempDir::new("example");
    let torii = Torii::run(&dir.write("basic.toml", &text));
    let host = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("domains = [\""))
        .and_then(|l| l.split('"').next())
        .unwrap()
        .to_owned();
    assert_eq!(get(torii.addr, &host, "/").status, 200, "host {host}");
}
