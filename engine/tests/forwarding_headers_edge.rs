//! A client's edge forwarding headers (`Forwarded`, `X-Real-IP`, …) and the `_` spellings of
//! forwarding and Otoroshi headers never reach a backend, read through the mirror's faithful
//! report of every header line (`common::seen`).

#![allow(clippy::unwrap_used)]

mod common;

use common::*;

#[test]
fn edge_forwarding_headers_and_underscore_names_are_dropped() {
    let m = mirror();
    let g = gateway(&format!(
        "{}{}",
        gateway_header(""),
        route("api", "api.test", "/", &[m])
    ));
    let spoofed = [
        "Forwarded: for=6.6.6.6;proto=https",
        "X-Real-IP: 6.6.6.6",
        "True-Client-IP: 6.6.6.6",
        "X-Client-IP: 6.6.6.6",
        "X-Forwarded-Port: 6666",
        "X-Forwarded-Ssl: on",
        "X-Forwarded-Scheme: https",
        "X-Forwarded-Prefix: /spoofed",
        "X-Original-URL: /admin",
        "X-Rewrite-URL: /admin",
        "X_Forwarded_For: 6.6.6.6",
        "Otoroshi_Claim: forged",
    ];
    let r = request(
        g.addrs[0],
        &format!(
            "GET / HTTP/1.1\r\nHost: api.test\r\n{}\r\n\r\n",
            spoofed.join("\r\n")
        ),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    let survived: Vec<String> = j["header_lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| format!("{}: {}", l[0].as_str().unwrap(), l[1].as_str().unwrap()))
        .filter(|l| spoofed.contains(&l.as_str()))
        .collect();
    assert!(survived.is_empty(), "reached the backend: {survived:#?}");
    // And the shared check of every mirror read agrees.
    common::seen::seen(&r);
}
