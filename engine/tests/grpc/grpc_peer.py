"""The gRPC peers of engine/tests/grpc.rs, on grpcio (installed by .ci/test).

`server [--tls CERT KEY] [--max-streams N]`: a grpcio server on 127.0.0.1, port 0, plain
TCP (h2c) or TLS (ALPN h2) with CERT/KEY, service `test.Echo` with generic handlers over raw
bytes (no generated code), `grpc.max_concurrent_streams` N when given. Prints {"port": N} on
stdout, serves until stdin closes. `Events` (a unary method, called directly) returns what the
server noticed as JSON: calls cancelled by the peer, calls completed, the peers it served.

`raw ADDR AUTHORITY CASE`: one call written with the `h2` package (h2c, prior knowledge), for
what grpcio will not send: `deadline` (a `grpc-timeout: 200m` call to `Sleep` that the client
itself never cancels), `long_path` (a head Torii refuses before it is a request). Prints the
response head, trailers, reset code and elapsed seconds as JSON.

`client ADDR AUTHORITY SCENARIO [--tls-ca=PEM] [--tls-name=NAME] [KEY=VALUE metadata...]`:
one scenario through ADDR with `:authority` AUTHORITY (over TLS trusting PEM, verifying NAME,
when --tls-ca is given); prints one JSON line with what it saw (code, details, messages,
metadata, elapsed seconds), exits 0 unless the script itself broke.
"""

import json
import os
import sys
import threading
import time
from concurrent import futures

import grpc

SERVICE = "test.Echo"
MAX = 16 * 1024 * 1024
OPTS = [
    ("grpc.max_send_message_length", MAX),
    ("grpc.max_receive_message_length", MAX),
]
DETAILS = b"\x08\x03\x12\x0bbad request\x1a\x03\x00\xff\x01"
# What the server noticed (see `Events`), guarded by LOCK.
LOCK = threading.Lock()
EVENTS = {"cancelled": [], "done": [], "peers": [], "inflight": 0, "max_inflight": 0}


def ident(b):
    return b


def seen(context):
    """What the backend saw, as trailing metadata (headers Torii added or kept)."""
    md = dict(context.invocation_metadata())
    out = []
    keys = ("x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "authorization",
            "otoroshi-claim", "otoroshi-state")
    for k in keys:
        if k in md:
            out.append(("seen-" + k, md[k]))
    out.append(("seen-present", ",".join(sorted(md.keys()))))
    return tuple(out)


def unary(req, context):
    context.set_trailing_metadata(seen(context))
    return req


def big(req, context):
    return req


def server_stream(req, context):
    n = int(req.decode())
    for i in range(n):
        yield ("msg-%d" % i).encode()


def client_stream(reqs, context):
    total = 0
    count = 0
    for r in reqs:
        total += len(r)
        count += 1
    return ("%d/%d" % (count, total)).encode()


def bidi(reqs, context):
    for r in reqs:
        yield b"echo:" + r


def fail(req, context):
    context.set_trailing_metadata((("grpc-status-details-bin", DETAILS),))
    context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad thing: caf\u00e9 100%")


def note(kind, what):
    with LOCK:
        EVENTS[kind].append(what)


def sleep(req, context):
    """Sleeps int(req) ms unless the call is cancelled first; notes which."""
    end = time.monotonic() + int(req.decode()) / 1000
    while time.monotonic() < end:
        if not context.is_active():
            note("cancelled", "sleep")
            return b""
        time.sleep(0.01)
    note("done", "sleep")
    return b"slept"


def hold(req, context):
    """Holds the call int(req) ms, counting the calls in flight at once and their peers."""
    with LOCK:
        EVENTS["inflight"] += 1
        EVENTS["max_inflight"] = max(EVENTS["max_inflight"], EVENTS["inflight"])
        EVENTS["peers"].append(context.peer())
    time.sleep(int(req.decode()) / 1000)
    with LOCK:
        EVENTS["inflight"] -= 1
    return b"held"


def ticker(req, context):
    """N messages, one every MS milliseconds (req: b"N/MS")."""
    n, ms = (int(x) for x in req.decode().split("/"))
    for i in range(n):
        if i:
            time.sleep(ms / 1000)
        yield ("tick-%d" % i).encode()


def die(req, context):
    """Two messages, then the whole server process ends mid-stream."""
    yield b"one"
    yield b"two"
    time.sleep(0.3)
    os._exit(3)


def events(req, context):
    with LOCK:
        return json.dumps(EVENTS).encode()


