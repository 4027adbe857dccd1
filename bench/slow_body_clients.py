#!/usr/bin/env python3
"""Upstream connections held by clients that announce a request body and never send it.

Starts a counting backend (a thread that accepts and counts upstream connections) and `torii
run` (one worker) in front of it, opens N client connections that each send
`POST / HTTP/1.1` with `Content-Length: 5000000` (every other one chunked, every third one with
`Expect: 100-continue`) and no body byte, then reports the upstream connections the backend saw
while the clients waited, and how long Torii took to answer them all (408 at the end of
`body_min_rate_grace`).

    python3 bench/slow_body_clients.py --torii target/release/torii --clients 500

Loopback only; bounded in count and time (gives up after 60 s). The figure goes to
docs/performance.md ("Request bodies that never arrive").
"""

import argparse
import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time


def start_torii(binary, cfg):
    env = dict(os.environ, TORII_LOG="info")
    p = subprocess.Popen([binary, "run", "--config", cfg], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, env=env, text=True)
    deadline = time.time() + 20
    while time.time() < deadline:
        line = p.stderr.readline()
        if not line:
            break
        m = re.search(r"addr=([0-9.]+:[0-9]+)", line)
        if "listening" in line and m:
            host, port = m.group(1).rsplit(":", 1)
            return p, (host, int(port))
    p.kill()
    raise RuntimeError("torii did not start")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--torii", default="target/release/torii")
    ap.add_argument("--clients", type=int, default=500)
    ap.add_argument("--grace", default="5s")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < a.clients * 3 + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(a.clients * 3 + 100, hard), hard))
    backend = socket.socket()
    backend.bind(("127.0.0.1", 0))
    backend.listen(1024)
    accepted = []

    def accept_loop():
        while True:
            try:
                c, _ = backend.accept()
            except OSError:
                return
            accepted.append(time.time())
            c.close()

    threading.Thread(target=accept_loop, daemon=True).start()
    with tempfile.TemporaryDirectory() as d:
        cfg = os.path.join(d, "torii.toml")
        with open(cfg, "w") as f:
            f.write(
                "[gateway]\nworkers = 1\nhttp = [\"127.0.0.1:0\"]\n\n"
                f"[limits]\nbody_min_rate_grace = \"{a.grace}\"\n\n"
                "[[routes]]\nid = \"up\"\ndomains = [\"up.test\"]\n"
                f"targets = [\"http://127.0.0.1:{backend.getsockname()[1]}\"]\n"
            )
        torii, addr = start_torii(a.torii, cfg)
        try:
            started = time.time()
            clients = []
            for i in range(a.clients):
                s = socket.create_connection(addr)
                framing = b"Content-Length: 5000000\r\n" if i % 2 == 0 else b"Transfer-Encoding: chunked\r\n"
                expect = b"Expect: 100-continue\r\n" if i % 3 == 0 else b""
                s.sendall(b"POST /upload HTTP/1.1\r\nHost: up.test\r\n" + framing + expect + b"\r\n")
                s.settimeout(60)
                clients.append(s)
            opened = time.time() - started
            time.sleep(1.0)
            held_while_waiting = len(accepted)
            statuses = {}
            for s in clients:
                buf = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    buf += chunk
                codes = re.findall(rb"HTTP/1\.1 (\d{3})", buf)
                final = codes[-1].decode() if codes else "none"
                statuses[final] = statuses.get(final, 0) + 1
                s.close()
            took = time.time() - started
            print(
                f"clients={a.clients} opened_in={opened:.2f}s upstream_connections_while_waiting="
                f"{held_while_waiting} upstream_connections_total={len(accepted)} "
                f"final_statuses={statuses} all_answered_after={took:.2f}s"
            )
        finally:
            torii.kill()
            backend.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
