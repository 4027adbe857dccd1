//! WebSocket tunnels of the real `torii` binary under signals, with Python's `websockets`
//! client and server (`tests/websocket/ws_peer.py`): a tunnel open across a SIGHUP reload that
//! keeps its admission goes on working; one whose admission a reload withdraws (the route
//! closed to WebSocket, the key disabled, removed or no longer allowed) is closed with a close
//! frame 1008 naming the reason, counted and logged, as is a tunnel whose key expires while it
//! is open and one that reaches `limits.websocket_max_lifetime` (1001); on SIGTERM a tunnel keeps
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
    keyed_config(dir, target, drain_timeout, websocket, "")
}

/// The config with `route_extra` at the end of route `ws` (and whatever follows it).
fn keyed_config(
    dir: &TempDir,
    target: SocketAddr,
    drain_timeout: &str,
    websocket: bool,
    route_extra: &str,
) -> String {
    format!(
        "[gateway]\nworkers = 1\nhttp = [\"127.0.0.1:0\"]\nadmin = \"127.0.0.1:0\"\n\
         drain_timeout = \"{drain_timeout}\"\n\n[access_log]\npath = \"{}\"\n\n\
         [[routes]]\nid = \"ws\"\ndomains = [\"127.0.0.1\"]\ntargets = [\"http://{target}\"]\n\
         websocket = {websocket}\n{route_extra}",
        dir.0.join("access.log").display()
    )
}

