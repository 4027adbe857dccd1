//! `[routes.cors]` in a real browser: headless Chromium (installed by `.ci/test`) loads a page
//! from one origin (a small HTTP server in this test, on loopback) whose script calls routes of
//! Torii on another origin (another port) with `fetch`, with and without credentials. What the
//! browser lets the script see is the only judge: a preflighted `PUT` with a custom header and
//! an exposed response header, a credentialed call on a route that allows credentials, the same
//! call refused by the browser on a route that answers `*`, a method the policy does not list
//! refused at preflight.
//!
//! Chromium runs with `--headless --dump-dom` and a virtual-time budget, so the page's
//! script finishes before the DOM is printed; the script writes its results into the page.
//! Without Chromium the test fails, or prints SKIPPED with `TORII_ALLOW_SKIP=chromium`
//! (docs/testing.md). Everything listens on loopback, port 0, and stops with the test.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::prereq::{have, missing};
use common::*;

/// The page's script: each call's outcome as `name:status[:exposed header]` or `name:blocked`.
const SCRIPT: &str = r#"
const out = [];
async function call(name, url, init, header) {
  try {
    const r = await fetch(url, init);
    out.push(name + ":" + r.status + (header ? ":" + r.headers.get(header) : ""));
  } catch (e) {
    out.push(name + ":blocked");
  }
}
(async () => {
  await call("put", API + "/cred/items", { method: "PUT", headers: { "X-Api": "1" } }, "x-total");
  await call("cred", API + "/cred/items", { credentials: "include" }, "x-total");
  await call("del", API + "/cred/items", { method: "DELETE" });
  await call("open", API + "/open/x", {});
  await call("opencred", API + "/open/x", { credentials: "include" });
  document.body.textContent = "RESULT " + out.join(" ") + " END";
})();
"#;

/// Serves `page` to every request on a loopback port until dropped.
struct PageServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl PageServer {
    fn start(listener: TcpListener, page: String) -> Self {
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                        let mut buf = [0u8; 4096];
                        let _ = s.read(&mut buf);
                        let resp = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                            page.len()
                        );
                        let _ = s.write_all(resp.as_bytes());
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        PageServer { addr, stop }
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| have(c))
}

#[test]
fn a_browser_calls_a_cors_route_from_another_origin() {
    let Some(browser) = chromium() else {
        missing(
            "chromium",
            "chromium is not installed (apt-get install chromium)",
        );
        return;
    };
    let m = mirror();
    // The page's origin is known once its server listens; Torii's once it starts.
    let page_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let page_origin = format!(
        "http://127.0.0.1:{}",
        page_listener.local_addr().unwrap().port()
    );
    let routes = format!(
        "{}response_headers = {{ set = {{ \"x-total\" = \"7\" }} }}\n[routes.cors]\nallow_origins = [\"{page_origin}\"]\nallow_methods = [\"PUT\"]\nallow_headers = [\"X-Api\"]\nexpose_headers = [\"X-Total\"]\nallow_credentials = true\n{}[routes.cors]\nallow_origins = [\"*\"]\n",
        route("cred", "*", "/cred", &[m]),
        route("open", "*", "/open", &[m]),
    );
    let gw = gateway(&format!("{}{routes}", gateway_header("")));
    let api = format!("http://127.0.0.1:{}", gw.addrs[0].port());
    let page = format!(
        "<!doctype html><html><body>waiting<script>const API = \"{api}\";{SCRIPT}</script></body></html>"
    );
    let server = PageServer::start(page_listener, page);
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("http://{}/", server.addr))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    let result = dom
        .split_once("RESULT ")
        .and_then(|(_, r)| r.split_once(" END"))
        .map(|(r, _)| r.to_owned())
        .unwrap_or_else(|| {
            panic!(
                "no result in the page: {dom}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    assert_eq!(
        result, "put:200:7 cred:200:7 del:blocked open:200 opencred:blocked",
        "{dom}"
    );
}
