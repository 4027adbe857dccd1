//! The real `torii` binary with an https listener under SIGHUP: new connections get the new
//! certificate once the reload is in, an established TLS connection keeps working, and a
//! broken certificate file fails the reload and keeps the previous certificate.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::process::{TempDir, Torii};
use common::tls::{tls_get, ClientOpts, TestCa};
use common::*;

fn config(dir: &TempDir, route_block: &str) -> String {
    format!(
        "[gateway]\nworkers = 2\nhttps = [\"127.0.0.1:0\"]\ndrain_timeout = \"2s\"\n\n\
         [[certificates]]\nid = \"main\"\ncert = \"{}\"\nkey = \"{}\"\n\n{route_block}",
        dir.0.join("gw.pem").display(),
        dir.0.join("gw.key").display()
    )
}

#[test]
fn sighup_swaps_the_certificate_and_a_broken_file_keeps_the_old() {
    let dir = TempDir::new("tls-reload");
    let ca = TestCa::new("reload CA");
    let first = ca.leaf(&["a.test"]);
    first.write(&dir.0, "gw");
    let m = mirror();
    let path = dir.write(
        "torii.toml",
        &config(&dir, &route("a", "a.test", "/", &[m])),
    );
    let torii = Torii::run(&path);
    let addr = torii.addr;
    let opts = ClientOpts::default();
    let x = tls_get(addr, "a.test", &ca.der(), "a.test", "/", &opts).unwrap();
    assert_eq!(x.status(), 200, "{}", x.body());
    assert_eq!(x.server_cert, first.der);

    let second = ca.leaf(&["a.test"]);
    second.write(&dir.0, "gw");
    torii.signal(libc::SIGHUP);
    torii.wait_log("configuration reloaded", Duration::from_secs(10));
    let x = tls_get(addr, "a.test", &ca.der(), "a.test", "/", &opts).unwrap();
    assert_eq!(
        x.server_cert, second.der,
        "new connections get the new certificate"
    );

    std::fs::write(
        dir.0.join("gw.pem"),
        "-----BEGIN CERTIFICATE-----\nbroken\n",
    )
    .unwrap();
    torii.signal(libc::SIGHUP);
    let line = torii.wait_log("reload rejected", Duration::from_secs(10));
    assert!(
        line.contains("certificates[0]"),
        "error names the entry: {line}"
    );
    let x = tls_get(addr, "a.test", &ca.der(), "a.test", "/", &opts).unwrap();
    assert_eq!(x.status(), 200);
    assert_eq!(
        x.server_cert, second.der,
        "the previous certificate is kept"
    );
}

#[test]
fn check_reports_a_missing_certificate_file_with_its_path() {
    let dir = TempDir::new("tls-check");
    let path = dir.write(
        "torii.toml",
        &config(&dir, &route("a", "a.test", "/", &[dead_addr()])),
    );
    let out = std::process::Command::new(common::process::torii_bin())
        .args(["check", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("certificates[0]") && text.contains("cannot read"),
        "{text}"
    );
}
