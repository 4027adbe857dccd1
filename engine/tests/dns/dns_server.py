"""A DNS server for the run-time re-resolution test (engine/tests/upstream_dns.rs).

Binds UDP 127.0.0.1 on a port the kernel picks, prints `LISTENING <port>` on stdout, then
answers queries until it is killed or its stdin closes. The addresses of NAME (default
`app.test.`) are read from ANSWERS (one IP address a line; IPv4 lines answer A queries, IPv6
lines AAAA queries) at every query, so a test changes the answer by rewriting that file. Every
record has a TTL of TTL seconds (default 1). Other names get NXDOMAIN; a query that does not
parse is ignored. Needs Python's `dnslib` (`.ci/test` installs it).

    python dns_server.py ANSWERS [--name app.test.] [--ttl 1]
"""

import argparse
import ipaddress
import os
import socket
import sys
import threading

from dnslib import AAAA, QTYPE, RCODE, RR, A, DNSLabel, DNSRecord


def read_answers(path):
    """The IPv4 and IPv6 addresses listed in `path` (missing or bad lines: none)."""
    v4, v6 = [], []
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().split()
    except OSError:
        return v4, v6
    for word in lines:
        try:
            ip = ipaddress.ip_address(word)
        except ValueError:
            continue
        (v4 if ip.version == 4 else v6).append(str(ip))
    return v4, v6


def answer(data, name, path, ttl):
    """The reply to the query in `data`, as bytes, or None when it does not parse."""
    try:
        query = DNSRecord.parse(data)
    except Exception:  # a malformed packet: no answer, as a real server
        return None
    reply = query.reply()
    if not query.questions:
        reply.header.rcode = RCODE.FORMERR
        return reply.pack()
    q = query.q
    if q.qname != name:
        reply.header.rcode = RCODE.NXDOMAIN
        return reply.pack()
    v4, v6 = read_answers(path)
    if q.qtype == QTYPE.A:
        for ip in v4:
            reply.add_answer(RR(q.qname, QTYPE.A, rdata=A(ip), ttl=ttl))
    elif q.qtype == QTYPE.AAAA:
        for ip in v6:
            reply.add_answer(RR(q.qname, QTYPE.AAAA, rdata=AAAA(ip), ttl=ttl))
    # Any other type of a known name: NOERROR, no record.
    return reply.pack()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("answers")
    parser.add_argument("--name", default="app.test.")
    parser.add_argument("--ttl", type=int, default=1)
    args = parser.parse_args()
    name = DNSLabel(args.name)

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    print(f"LISTENING {sock.getsockname()[1]}", flush=True)

    # The test keeps stdin open; when it goes away (the test ended), so does the server.
    def watch_stdin():
        sys.stdin.read()
        os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    while True:
        try:
            data, peer = sock.recvfrom(4096)
        except OSError:
            return
        out = answer(data, name, args.answers, args.ttl)
        if out is not None:
            try:
                sock.sendto(out, peer)
            except OSError:
                pass


if __name__ == "__main__":
    main()
