#!/usr/bin/env python3
"""HTTP/2 over TLS: Torii against nginx, both proxying to the same HTTP/1.1 upstream.

Starts one upstream (nginx answering `return 200` with a 64-byte body, HTTP/1.1 keep-alive),
then, one after the other, each proxy with one worker terminating TLS (the same EC P-256
certificate) and speaking HTTP/2 to h2load:

- nginx: `listen ... ssl http2` (the 1.22 spelling; 1.25+ writes `http2 on;`), `proxy_pass`
  to the upstream with `proxy_http_version 1.1` and an upstream keep-alive pool;
- torii: `https` listener (ALPN h2 by default), one route to the upstream.

For each: a warm-up, then `h2load -c C -m M -D SECONDS` over h2, and the same with `--h1`
(HTTP/1.1 over TLS, one request at a time per connection) for Torii's own HTTP/2 vs HTTP/1.1
cost. It reads the proxy's CPU time (utime + stime of its processes, /proc/PID/stat) around
the measured run, and prints requests/s, CPU microseconds per request and h2load's latency.

    python3 bench/h2_vs_nginx.py --torii target/release/torii [-c 64 -m 10 -D 10]
    python3 bench/h2_vs_nginx.py --torii target/release/torii --profile 8

`--profile SECONDS` measures Torii's h2 row only, with `perf record` (a flat, 1999 Hz sample of
the proxy's own CPU) running for SECONDS during it, and prints where that CPU goes by
component (kernel, h2 and HPACK, TLS, allocator, monoio, Torii's own code...): the breakdown
docs/performance.md gives for HTTP/2. Needs `perf` and a binary with symbols (the release
profile keeps them).

Loopback only; needs nginx, h2load (nghttp2-client) and openssl. The table goes to
docs/performance.md ("HTTP/2").
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def children(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def wait_port(port, deadline=10):
    import socket

    end = time.time() + deadline
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on {port}")


def nginx_conf(d, body):
    return f"""
worker_processes 1;
daemon off;
error_log {d}/nginx-error.log;
pid {d}/PID;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d};
  uwsgi_temp_path {d}; scgi_temp_path {d};
  {body}
}}
"""


def h2load(url, args, h1):
    cmd = ["h2load", "-c", str(args.c), "-D", str(args.D), "--warm-up-time", "2"]
    cmd += ["--h1"] if h1 else ["-m", str(args.m)]
    cmd.append(url)
    out = subprocess.run(cmd, capture_output=True, text=True).stdout
    reqs = re.search(r"finished in [\d.]+\w*, ([\d.]+) req/s", out)
    done = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded", out)
    lat = re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", out)
    if not (reqs and done):
        sys.exit("h2load failed:\n" + out)
    return float(reqs.group(1)), int(done.group(3)), lat.groups() if lat else None, out


def measure(name, pids_of, url, args, h1):
    pids = pids_of()
    c0, t0 = cpu_seconds(pids), time.time()
    rps, ok, lat, _ = h2load(url, args, h1)
    c1 = cpu_seconds(pids)
    # h2load's rate covers the measured window (after warm-up); CPU covers warm-up too, so
    # divide by every request served in the whole run.
    total = rps * args.D + rps * 2
    us = (c1 - c0) / max(total, 1) * 1e6
    proto = "h1" if h1 else "h2"
    print(f"{name:6} {proto}: {rps:10.0f} req/s  {us:6.1f} us CPU/req  ok={ok}  "
          f"latency min/max/mean/sd={lat}")
    return rps, us


# Components of the profile, first match wins: (name, substrings of the symbol or its DSO).
COMPONENTS = [
    ("kernel (TCP, syscalls, scheduling)", ["[kernel", "[unknown]"]),
    ("TLS records (rustls, ring, tokio-rustls)", ["rustls", "ring::", "ring_core", "tokio_rustls", "aes_", "gcm_", "chacha", "sha", "x25519", "p256", "ecp_nistz"]),
    ("h2 crate (frames, HPACK, streams)", ["h2::", "hpack", "<h2::"]),
    ("allocator (malloc, free, memcpy)", ["malloc", "free", "realloc", "calloc", "memcpy", "memmove", "memset", "_int_", "cfree"]),
    ("monoio runtime and io", ["monoio", "io_uring"]),
    ("http, bytes, tokio io adapters", ["http::", "bytes::", "tokio::", "<bytes::", "<http::"]),
    ("Torii (engine, protocol)", ["torii_engine", "torii_protocol", "torii::"]),
]


def profile(pid, seconds, out):
    """perf record -p pid for `seconds`, then the self time by component (percent)."""
    graph = ["--call-graph", "dwarf,16384"] if os.environ.get("H2_PROFILE_CALLERS") else []
    subprocess.run(["perf", "record", "-q", "-F", "1999", *graph, "-p", str(pid), "-o", out,
                    "--", "sleep", str(seconds)], check=True, capture_output=True)
    if graph:
        # Who calls the copies: the callers of memmove, for the reader.
        callers = subprocess.run(["perf", "report", "-i", out, "--stdio", "--no-children",
                                  "--symbols", "__memmove_avx512_unaligned_erms",
                                  "-G", "--percent-limit", "0.3"],
                                 capture_output=True, text=True).stdout
        print("\n".join(callers.splitlines()[:120]))
    rep = subprocess.run(["perf", "report", "-i", out, "--stdio", "--no-children",
                          "--sort", "dso,sym", "--percent-limit", "0"],
                         capture_output=True, text=True).stdout
    totals, top = {}, []
    for line in rep.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[[.k]\]\s+(.*)", line)
        if not m:
            continue
        pct, dso, sym = float(m.group(1)), m.group(2), m.group(3).strip()
        key = f"{dso} {sym}"
        name = next((n for n, subs in COMPONENTS if any(x in key for x in subs)), "other (std, core, libc)")
        totals[name] = totals.get(name, 0.0) + pct
        if len(top) < 25:
            top.append((pct, sym[:110]))
    return totals, top


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--torii", default="target/release/torii")
    ap.add_argument("-c", type=int, default=64)
    ap.add_argument("-m", type=int, default=10)
    ap.add_argument("-D", type=int, default=10)
    ap.add_argument("--profile", type=int, default=0,
                    help="perf-record Torii's h2 row for this many seconds and print where its CPU goes")
    args = ap.parse_args()
    for tool in ("nginx", "h2load", "openssl"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is required")
    d = tempfile.mkdtemp(prefix="h2bench-")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", f"{d}/k1.pem", "-out", f"{d}/cert.pem", "-days", "2",
         "-subj", "/CN=bench.local", "-addext", "subjectAltName=DNS:bench.local"],
        check=True, capture_output=True)
    subprocess.run(["openssl", "pkcs8", "-topk8", "-nocrypt", "-in", f"{d}/k1.pem",
                    "-out", f"{d}/key.pem"], check=True)
    up_port, ngx_port, torii_port = 19180, 19443, 19444
    up_dir = f"{d}/up"
    os.makedirs(up_dir)
    with open(f"{up_dir}/nginx.conf", "w") as f:
        f.write(nginx_conf(up_dir, f"""
  keepalive_requests 1000000;
  server {{ listen 127.0.0.1:{up_port}; location / {{ return 200 "{'x' * 64}"; }} }}"""))
    procs = [subprocess.Popen(["nginx", "-c", f"{up_dir}/nginx.conf"])]
    wait_port(up_port)
    try:
        px_dir = f"{d}/px"
        os.makedirs(px_dir)
        with open(f"{px_dir}/nginx.conf", "w") as f:
            f.write(nginx_conf(px_dir, f"""
  upstream up {{ server 127.0.0.1:{up_port}; keepalive 256; }}
  server {{
    listen 127.0.0.1:{ngx_port} ssl http2;
    ssl_certificate {d}/cert.pem; ssl_certificate_key {d}/key.pem;
    keepalive_requests 1000000;
    location / {{ proxy_pass http://up; proxy_http_version 1.1;
                 proxy_set_header Connection ""; }}
  }}"""))
        ngx = subprocess.Popen(["nginx", "-c", f"{px_dir}/nginx.conf"])
        procs.append(ngx)
        wait_port(ngx_port)
        with open(f"{d}/torii.toml", "w") as f:
            f.write(f"""[gateway]
