#!/usr/bin/env python3
"""Hostile HTTP/2 clients for engine/tests/h2_attacks.rs.

Each attack talks HTTP/2 with prior knowledge (h2c) to ADDR, frame by frame (hyperframe and
hpack, the framing and header-compression packages of the Python `h2` stack, so every frame is
exactly what the attack needs, valid or not), and prints one JSON report on stdout: what the
server answered (GOAWAY and its code, RST_STREAM codes per stream, response statuses, DATA
bytes) and how the connection ended. The Rust test judges the report; this script only
attacks and observes. Loopback only: ADDR is the gateway the test started.

usage: hostile.py ATTACK HOST:PORT AUTHORITY [options]
"""

import json
import socket
import sys
import time

from hpack import Decoder, Encoder
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
CANCEL = 0x8
INITIAL_WINDOW_SIZE = 0x4


class Conn:
    """One HTTP/2 connection and everything observed on it."""

    def __init__(self, addr, settings=None):
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.enc = Encoder()
        self.dec = Decoder()
        self.buf = b""
        self.report = {
            "goaway": None,
            "closed": False,
            "resets": {},
            "statuses": {},
            "data": {},
            "ended": [],
            "send_error": None,
        }
        sf = SettingsFrame(0)
        for k, v in (settings or {}).items():
            sf.settings[k] = v
        self.send(PREFACE + sf.serialize())

    def send(self, data):
        """Sends bytes; notes (and swallows) the error if the server already closed."""
        try:
            self.sock.sendall(data)
            return True
        except OSError as e:
            self.report["send_error"] = type(e).__name__
            return False

    def headers(self, sid, fields, end_stream=True, end_headers=True):
        f = HeadersFrame(sid)
        f.data = self.enc.encode(fields)
        if end_stream:
            f.flags.add("END_STREAM")
        if end_headers:
            f.flags.add("END_HEADERS")
        return f.serialize()

    def request(self, sid, authority, path="/", method="GET", extra=(), end_stream=True):
        fields = [
            (":method", method),
            (":scheme", "http"),
            (":authority", authority),
            (":path", path),
        ] + list(extra)
        return self.headers(sid, fields, end_stream)

    def read(self, seconds, until=None):
        """Reads frames for up to `seconds`, or until the connection ends or until(report)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.report["closed"]:
            if until is not None and until(self.report):
                return
            self.sock.settimeout(max(0.01, min(0.2, deadline - time.monotonic())))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                self.report["closed"] = True
                return
            if not chunk:
                self.report["closed"] = True
                return
            self.buf += chunk
            self._parse()

    def _parse(self):
        while len(self.buf) >= 9:
            frame, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
            if len(self.buf) < 9 + length:
                return
            frame.parse_body(memoryview(self.buf[9 : 9 + length]))
            self.buf = self.buf[9 + length :]
            self._on(frame)

    def _on(self, f):
        r = self.report
        sid = str(f.stream_id)
        if isinstance(f, GoAwayFrame):
            r["goaway"] = f.error_code
        elif isinstance(f, RstStreamFrame):
            r["resets"][sid] = f.error_code
        elif isinstance(f, HeadersFrame):
            try:
                for name, value in self.dec.decode(f.data):
                    if name in (b":status", ":status"):
                        status = int(value)
                        if status >= 200:
                            r["statuses"][sid] = status
            except Exception as e:  # a broken block would be the server's bug: report it
                r["statuses"][sid] = "undecodable: %s" % e
            if "END_STREAM" in f.flags:
                r["ended"].append(sid)
        elif isinstance(f, DataFrame):
            r["data"][sid] = r["data"].get(sid, 0) + len(f.data)
            if "END_STREAM" in f.flags:
                r["ended"].append(sid)
            # Keep the windows open (attacks that want them shut never read DATA).
            if len(f.data):
                self.send(
                    WindowUpdateFrame(0, window_increment=len(f.data)).serialize()
                    + WindowUpdateFrame(f.stream_id, window_increment=len(f.data)).serialize()
                )
        elif isinstance(f, SettingsFrame) and "ACK" not in f.flags:
            self.send(SettingsFrame(0, flags=["ACK"]).serialize())
        elif isinstance(f, PingFrame) and "ACK" not in f.flags:
            self.send(PingFrame(0, opaque_data=f.opaque_data, flags=["ACK"]).serialize())


def rapid_reset(addr, authority, n):
    """CVE-2023-44487: open a stream and cancel it at once, as fast as the socket takes it."""
    c = Conn(addr)
    sent = 0
    batch = []
    for i in range(n):
        sid = 1 + 2 * i
        batch.append(c.request(sid, authority, "/rapid-%d" % i))
        batch.append(RstStreamFrame(sid, error_code=CANCEL).serialize())
        if len(batch) >= 200:
            if not c.send(b"".join(batch)):
                break
            sent += len(batch) // 2
            batch = []
            c.read(0.001)
    if batch and c.send(b"".join(batch)):
        sent += len(batch) // 2
    c.read(5)
    c.report["sent"] = sent
    return c.report


def continuation_flood(addr, authority, megabytes):
    """CVE-2024-27316: a header block that never ends, CONTINUATION after CONTINUATION."""
    c = Conn(addr)
    start = HeadersFrame(1)
    start.data = c.enc.encode(
        [(":method", "GET"), (":scheme", "http"), (":authority", authority), (":path", "/cont")]
    )
    start.flags.add("END_STREAM")
    c.send(start.serialize())
    piece = Encoder().encode([("x-flood", "a" * 8000)])
    sent = 0
    while sent < megabytes * 1024 * 1024:
        if not c.send(ContinuationFrame(1, data=piece).serialize()):
            break
        sent += len(piece)
        if sent % (1024 * 1024) < len(piece):
            c.read(0.01)
        if c.report["closed"] or c.report["goaway"] is not None:
            break
    c.read(5)
    c.report["sent"] = sent
    return c.report


def _open_block(c, authority, path):
    """A HEADERS frame for stream 1 without END_HEADERS: a header block left open."""
    start = HeadersFrame(1)
    start.data = c.enc.encode(
        [(":method", "GET"), (":scheme", "http"), (":authority", authority), (":path", path)]
    )
    start.flags.add("END_STREAM")
    return start.serialize()


def _cut(c, started, seconds, between=None):
    """Waits up to `seconds` for the server to end the connection (GOAWAY or close), calling
    between() every half second; reports when, counted from `started`."""
    deadline = started + seconds
    while time.monotonic() < deadline:
        c.read(0.5, until=lambda r: r["goaway"] is not None)
        if c.report["closed"] or c.report["goaway"] is not None:
            break
        if between is not None:
            between()
    c.report["cut_after"] = time.monotonic() - started
    c.read(1)
    return c.report


def slow_head(addr, authority, seconds):
    """Slowloris over HTTP/2: a header block opened, then silence."""
    c = Conn(addr)
    c.read(0.2)
    started = time.monotonic()
    c.send(_open_block(c, authority, "/slow-head"))
    return _cut(c, started, seconds)


def drip_head(addr, authority, seconds):
    """A header block kept open with one small CONTINUATION every half second."""
    c = Conn(addr)
    c.read(0.2)
    started = time.monotonic()
    c.send(_open_block(c, authority, "/drip-head"))
    piece = Encoder().encode([("x-drip", "a")])
    return _cut(c, started, seconds, lambda: c.send(ContinuationFrame(1, data=piece).serialize()))


def partial_head_frame(addr, authority, seconds):
    """A complete HEADERS frame (END_HEADERS) whose payload never arrives whole."""
    c = Conn(addr)
    c.read(0.2)
    frame = c.request(1, authority, "/partial-head")
    started = time.monotonic()
    c.send(frame[: len(frame) - 3])
    return _cut(c, started, seconds)


def userinfo_authority(addr, authority, _n):
    """One request the h2 crate accepts and Torii refuses (userinfo in :authority, RFC 9113
    §8.3.1), then a good one on the same connection: reports the reset and the status."""
    c = Conn(addr)
    fields = [(":method", "GET"), (":scheme", "http"), (":authority", "user@" + authority),
              (":path", "/m-userinfo")]
    c.send(c.headers(1, fields))
    c.read(3, until=lambda r: "1" in r["resets"] or r["goaway"] is not None)
    c.send(c.request(3, authority, "/after-malformed"))
    c.read(5, until=lambda r: "3" in r["statuses"])
    return c.report


def fragment_path(addr, authority, _n):
    """A :path carrying a #fragment (which no browser sends): reports the status."""
    c = Conn(addr)
    c.send(c.request(1, authority, "/frag-h2?q=1#/../private"))
    c.read(5, until=lambda r: "1" in r["statuses"])
    return c.report


