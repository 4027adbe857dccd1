#!/usr/bin/env python3
"""WebSocket client and server for Torii's tunnel tests, built on Python's `websockets` package
(an implementation that shares no code with Torii) and PyJWT.

    ws_peer.py server --mode echo|refuse [--secret S --audience A] [--cert C --key K]
    ws_peer.py client --url URL --scenario basic|many|status|idle|interactive [options]

The server listens on 127.0.0.1 only, prints `LISTENING <port>` and exits when its stdin closes.
`echo` echoes every message; a text message `whoami` is answered with the handshake headers it
received (and the verified `Otoroshi-Claim`, with --secret). With --secret it is a secured
Otoroshi backend: the request's V2 `Otoroshi-State` token is verified and answered on the `101`
with an `Otoroshi-State-Resp` token (HS512, `state-resp`, `iat`/`nbf`/`exp`, `aud: Otoroshi`), and an
`Otoroshi-Claim` that does not verify gets 401 instead of the upgrade. `refuse` answers 400 to
every upgrade.

The client prints one JSON line per result on stdout and exits 0; any failed expectation is an
exception (exit status 1, the traceback on stderr).
"""

import argparse
import asyncio
import json
import os
import ssl
import sys
import time

import jwt  # PyJWT
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed, InvalidStatus

ISSUER = "Otoroshi"
MIB = 1024 * 1024


def out(obj):
    print(json.dumps(obj), flush=True)


# ---------------------------------------------------------------------------------------- server


def v2_answer(secret, audience, state_token):
    """Otoroshi's V2 answer to `state_token` (spec: the demo backend's behaviour)."""
    claims = jwt.decode(
        state_token,
        secret,
        algorithms=["HS512"],
        audience=audience,
        issuer=ISSUER,
        options={"require": ["exp", "iat", "iss", "aud"]},
    )
    now = int(time.time())
    answer = {"state-resp": claims["state"], "iat": now, "nbf": now, "exp": now + 10, "aud": ISSUER}
    return jwt.encode(answer, secret, algorithm="HS512")


async def echo_server(args, ssl_ctx):
    def verified_claim(request):
        claim = request.headers.get("Otoroshi-Claim")
        if claim is None:
            return None
        return jwt.decode(claim, args.secret, algorithms=["HS512"], audience=args.audience,
                          issuer=ISSUER)

    def process_request(connection, request):
        if args.mode == "refuse":
            return connection.respond(400, "no websocket here\n")
        if args.secret:
            try:
                verified_claim(request)
            except jwt.PyJWTError as e:
                return connection.respond(401, f"bad claim: {e}\n")
        return None

    def process_response(connection, request, response):
        if args.secret and response.status_code == 101:
            state = request.headers.get("Otoroshi-State", "")
            response.headers["Otoroshi-State-Resp"] = v2_answer(args.secret, args.audience, state)
        return None

    async def handler(ws):
        try:
            async for message in ws:
                if message == "whoami":
                    seen = {
                        "headers": [[k, v] for k, v in ws.request.headers.raw_items()],
                        "path": ws.request.path,
                        "subprotocol": ws.subprotocol,
                    }
                    if args.secret:
                        seen["claim"] = verified_claim(ws.request)
                    await ws.send(json.dumps(seen))
                else:
                    await ws.send(message)
        except ConnectionClosed:
            pass

    def select_subprotocol(connection, offered):
        # `chat` or `superchat` when offered, else none (the default refuses a client that
        # offers none).
        return next((p for p in offered if p in ("chat", "superchat")), None)

    async with serve(handler, "127.0.0.1", 0, ssl=ssl_ctx, max_size=None,
                     process_request=process_request, process_response=process_response,
                     ping_interval=None, select_subprotocol=select_subprotocol) as server:
        print(f"LISTENING {server.sockets[0].getsockname()[1]}", flush=True)
        await wait_stdin_closed()


async def wait_stdin_closed():
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)


# ---------------------------------------------------------------------------------------- client


def client_ssl(args):
    if not args.url.startswith("wss://"):
        return None
    ctx = ssl.create_default_context(cafile=args.ca)
    return ctx


def dial(args, **kw):
    headers = [tuple(h.split("=", 1)) for h in args.header]
    return connect(args.url, ssl=client_ssl(args), additional_headers=headers, max_size=None,
                   open_timeout=10, close_timeout=10, ping_interval=None,
                   subprotocols=args.subprotocol or None, **kw)


