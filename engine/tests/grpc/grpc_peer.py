"""The gRPC peers of engine/tests/grpc.rs, on grpcio (installed by .ci/test).

`server`: a grpcio server on 127.0.0.1, port 0, plain TCP (h2c), service `test.Echo` with
generic handlers over raw bytes (no generated code). Prints {"port": N} on stdout, serves
until stdin closes.

`client ADDR AUTHORITY SCENARIO [KEY=VALUE metadata...]`: one scenario through ADDR with
`:authority` AUTHORITY; prints one JSON line with what it saw (code, details, messages,
metadata), exits 0 unless the script itself broke.
"""

import json
import sys
import threading
from concurrent import futures

import grpc

SERVICE = "test.Echo"
MAX = 16 * 1024 * 1024
OPTS = [
    ("grpc.max_send_message_length", MAX),
    ("grpc.max_receive_message_length", MAX),
]
DETAILS = b"\x08\x03\x12\x0bbad request\x1a\x03\x00\xff\x01"


def ident(b):
    return b


def seen(context):
    """What the backend saw, as trailing metadata (headers Torii added or kept)."""
    md = dict(context.invocation_metadata())
    out = []
    for k in ("x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "authorization"):
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


def serve():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=OPTS)
    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(unary, ident, ident),
        "Big": grpc.unary_unary_rpc_method_handler(big, ident, ident),
        "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream, ident, ident),
        "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream, ident, ident),
        "Bidi": grpc.stream_stream_rpc_method_handler(bidi, ident, ident),
        "Fail": grpc.unary_unary_rpc_method_handler(fail, ident, ident),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
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


def run(addr, authority, scenario, metadata):
    options = OPTS + [("grpc.default_authority", authority)]
    out = {"scenario": scenario}
    with grpc.insecure_channel(addr, options=options) as ch:
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
            else:
                raise SystemExit("unknown scenario " + scenario)
        except grpc.RpcError as e:
            out.update(error_json(e))
    print(json.dumps(out), flush=True)


def main():
    if sys.argv[1] == "server":
        serve()
    elif sys.argv[1] == "client":
        md = [tuple(kv.split("=", 1)) for kv in sys.argv[5:]]
        run(sys.argv[2], sys.argv[3], sys.argv[4], md)
    else:
        raise SystemExit("usage: grpc_peer.py server | client ADDR AUTHORITY SCENARIO [K=V...]")


if __name__ == "__main__":
    main()