def settings_flood(addr, authority, n):
    """Thousands of SETTINGS frames, never reading the ACKs the server owes."""
    c = Conn(addr)
    frame = SettingsFrame(0)
    frame.settings[INITIAL_WINDOW_SIZE] = 65535
    one = frame.serialize()
    sent = 0
    while sent < n:
        if not c.send(one * 500):
            break
        sent += 500
    c.read(5)
    c.report["sent"] = sent
    return c.report


def ping_flood(addr, authority, n):
    """Thousands of PINGs, never reading the PONGs."""
    c = Conn(addr)
    one = PingFrame(0, opaque_data=b"12345678").serialize()
    sent = 0
    while sent < n:
        if not c.send(one * 500):
            break
        sent += 500
    c.read(5)
    c.report["sent"] = sent
    return c.report


def slow_reader(addr, authority, seconds):
    """A response whose stream window never opens: SETTINGS_INITIAL_WINDOW_SIZE = 0."""
    c = Conn(addr, settings={INITIAL_WINDOW_SIZE: 0})
    c.read(0.5)  # the server's SETTINGS and our ACK
    c.send(c.request(1, authority, "/big"))
    start = time.monotonic()
    # Read without ever sending WINDOW_UPDATE: no DATA can come, only an end.
    deadline = start + seconds
    while time.monotonic() < deadline:
        c.read(0.2)
        if c.report["closed"] or "1" in c.report["resets"] or c.report["goaway"] is not None:
            break
    c.report["cut_after"] = round(time.monotonic() - start, 2)
    return c.report