def serve(args):
    opts = list(OPTS)
    if "--max-streams" in args:
        opts.append(("grpc.max_concurrent_streams", int(args[args.index("--max-streams") + 1])))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32), options=opts)
    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(unary, ident, ident),
        "Big": grpc.unary_unary_rpc_method_handler(big, ident, ident),
        "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream, ident, ident),
        "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream, ident, ident),
        "Bidi": grpc.stream_stream_rpc_method_handler(bidi, ident, ident),
        "Fail": grpc.unary_unary_rpc_method_handler(fail, ident, ident),
        "Sleep": grpc.unary_unary_rpc_method_handler(sleep, ident, ident),
        "Hold": grpc.unary_unary_rpc_method_handler(hold, ident, ident),
        "Ticker": grpc.unary_stream_rpc_method_handler(ticker, ident, ident),
        "Die": grpc.unary_stream_rpc_method_handler(die, ident, ident),
        "Events": grpc.unary_unary_rpc_method_handler(events, ident, ident),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    if "--tls" in args:
        i = args.index("--tls")
        with open(args[i + 1], "rb") as c, open(args[i + 2], "rb") as k:
            creds = grpc.ssl_server_credentials(((k.read(), c.read()),))
        port = server.add_secure_port("127.0.0.1:0", creds)
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(json.dumps({"port": port}), flush=True)
    sys.stdin.read()
    server.stop(0)


def method(channel, kind, name):
    path = "/%s/%s" % (SERVICE, name)
    make = getattr(channel, kind)
    return make(path, request_serializer=ident, response_deserializer=ident)


def error_json(e):
    return {
        "code": e.code().name,
        "details": e.details(),
        "trailing": [[k, v.hex() if isinstance(v, bytes) else v] for k, v in (e.trailing_metadata() or ())],
    }


def channel(addr, authority, tls):
    options = OPTS + [("grpc.default_authority", authority)]
    if "ca" not in tls:
        return grpc.insecure_channel(addr, options=options)
    with open(tls["ca"], "rb") as f:
        creds = grpc.ssl_channel_credentials(root_certificates=f.read())
    if "name" in tls:
        options.append(("grpc.ssl_target_name_override", tls["name"]))
    return grpc.secure_channel(addr, creds, options=options)


def run(addr, authority, scenario, metadata, tls):
    out = {"scenario": scenario}
    start = time.monotonic()
    with channel(addr, authority, tls) as ch:
        try:
            if scenario == "unary":
                resp, call = method(ch, "unary_unary", "Unary").with_call(
                    b"hello", metadata=metadata, timeout=10
                )
                out["reply"] = resp.decode()
                out["trailing"] = dict(call.trailing_metadata())
                out["code"] = call.code().name
            elif scenario == "big":
                payload = bytes(range(256)) * (4 * 1024 * 4)  # 4 MiB
                resp = method(ch, "unary_unary", "Big")(payload, metadata=metadata, timeout=20)
                out["same"] = resp == payload
                out["len"] = len(resp)
                out["code"] = "OK"
            elif scenario == "server_stream":
                msgs = [m.decode() for m in method(ch, "unary_stream", "ServerStream")(b"50", metadata=metadata, timeout=10)]
                out["count"] = len(msgs)
                out["first"] = msgs[0]
                out["last"] = msgs[-1]
                out["code"] = "OK"
            elif scenario == "client_stream":
                reqs = (bytes([i % 256]) * (1000 + i) for i in range(100))
                out["reply"] = method(ch, "stream_unary", "ClientStream")(reqs, metadata=metadata, timeout=10).decode()
                out["code"] = "OK"
            elif scenario == "bidi":
                # Each message is sent only after the echo of the previous one came back:
                # the call is bidirectional for real, both halves open at once.
                lock = threading.Condition()
                state = {"next": 0, "got": []}
                n = 20

                def requests():
                    for i in range(n):
                        with lock:
                            ok = lock.wait_for(lambda: len(state["got"]) == i, timeout=10)
                        if not ok:
                            return
                        yield ("m%d" % i).encode()

                for m in method(ch, "stream_stream", "Bidi")(requests(), metadata=metadata, timeout=20):
                    with lock:
                        state["got"].append(m.decode())
                        lock.notify_all()
                out["got"] = state["got"]
                out["code"] = "OK"
            elif scenario == "fail":
                method(ch, "unary_unary", "Fail")(b"x", metadata=metadata, timeout=10)
                out["code"] = "OK"
            elif scenario == "missing":
                method(ch, "unary_unary", "Nope")(b"x", metadata=metadata, timeout=10)
                out["code"] = "OK"
            elif scenario == "deadline":
                # A 200 ms deadline on a call the backend would hold 3 s.
                method(ch, "unary_unary", "Sleep")(b"3000", metadata=metadata, timeout=0.2)
                out["code"] = "OK"
            elif scenario == "sleep2500":
                method(ch, "unary_unary", "Sleep")(b"2500", metadata=metadata, timeout=10)
                out["code"] = "OK"
            elif scenario == "ticker":
                # 11 messages 300 ms apart: 3 s of a stream that is never silent 1 s.
                msgs = [m.decode() for m in method(ch, "unary_stream", "Ticker")(b"11/300", metadata=metadata, timeout=20)]
                out["count"] = len(msgs)
                out["code"] = "OK"
            elif scenario == "slow_client_stream":
                # The client sends 11 messages 300 ms apart; the answer comes at the end.
                def slow():
                    for i in range(11):
                        if i:
                            time.sleep(0.3)
                        yield b"x" * 10
                out["reply"] = method(ch, "stream_unary", "ClientStream")(slow(), metadata=metadata, timeout=20).decode()
                out["code"] = "OK"
            elif scenario == "die":
                got = []
                try:
                    for m in method(ch, "unary_stream", "Die")(b"", metadata=metadata, timeout=10):
                        got.append(m.decode())
                    out["code"] = "OK"
                finally:
                    out["got"] = got
            elif scenario.startswith("concurrent"):
                # N calls at once, each held 1 s by the backend.
                n = int(scenario[len("concurrent"):])
                hold = method(ch, "unary_unary", "Hold")
                fs = [hold.future(b"1000", metadata=metadata, timeout=20) for _ in range(n)]
                codes = []
                for f in fs:
                    try:
                        f.result()
                        codes.append("OK")
                    except grpc.RpcError as e:
                        codes.append(e.code().name)
                out["codes"] = codes
                out["code"] = "OK"
            elif scenario == "greet":
                # examples/grpc/challenge_backend.py's methods.
                path = "/example.Greeter/SayHello"
                make = ch.unary_unary(path, request_serializer=ident, response_deserializer=ident)
                out["reply"] = make(b"torii", metadata=metadata, timeout=10).decode()
                out["code"] = "OK"
            elif scenario == "greet_count":
                path = "/example.Greeter/Count"
                make = ch.unary_stream(path, request_serializer=ident, response_deserializer=ident)
                out["got"] = [m.decode() for m in make(b"5", metadata=metadata, timeout=10)]
                out["code"] = "OK"
            elif scenario == "events":
                out["events"] = json.loads(method(ch, "unary_unary", "Events")(b"", timeout=10))
                out["code"] = "OK"
            else:
                raise SystemExit("unknown scenario " + scenario)
        except grpc.RpcError as e:
            out.update(error_json(e))
    out["elapsed"] = time.monotonic() - start
    print(json.dumps(out), flush=True)