workers = 1
https = ["127.0.0.1:{torii_port}"]
[[certificates]]
id = "bench"
cert = "{d}/cert.pem"
key = "{d}/key.pem"
[[routes]]
id = "up"
domains = ["*"]
targets = ["http://127.0.0.1:{up_port}"]
""")
        torii = subprocess.Popen([args.torii, "run", "--config", f"{d}/torii.toml"],
                                 stderr=subprocess.DEVNULL, env={**os.environ, "TORII_LOG": "warn"})
        procs.append(torii)
        wait_port(torii_port)
        print(f"h2load -c {args.c} -m {args.m} -D {args.D} (h2) / --h1; 1 worker each; "
              f"{os.cpu_count()} CPUs; load {os.getloadavg()}")
        if args.profile:
            if not shutil.which("perf"):
                sys.exit("perf is required for --profile")
            import threading
            result = {}
            rec = threading.Thread(target=lambda: result.update(
                zip(("totals", "top"), profile(torii.pid, args.profile, f"{d}/perf.data"))))
            # perf starts after h2load's warm-up.
            threading.Timer(2.5, rec.start).start()
            measure("torii", lambda: [torii.pid], f"https://127.0.0.1:{torii_port}/", args, False)
            time.sleep(0.5)
            rec.join()
            print("\nwhere Torii's CPU goes (self time, % of samples):")
            for name, pct in sorted(result.get("totals", {}).items(), key=lambda kv: -kv[1]):
                print(f"  {pct:5.1f} %  {name}")
            print("\ntop symbols:")
            for pct, sym in result.get("top", []):
                print(f"  {pct:5.2f} %  {sym}")
            return
        for round_ in range(2):
            measure("nginx", lambda: children(ngx.pid), f"https://127.0.0.1:{ngx_port}/", args, False)
            measure("torii", lambda: [torii.pid], f"https://127.0.0.1:{torii_port}/", args, False)
            measure("torii", lambda: [torii.pid], f"https://127.0.0.1:{torii_port}/", args, True)
            measure("nginx", lambda: children(ngx.pid), f"https://127.0.0.1:{ngx_port}/", args, True)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=10)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