def slow_body(addr, authority, seconds):
    """A request body that starts and never ends."""
    c = Conn(addr)
    c.send(c.request(1, authority, "/slow-body", "POST", end_stream=False))
    c.send(DataFrame(1, data=b"0123456789").serialize())
    start = time.monotonic()
    c.read(seconds, until=lambda r: "1" in r["statuses"] or "1" in r["resets"])
    c.read(0.5)
    c.report["cut_after"] = round(time.monotonic() - start, 2)
    return c.report


def too_many_streams(addr, authority, n):
    """More concurrent streams than SETTINGS_MAX_CONCURRENT_STREAMS, in one burst."""
    c = Conn(addr)
    c.send(b"".join(c.request(1 + 2 * i, authority, "/many-%d" % i) for i in range(n)))
    c.read(15, until=lambda r: len(r["statuses"]) + len(r["resets"]) >= n)
    return c.report


def oversized_header(addr, authority, kib):
    """One header field larger than the header list size, split over CONTINUATIONs."""
    c = Conn(addr)
    block = c.enc.encode(
        [
            (":method", "GET"),
            (":scheme", "http"),
            (":authority", authority),
            (":path", "/oversized"),
            ("x-big", "b" * (kib * 1024)),
        ]
    )
    first, rest = block[:16384], block[16384:]
    h = HeadersFrame(1, data=first)
    h.flags.add("END_STREAM")
    if not rest:
        h.flags.add("END_HEADERS")
    out = h.serialize()
    while rest:
        piece, rest = rest[:16384], rest[16384:]
        cf = ContinuationFrame(1, data=piece)
        if not rest:
            cf.flags.add("END_HEADERS")
        out += cf.serialize()
    c.send(out)
    c.read(5, until=lambda r: "1" in r["statuses"] or "1" in r["resets"] or r["goaway"] is not None)
    # The connection must still serve a normal request afterwards (unless it was closed).
    if not c.report["closed"] and c.report["goaway"] is None:
        c.send(c.request(3, authority, "/after-oversized"))
        c.read(5, until=lambda r: "3" in r["statuses"])
    return c.report


