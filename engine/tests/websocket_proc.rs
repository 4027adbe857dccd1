//! WebSocket tunnels of the real `torii` binary under signals, with Python's `websockets`
//! client and server (`tests/websocket/ws_peer.py`): a tunnel open across a SIGHUP reload keeps
//! working while the new configuration applies to new upgrades; on SIGTERM a tunnel keeps
//! working until `drain_timeout` (`/ready` says it waits for it), is then closed by Torii
//! (`closed_by: "drain"` in the access log) and the process exits 0.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::process::{TempDir, Torii};
use common::ws::{ws_client, ws_run, ws_server};
use common::*;
use serde_json::Value;

fn config(dir: &TempDir, target: SocketAddr, drain_timeout: &str, websocket: bool) -> String {
    format!(
        "[gateway]\nworkers = 1\nhttp = [\"127.0.0.1:0\"]\nadmin = \"127.0.0.1:0\"\n\
         drain_timeout = \"{drain_timeout}\"\n\n[access_log]\npath = \"{}\"\n\n\
         [[routes]]\nid = \"ws\"\ndomains = [\"127.0.0.1\"]\ntargets = [\"http://{target}\"]\n\
         websocket = {websocket}\n",
        dir.0.join("access.log").display()
    )
}

/// The admin listener's address, from its start-up line.
fn admin_addr(torii: &Torii) -> SocketAddr {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = torii.log.lock().unwrap().iter().find_map(|l| {
            if !l.contains("admin endpoint up") {
                return None;
            }
            let rest = l.split("addr=").nth(1)?;
            rest.split_whitespace().next()?.parse().ok()
        });
        if let Some(a) = found {
            return a;
        }
        assert!(Instant::now() < deadline, "no admin line");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_tunnel_keeps_working_across_a_reload() {
    let dir = TempDir::new("ws-reload");
    let server = ws_server(&["--mode", "echo"]);
    let path = dir.write("torii.toml", &config(&dir, server.addr, "2s", true));
    let torii = Torii::run(&path);
    let url = format!("ws://{}/live", torii.addr);
    let mut live = ws_client(&url, "interactive", &[]);
    assert_eq!(live.json(Duration::from_secs(20))["open"], true);
    live.send("echo before the reload");
    assert_eq!(
        live.json(Duration::from_secs(10))["echo"],
        "before the reload"
    );

    // The new file stops carrying upgrades on the route: it applies to new requests only.
    dir.write("torii.toml", &config(&dir, server.addr, "2s", false));
    torii.signal(libc::SIGHUP);
    torii.wait_log("configuration reloaded", Duration::from_secs(10));
    let fresh = ws_run(&url, "status", &[]);
    assert_ne!(
        fresh["status"], 101,
        "new upgrades follow the new file: {fresh}"
    );

    live.send("echo after the reload");
    assert_eq!(
        live.json(Duration::from_secs(10))["echo"],
        "after the reload"
    );
    live.send("close");
    live.finish(Duration::from_secs(20));
}

#[test]
fn a_drain_keeps_a_tunnel_until_drain_timeout_then_closes_it() {
    let dir = TempDir::new("ws-drain");
    let server = ws_server(&["--mode", "echo"]);
    let path = dir.write("torii.toml", &config(&dir, server.addr, "3s", true));
    let mut torii = Torii::run(&path);
    let admin = admin_addr(&torii);
    let url = format!("ws://{}/live", torii.addr);
    let mut live = ws_client(&url, "interactive", &["--timeout", "30"]);
    assert_eq!(live.json(Duration::from_secs(20))["open"], true);

    let sigterm = Instant::now();
    torii.signal(libc::SIGTERM);
    torii.wait_log("shutting down: draining", Duration::from_secs(10));
    let ready = get(admin, "admin", "/ready");
    assert_eq!(ready.status, 503);
    assert_eq!(
        ready.text(),
        "draining\n1 websocket tunnels open until drain_timeout\n"
    );
    live.send("echo while draining");
    assert_eq!(live.json(Duration::from_secs(10))["echo"], "while draining");
    live.send("wait-close");
    let closed: Value = live.json(Duration::from_secs(20));
    let after = sigterm.elapsed();
    assert_eq!(closed["closed"], true, "{closed}");
    assert!(
        after >= Duration::from_millis(2_800) && after < Duration::from_secs(6),
        "closed {after:?} after SIGTERM (drain_timeout 3s)"
    );
    let status = torii
        .wait_exit(Duration::from_secs(10))
        .expect("torii exits");
    assert!(status.success(), "{status}");
    let log = std::fs::read_to_string(dir.0.join("access.log")).unwrap();
    let line: Value = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["status"] == 101)
        .unwrap_or_else(|| panic!("no tunnel line: {log}"));
    assert_eq!(line["closed_by"], "drain", "{line}");
    assert!(line["websocket_bytes_in"].as_u64().unwrap() > 0);
}
