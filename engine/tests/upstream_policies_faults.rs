//! Upstream faults under the route's rules, end to end on 127.0.0.1 (in-process gateway, one
//! worker): a backend that accepts and never answers, bounded by `per_try_timeout` and then
//! ejected; what may be retried (a POST whose request was sent is not, one that never left is);
//! and ejections kept across reloads. The policies themselves: `upstream_policies.rs`.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::counting::{backend, config, get_n, table, url, Backend, Behaviour, Client};
use common::process::TempDir;
use common::*;

/// GETs `n` times, each answered 200 by `good` within `within`.
fn all_fast_from(addr: std::net::SocketAddr, n: usize, good: &Backend, within: Duration) {
    let mut c = Client::new(addr);
    for i in 0..n {
        let start = Instant::now();
        let r = c.get("up.test", "/", "").expect("no response");
        let took = start.elapsed();
        assert_eq!(
            (r.status, r.text()),
            (200, good.name.clone()),
            "request {i}"
        );
        assert!(took < within, "request {i} took {took:?}");
    }
}

#[test]
fn a_hanging_backend_costs_one_per_try_timeout_then_is_ejected() {
    let hang = backend("hang", Behaviour::Hang);
    let good = backend("good", Behaviour::Ok);
    let targets = [url(&hang), url(&good)];
    let retry = "[routes.retry]\nattempts = 2\nper_try_timeout = \"200ms\"\non = [\"connect-failure\", \"reset\", \"504\"]\n";

    // Without ejection every other request tries the hung backend first: 200 ms lost, then
    // the other one answers.
    let gw = gateway(&config(&targets, retry));
    all_fast_from(gw.addrs[0], 10, &good, Duration::from_secs(1));
    assert_eq!(hang.hits(), 5, "round robin kept trying it");
    drop(gw);

    // With one gateway failure ejecting, it is tried once and never again.
    let outlier = "[routes.outlier_detection]\nconsecutive_gateway_failure = 1\n";
    let gw = gateway(&config(&targets, &format!("{retry}{outlier}")));
    all_fast_from(gw.addrs[0], 20, &good, Duration::from_secs(1));
    assert_eq!(hang.hits(), 6, "tried once, then ejected");
}

const POST: &str = "POST /p HTTP/1.1\r\nHost: up.test\r\nContent-Length: 5\r\n\r\nhello";

#[test]
fn a_post_that_was_sent_is_not_retried_one_that_never_left_is() {
    // The primary reads each request and closes without answering; the backup answers. With
    // `reset` retried, a GET moves to the backup, but a POST it had sent must not be sent again.
    let closer = backend("closer", Behaviour::CloseAfterRequest);
    let good = backend("good", Behaviour::Ok);
    let retry = "[routes.retry]\nattempts = 2\non = [\"connect-failure\", \"reset\"]\n";
    let gw = gateway(&config(
        &[url(&closer), table(&good, "backup = true")],
        retry,
    ));
    for i in 0..3 {
        let r = Client::new(gw.addrs[0]).send(POST).expect("no response");
        assert_eq!(r.status, 502, "POST {i}: {}", r.text());
    }
    assert_eq!(closer.hits(), 3);
    assert_eq!(good.hits(), 0, "no POST was repeated on the backup");
    let r = Client::new(gw.addrs[0])
        .get("up.test", "/", "")
        .expect("no response");
    assert_eq!((r.status, r.text()), (200, "good".to_owned()), "a GET is");
    assert_eq!(closer.hits(), 4);
    drop(gw);

    // Nothing of a POST left when the connection was refused: it goes to the other endpoint.
    let gw = gateway(&config(
        &[
            format!("\"http://{}\"", dead_addr()),
            table(&good, "backup = true"),
        ],
        retry,
    ));
    let r = Client::new(gw.addrs[0]).send(POST).expect("no response");
    assert_eq!((r.status, r.text()), (200, "good".to_owned()));
    assert_eq!(good.hits(), 2);
}

#[test]
fn an_ejection_outlives_reloads() {
    let bad = backend("bad", Behaviour::Status(503));
    let good = [backend("g1", Behaviour::Ok), backend("g2", Behaviour::Ok)];
    let targets = [url(&good[0]), url(&bad), url(&good[1])];
    let rules = "[routes.outlier_detection]\nconsecutive_gateway_failure = 3\nbase_ejection_time = \"30s\"\n\
                 [routes.retry]\nattempts = 3\non = [\"503\"]\n";
    let dir = TempDir::new("eject-reload");
    let path = dir.write("torii.toml", &config(&targets, rules));
    let gw = gateway(&std::fs::read_to_string(&path).unwrap());
    let addr = gw.addrs[0];
    get_n(addr, 30, |_| String::new());
    assert_eq!(bad.hits(), 3, "ejected at its third 503");

    // A reload that adds another route keeps route r's endpoints whole.
    let other = format!(
        "[[routes]]\nid = \"other\"\ndomains = [\"other.test\"]\ntargets = [{}]\n",
        url(&good[0])
    );
    dir.write("torii.toml", &format!("{}{other}", config(&targets, rules)));
    assert!(gw.reload(&path));
    assert_eq!(
        get(addr, "other.test", "/").status,
        200,
        "the reload is in force"
    );
    get_n(addr, 30, |_| String::new());
    assert_eq!(
        bad.hits(),
        3,
        "still ejected after a reload of another route"
    );

    // One that changes route r's targets keeps the states of the addresses it keeps.
    let g3 = backend("g3", Behaviour::Ok);
    let more = [targets.to_vec(), vec![url(&g3)]].concat();
    dir.write("torii.toml", &config(&more, rules));
    assert!(gw.reload(&path));
    let bodies = get_n(addr, 30, |_| String::new());
    assert!(bodies.iter().any(|b| b == "g3"), "the new target serves");
    assert_eq!(
        bad.hits(),
        3,
        "still ejected after its route's targets changed"
    );
}