/// The access-log line of the tunnel (status 101), once written.
fn tunnel_line(dir: &TempDir) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = std::fs::read_to_string(dir.0.join("access.log")).unwrap_or_default();
        let found = log
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["status"] == 101);
        if let Some(v) = found {
            return v;
        }
        assert!(Instant::now() < deadline, "no tunnel line: {log}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `torii_websocket_tunnels_total{route="ws",result}` from the admin listener.
fn tunnels_total(admin: SocketAddr, result: &str) -> u64 {
    let text = get(admin, "admin", "/metrics").text();
    let needle = format!("torii_websocket_tunnels_total{{route=\"ws\",result=\"{result}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&needle))
        .map_or(0, |v| v.trim().parse().unwrap())
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

    // The new file changes what does not admit the tunnel: it goes on.
    dir.write("torii.toml", &config(&dir, server.addr, "3s", true));
    torii.signal(libc::SIGHUP);
    torii.wait_log("configuration reloaded", Duration::from_secs(10));
    // The worker notices a reload within its 50 ms tick.
    std::thread::sleep(Duration::from_millis(300));

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

/// Opens a tunnel on `url` with `headers`, reloads with `new_config`, and returns what the
/// client saw when Torii closed it, with the time from the reload.
fn closed_by_reload(
    torii: &Torii,
    dir: &TempDir,
    url: &str,
    headers: &[&str],
    new_config: &str,
) -> (Value, Duration) {
    let mut args = vec!["--timeout", "30"];
    for h in headers {
        args.extend(["--header", h]);
    }
    let mut live = ws_client(url, "interactive", &args);
    assert_eq!(live.json(Duration::from_secs(20))["open"], true);
    live.send("echo before the reload");
    assert_eq!(
        live.json(Duration::from_secs(10))["echo"],
        "before the reload"
    );
    dir.write("torii.toml", new_config);
    let reload = Instant::now();
    torii.signal(libc::SIGHUP);
    torii.wait_log("configuration reloaded", Duration::from_secs(10));
    live.send("wait-close");
    let closed = live.json(Duration::from_secs(20));
    (closed, reload.elapsed())
}

#[test]
fn a_reload_that_closes_the_route_to_websocket_closes_its_tunnels_with_1008() {
    let dir = TempDir::new("ws-revoke-route");
    let server = ws_server(&["--mode", "echo"]);
    let path = dir.write("torii.toml", &config(&dir, server.addr, "2s", true));
    let torii = Torii::run(&path);
    let admin = admin_addr(&torii);
    let url = format!("ws://{}/live", torii.addr);
    let off = config(&dir, server.addr, "2s", false);
    let (closed, after) = closed_by_reload(&torii, &dir, &url, &[], &off);
    assert_eq!(closed["closed"], true, "{closed}");
    assert_eq!(closed["code"], 1008, "{closed}");
    assert_eq!(closed["reason"], "websocket_disabled", "{closed}");
    assert!(
        after < Duration::from_secs(5),
        "closed {after:?} after the reload"
    );
    assert_eq!(tunnel_line(&dir)["closed_by"], "revoked");
    assert_eq!(tunnels_total(admin, "revoked"), 1);
    torii.wait_log(
        "websocket tunnel closed by the gateway",
        Duration::from_secs(5),
    );
    // New upgrades follow the new file too.
    let fresh = ws_run(&url, "status", &[]);
    assert_ne!(fresh["status"], 101, "{fresh}");
}

const ALICE: &str = "[routes.apikeys]\n\n[[apikeys]]\nclient_id = \"alice\"\nclient_secret = \"alice-secret-0123456789\"\nallow_client_id_only = true\nroutes = [\"ws\"]\n";

#[test]
fn a_reload_that_disables_removes_or_moves_the_key_closes_its_tunnel_with_1008() {
    let server = ws_server(&["--mode", "echo"]);
    for (tag, new_keys, reason) in [
        ("disabled", ALICE.replace("routes =", "enabled = false\nroutes ="), "key_disabled"),
        ("removed", "[routes.apikeys]\n".to_owned(), "key_removed"),
        (
            "moved",
            format!(
                "{}\n[[routes]]\nid = \"other\"\ndomains = [\"other.test\"]\ntargets = [\"http://{}\"]\n",
                ALICE.replace("[\"ws\"]", "[\"other\"]"),
                server.addr
            ),
            "key_not_allowed",
        ),
    ] {
        let dir = TempDir::new(&format!("ws-revoke-{tag}"));
        let path = dir.write("torii.toml", &keyed_config(&dir, server.addr, "2s", true, ALICE));
        let torii = Torii::run(&path);
        let url = format!("ws://{}/live", torii.addr);
        let new_config = keyed_config(&dir, server.addr, "2s", true, &new_keys);
        let (closed, after) = closed_by_reload(&torii, &dir, &url, &["x-api-key=alice"], &new_config);
        assert_eq!(closed["code"], 1008, "{tag}: {closed}");
        assert_eq!(closed["reason"], reason, "{tag}: {closed}");
        assert!(after < Duration::from_secs(5), "{tag}: closed {after:?} after the reload");
        assert_eq!(tunnel_line(&dir)["closed_by"], "revoked", "{tag}");
    }
}

#[test]
fn a_key_that_expires_while_its_tunnel_is_open_closes_it() {
    let dir = TempDir::new("ws-expiry");
    let server = ws_server(&["--mode", "echo"]);
    // Three whole seconds from now, in RFC 3339.
    let at = torii_engine::secure::unix_now() + 3;
    let valid_until = rfc3339(at);
    let keys = ALICE.replace(
        "routes =",
        &format!("valid_until = \"{valid_until}\"\nroutes ="),
    );
    let path = dir.write(
        "torii.toml",
        &keyed_config(&dir, server.addr, "2s", true, &keys),
    );
    let torii = Torii::run(&path);
    let url = format!("ws://{}/live", torii.addr);
    let mut live = ws_client(
        &url,
        "interactive",
        &["--timeout", "30", "--header", "x-api-key=alice"],
    );
    assert_eq!(live.json(Duration::from_secs(20))["open"], true);
    live.send("wait-close");
    let closed = live.json(Duration::from_secs(20));
    let now = torii_engine::secure::unix_now();
    assert_eq!(closed["code"], 1008, "{closed}");
    assert_eq!(closed["reason"], "key_expired", "{closed}");
    assert!(
        now >= at && now <= at + 3,
        "closed at {now}, key valid until {at}"
    );
}

#[test]
fn websocket_max_lifetime_closes_a_busy_tunnel_with_1001() {
    let dir = TempDir::new("ws-lifetime");
    let server = ws_server(&["--mode", "echo"]);
    let cfg = config(&dir, server.addr, "2s", true).replace(
        "\n\n[access_log]",
        "\n\n[limits]\nwebsocket_max_lifetime = \"2s\"\n\n[access_log]",
    );
    let path = dir.write("torii.toml", &cfg);
    let torii = Torii::run(&path);
    let admin = admin_addr(&torii);
    let url = format!("ws://{}/live", torii.addr);
    let opened = Instant::now();
    let mut live = ws_client(&url, "interactive", &["--timeout", "30"]);
    assert_eq!(live.json(Duration::from_secs(20))["open"], true);
    // Traffic does not extend it (unlike the idle timeout).
    live.send("echo busy");
    assert_eq!(live.json(Duration::from_secs(10))["echo"], "busy");
    live.send("wait-close");
    let closed = live.json(Duration::from_secs(20));
    assert_eq!(closed["code"], 1001, "{closed}");
    assert_eq!(closed["reason"], "max_lifetime", "{closed}");
    let after = opened.elapsed();
    assert!(
        after >= Duration::from_millis(1_900) && after < Duration::from_secs(6),
        "{after:?}"
    );
    assert_eq!(tunnel_line(&dir)["closed_by"], "max_lifetime");
    assert_eq!(tunnels_total(admin, "max_lifetime"), 1);
}

/// `at` (Unix seconds, UTC) as RFC 3339, with the protocol crate's calendar.
fn rfc3339(at: u64) -> String {
    let (y, m, d) = torii_protocol::quota::civil_from_days((at / 86_400) as i64);
    let secs = at % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}
