//! `jwks_url` with the real `torii` binary: `torii check` fails when the URL is
//! unreachable and passes once it answers; `torii run` shares one `torii-jwks` thread between
//! the routes naming a URL, starts one for a URL a reload adds, and stops the thread of a URL a
//! reload removes (threads counted in `/proc/PID/task/*/comm`), so reloads never leak fetchers.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::jwks_server::{jwks_of, JwksServer, SigningKey};
use common::process::{spawn, TempDir, Torii};
use common::*;

fn config(routes: &[(&str, &JwksServer)]) -> String {
    let m = mirror();
    let mut cfg =
        "[gateway]\nworkers = 1\nhttp = [\"127.0.0.1:0\"]\ndrain_timeout = \"1s\"\n".to_owned();
    for (id, server) in routes {
        cfg.push_str(&route(id, &format!("{id}.test"), "/", &[m]));
        cfg.push_str(&format!(
            "[routes.jwt]\nalgorithms = [\"ES256\"]\njwks_url = \"{}\"\njwks_ca = \"{}\"\n",
            server.url,
            server.ca_path.as_ref().unwrap().display()
        ));
    }
    if routes.is_empty() {
        cfg.push_str(&route("plain", "plain.test", "/", &[m]));
    }
    cfg
}

fn fetcher_threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim() == "torii-jwks")
        .count()
}

fn wait_threads(pid: u32, want: usize, within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let n = fetcher_threads(pid);
        if n == want || Instant::now() >= deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn check_fails_while_the_url_is_unreachable() {
    let dir = TempDir::new("jwks-check");
    let k = SigningKey::new("k1");
    let server = JwksServer::https(&dir.0, jwks_of(&[&k]));
    let ok = dir.write("ok.toml", &config(&[("a", &server)]));
    let (mut child, _, log) = spawn(&["check", "--config", ok.to_str().unwrap()]);
    assert!(child.wait().unwrap().success(), "{:?}", log.lock().unwrap());
    let dead = format!("https://{}/jwks", dead_addr());
    let bad = dir.write(
        "bad.toml",
        &config(&[("a", &server)]).replace(&server.url, &dead),
    );
    let (mut child, _, log) = spawn(&["check", "--config", bad.to_str().unwrap()]);
    let status = child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let text = log.lock().unwrap().join("\n");
    assert_eq!(status.code(), Some(1), "{text}");
    assert!(
        text.contains("routes[0].jwt") && text.contains(&dead),
        "{text}"
    );
}

#[test]
fn reloads_start_share_and_stop_fetcher_threads() {
    let dir = TempDir::new("jwks-reload");
    let k = SigningKey::new("k1");
    let one = JwksServer::https_at(&dir.0.join("one"), jwks_of(&[&k]), None);
    let two = JwksServer::https_at(&dir.0.join("two"), jwks_of(&[&k]), None);
    let path = dir.write("torii.toml", &config(&[("a", &one), ("b", &one)]));
    let torii = Torii::run(&path);
    let pid = torii.child.id();
    assert_eq!(
        wait_threads(pid, 1, Duration::from_secs(2)),
        1,
        "two routes, one URL, one thread"
    );
    assert_eq!(one.fetches(), 1);
    let reload = |text: String| {
        std::fs::write(&path, text).unwrap();
        torii.signal(libc::SIGHUP);
        torii.wait_log("configuration reloaded", Duration::from_secs(10));
    };
    reload(config(&[("a", &one), ("c", &two)]));
    assert_eq!(
        wait_threads(pid, 2, Duration::from_secs(2)),
        2,
        "a second URL, a second thread"
    );
    assert_eq!(
        one.fetches(),
        1,
        "the kept URL is not fetched again by a reload"
    );
    for _ in 0..3 {
        reload(config(&[("c", &two)]));
        assert_eq!(
            wait_threads(pid, 1, Duration::from_secs(8)),
            1,
            "the dropped URL's thread ended"
        );
        reload(config(&[("a", &one), ("c", &two)]));
        assert_eq!(wait_threads(pid, 2, Duration::from_secs(2)), 2);
    }
    reload(config(&[]));
    assert_eq!(
        wait_threads(pid, 0, Duration::from_secs(8)),
        0,
        "no URL, no thread"
    );
}