def malformed_cases(authority):
    base = [(":method", "GET"), (":scheme", "http"), (":authority", authority), (":path", "/m")]
    return {
        "unknown_pseudo": base + [(":foo", "bar")],
        "pseudo_after_regular": [base[0], ("x-a", "1")] + base[1:],
        "missing_path": base[:3],
        "duplicate_path": base + [(":path", "/other")],
        "empty_path": base[:3] + [(":path", "")],
        "connection_header": base + [("connection", "close")],
        "keep_alive_header": base + [("keep-alive", "5")],
        "transfer_encoding": base + [("transfer-encoding", "chunked")],
        "upgrade_header": base + [("upgrade", "h2c")],
        "te_gzip": base + [("te", "gzip")],
        "uppercase_name": base + [("X-Upper", "1")],
        "authority_host_conflict": base + [("host", "other.example")],
        "newline_in_value": base + [("x-a", "a\r\nx-injected: 1")],
        "response_pseudo": base + [(":status", "200")],
    }


def invalid_pseudo(addr, authority, _n):
    """Malformed header lists (RFC 9113 §8.1.1), one connection each."""
    out = {}
    for name, fields in malformed_cases(authority).items():
        c = Conn(addr)
        c.enc.huffman = False
        c.send(c.headers(1, fields))
        c.read(3, until=lambda r: "1" in r["statuses"] or "1" in r["resets"] or r["goaway"] is not None)
        out[name] = c.report
    return out


def cl_mismatch(addr, authority, _n):
    """content-length that disagrees with the DATA frames: fewer bytes, then more."""
    out = {}
    for name, (declared, sent) in {"short": (10, 5), "long": (5, 10)}.items():
        c = Conn(addr)
        c.send(
            c.request(1, authority, "/cl-" + name, "POST", extra=[("content-length", str(declared))], end_stream=False)
            + DataFrame(1, data=b"x" * sent, flags=["END_STREAM"]).serialize()
        )
        c.read(5, until=lambda r: "1" in r["statuses"] or "1" in r["resets"] or r["goaway"] is not None)
        out[name] = c.report
    return out


def reset_in_flight(addr, authority, _n):
    """A request whose backend is slow, reset by the client while it waits."""
    c = Conn(addr)
    c.send(c.request(1, authority, "/hang"))
    c.read(0.5)
    c.send(RstStreamFrame(1, error_code=CANCEL).serialize())
    # The connection stays usable.
    c.send(c.request(3, authority, "/after-reset"))
    c.read(5, until=lambda r: "3" in r["statuses"])
    return c.report


def drain_probe(addr, authority, _n):
    """One request to a slow backend; the test drains the gateway meanwhile. Reports the
    GOAWAY and whether the stream in flight still got its whole response."""
    c = Conn(addr)
    c.send(c.request(1, authority, "/slow"))
    c.read(10, until=lambda r: "1" in r["ended"] and r["goaway"] is not None)
    return c.report


def ok(addr, authority, n):
    """Control: n well-formed GETs on one connection."""
    c = Conn(addr)
    c.send(b"".join(c.request(1 + 2 * i, authority, "/ok-%d" % i) for i in range(n)))
    c.read(10, until=lambda r: len(r["statuses"]) >= n)
    return c.report


ATTACKS = {
    "rapid_reset": rapid_reset,
    "continuation_flood": continuation_flood,
    "settings_flood": settings_flood,
    "ping_flood": ping_flood,
    "slow_reader": slow_reader,
    "slow_body": slow_body,
    "too_many_streams": too_many_streams,
    "oversized_header": oversized_header,
    "invalid_pseudo": invalid_pseudo,
    "cl_mismatch": cl_mismatch,
    "reset_in_flight": reset_in_flight,
    "drain_probe": drain_probe,
    "slow_head": slow_head,
    "fragment_path": fragment_path,
    "userinfo_authority": userinfo_authority,
    "drip_head": drip_head,
    "partial_head_frame": partial_head_frame,
    "ok": ok,
}

if __name__ == "__main__":
    attack, addr, authority = sys.argv[1], sys.argv[2], sys.argv[3]
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    host = addr.rsplit(":", 1)[0]
    if host not in ("127.0.0.1", "localhost", "[::1]"):
        sys.exit("loopback only")
    print(json.dumps(ATTACKS[attack](addr, authority, n)))
