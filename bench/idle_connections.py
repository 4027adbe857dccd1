#!/usr/bin/env python3
"""Memory per idle keep-alive client connection of a running `torii`.

Starts `torii mirror` and `torii run` (one worker) in front of it, sends one request on each
of N client connections and keeps them all open and idle, then reads Torii's VmRSS from
/proc/PID/status: (RSS with N idle connections - RSS after one warm-up request) / N.

    python3 bench/idle_connections.py --torii target/release/torii --connections 10000

Raises its own RLIMIT_NOFILE soft limit up to the hard limit; Torii inherits it. Loopback only.
The figure goes to docs/performance.md ("Memory per idle connection").
"""

import argparse
import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def start(args, needle):
    """Starts a torii command and returns (process, address from its `needle` log line)."""
    env = dict(os.environ, TORII_LOG="info")
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True)
    deadline = time.time() + 20
    while time.time() < deadline:
        line = p.stderr.readline()
        if not line:
            break
        m = re.search(r"addr=([0-9.]+:[0-9]+)", line)
        if needle in line and m:
            host, port = m.group(1).rsplit(":", 1)
            return p, (host, int(port))
    p.kill()
    raise RuntimeError(f"{args} did not start")


def one_request(s):
    s.sendall(b"GET /idle HTTP/1.1\r\nHost: idle.test\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise RuntimeError("closed before the response head")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    m = re.search(rb"(?i)content-length:\s*(\d+)", head)
    need = int(m.group(1)) if m else 0
    while len(body) < need:
        body += s.recv(65536)
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(head.decode(errors="replace"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--torii", default="target/release/torii")
    ap.add_argument("--connections", type=int, default=10000)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.connections + 1000
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    mirror, maddr = start([a.torii, "mirror", "--listen", "127.0.0.1:0", "--workers", "1"], "listening")
    with tempfile.TemporaryDirectory() as d:
        cfg = os.path.join(d, "torii.toml")
        with open(cfg, "w") as f:
            f.write(
                "[gateway]\nworkers = 1\nhttp = [\"127.0.0.1:0\"]\n"
                f"max_connections_per_worker = {a.connections + 100}\n\n"
                "[limits]\nkeepalive_timeout = \"600s\"\n\n"
                "[[routes]]\nid = \"idle\"\ndomains = [\"idle.test\"]\n"
                f"targets = [\"http://{maddr[0]}:{maddr[1]}\"]\n"
            )
        torii, taddr = start([a.torii, "run", "--config", cfg], "listening")
        try:
            warm = socket.create_connection(taddr)
            one_request(warm)
            warm.close()
            time.sleep(0.5)
            before = rss_kib(torii.pid)
            conns = []
            for _ in range(a.connections):
                s = socket.create_connection(taddr)
                one_request(s)
                conns.append(s)
            time.sleep(1.0)
            after = rss_kib(torii.pid)
            per = (after - before) * 1024 / a.connections
            print(
                f"connections={a.connections} rss_before_kib={before} rss_after_kib={after} "
                f"bytes_per_idle_connection={per:.0f}"
            )
            for s in conns:
                s.close()
        finally:
            torii.kill()
            mirror.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