def raw(addr, authority, case):
    import socket

    import h2.config
    import h2.connection
    import h2.events

    host, port = addr.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=10)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    path = "/%s/Sleep" % SERVICE
    headers = [(":method", "POST"), (":scheme", "http"), (":authority", authority)]
    if case == "deadline":
        headers += [(":path", path), ("content-type", "application/grpc"), ("te", "trailers"),
                    ("grpc-timeout", "200m")]
    elif case == "long_path":
        headers += [(":path", "/" + "x" * 10000), ("content-type", "application/grpc"),
                    ("te", "trailers")]
    else:
        raise SystemExit("unknown raw case " + case)
    conn.send_headers(1, headers)
    msg = b"3000"
    conn.send_data(1, b"\x00" + len(msg).to_bytes(4, "big") + msg, end_stream=True)
    sock.sendall(conn.data_to_send())
    out = {"case": case, "headers": None, "trailers": None, "reset": None, "data": 0}
    start = time.monotonic()
    done = False
    while not done and time.monotonic() - start < 8:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        for ev in conn.receive_data(chunk):
            if isinstance(ev, h2.events.ResponseReceived):
                out["headers"] = {k.decode(): v.decode() for k, v in ev.headers}
            elif isinstance(ev, h2.events.TrailersReceived):
                out["trailers"] = {k.decode(): v.decode() for k, v in ev.headers}
            elif isinstance(ev, h2.events.DataReceived):
                out["data"] += len(ev.data)
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamReset):
                out["reset"] = int(ev.error_code)
                done = True
            elif isinstance(ev, h2.events.StreamEnded):
                done = True
        sock.sendall(conn.data_to_send())
    out["elapsed"] = time.monotonic() - start
    sock.close()
    print(json.dumps(out), flush=True)


def main():
    if sys.argv[1] == "raw":
        raw(sys.argv[2], sys.argv[3], sys.argv[4])
    elif sys.argv[1] == "server":
        serve(sys.argv[2:])
    elif sys.argv[1] == "client":
        tls = {}
        md = []
        for kv in sys.argv[5:]:
            if kv.startswith("--tls-ca="):
                tls["ca"] = kv.split("=", 1)[1]
            elif kv.startswith("--tls-name="):
                tls["name"] = kv.split("=", 1)[1]
            else:
                md.append(tuple(kv.split("=", 1)))
        run(sys.argv[2], sys.argv[3], sys.argv[4], md, tls)
    else:
        raise SystemExit("usage: grpc_peer.py server | client ADDR AUTHORITY SCENARIO [K=V...]")


if __name__ == "__main__":
    main()