async def basic(args):
    async with dial(args) as ws:
        result = {"subprotocol": ws.subprotocol,
                  "extensions": [e.name for e in ws.protocol.extensions],
                  "response_headers": [[k.lower(), v] for k, v in ws.response.headers.raw_items()]}
        await ws.send("hello, tunnel")
        assert await ws.recv() == "hello, tunnel"
        binary = bytes(range(256)) * 4
        await ws.send(binary)
        assert await ws.recv() == binary
        big = os.urandom(MIB)
        await ws.send(big)
        echoed = await ws.recv()
        assert echoed == big, f"1 MiB echo differs ({len(echoed)} bytes back)"
        big_text = "é" * (MIB // 2)
        await ws.send(big_text)
        assert await ws.recv() == big_text
        pong = await ws.ping(b"are you there")
        latency = await asyncio.wait_for(pong, 10)
        result["pong_ms"] = round(latency * 1000, 3)
        if args.whoami:
            await ws.send("whoami")
            result["whoami"] = json.loads(await ws.recv())
        await ws.close(code=1000, reason="done")
        result["close_code"] = ws.close_code
        result["close_reason"] = ws.close_reason
        result["close_received"] = ws.protocol.close_rcvd is not None
        result["close_sent"] = ws.protocol.close_sent is not None
    out(result)


async def many(args):
    n = args.count
    opened = asyncio.Event()
    counter = {"open": 0}

    async def one(i):
        async with dial(args) as ws:
            for j in range(3):
                msg = f"tunnel {i} message {j}"
                await ws.send(msg)
                assert await ws.recv() == msg
            counter["open"] += 1
            if counter["open"] == n:
                opened.set()
            await opened.wait()
            await release.wait()
            await ws.send(f"bye {i}")
            assert await ws.recv() == f"bye {i}"

    release = asyncio.Event()

    async def hold():
        await opened.wait()
        out({"open": counter["open"]})
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.readline)
        release.set()

    await asyncio.wait_for(asyncio.gather(hold(), *(one(i) for i in range(n))), args.timeout)
    out({"done": n})


async def status(args):
    try:
        async with dial(args) as ws:
            out({"status": 101, "subprotocol": ws.subprotocol})
    except InvalidStatus as e:
        r = e.response
        out({"status": r.status_code,
             "headers": {k.lower(): v for k, v in r.headers.raw_items()},
             "body": (r.body or b"").decode("utf-8", "replace")})


async def idle(args):
    async with dial(args) as ws:
        await ws.send("still here?")
        assert await ws.recv() == "still here?"
        start = time.monotonic()
        try:
            await asyncio.wait_for(ws.recv(), args.timeout)
            raise AssertionError("the server sent a message on an idle tunnel")
        except ConnectionClosed as e:
            out({"closed_after": round(time.monotonic() - start, 3),
                 "close_received": e.rcvd is not None})


async def interactive(args):
    """Commands on stdin: `echo TEXT` (sends, prints the echo), `wait-close` (prints when the
    server side closes), `close`."""
    loop = asyncio.get_running_loop()
    async with dial(args) as ws:
        out({"open": True})
        while True:
            line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
            if not line or line == "close":
                break
            if line.startswith("echo "):
                text = line[5:]
                await ws.send(text)
                out({"echo": await asyncio.wait_for(ws.recv(), 10)})
            elif line == "wait-close":
                start = time.monotonic()
                try:
                    await asyncio.wait_for(ws.recv(), args.timeout)
                    out({"closed": False})
                except ConnectionClosed as e:
                    out({"closed": True, "after": round(time.monotonic() - start, 3),
                         "close_received": e.rcvd is not None,
                         "code": e.rcvd.code if e.rcvd is not None else None,
                         "reason": e.rcvd.reason if e.rcvd is not None else None})
                    return


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="role", required=True)
    s = sub.add_parser("server")
    s.add_argument("--mode", choices=["echo", "refuse"], default="echo")
    s.add_argument("--secret")
    s.add_argument("--audience", default="ws-service")
    s.add_argument("--cert")
    s.add_argument("--key")
    c = sub.add_parser("client")
    c.add_argument("--url", required=True)
    c.add_argument("--scenario", required=True,
                   choices=["basic", "many", "status", "idle", "interactive"])
    c.add_argument("--ca")
    c.add_argument("--header", action="append", default=[], help="NAME=VALUE")
    c.add_argument("--subprotocol", action="append", default=[])
    c.add_argument("--whoami", action="store_true")
    c.add_argument("--count", type=int, default=200)
    c.add_argument("--timeout", type=float, default=60)
    args = p.parse_args()
    if args.role == "server":
        ctx = None
        if args.cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(args.cert, args.key)
        asyncio.run(echo_server(args, ctx))
    else:
        scenario = {"basic": basic, "many": many, "status": status, "idle": idle,
                    "interactive": interactive}[args.scenario]
        asyncio.run(scenario(args))


if __name__ == "__main__":
    main()
