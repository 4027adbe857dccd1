#!/usr/bin/env python3
"""A backend secured the way Otoroshi documents it, written without any Torii code.

It follows Otoroshi's documentation and its demo backend `demos/challenge/server.js` (in
Otoroshi's repository): on every request it reads `Otoroshi-State`;

* V1 (the value is not a JWT, or the header is missing, read as `none`): echo the value in
  `Otoroshi-State-Resp`;
* V2 (the value starts with `eyJ` and contains a `.`): verify the state JWT with the shared
  secret (HS512, issuer `Otoroshi`, audience = the route name, `exp` enforced) and answer
  `Otoroshi-State-Resp` = a new HS512 JWT
  `{"state-resp": <state>, "iat": now, "nbf": now, "exp": now + 10, "aud": "Otoroshi"}`.

If `Otoroshi-Claim` is present it is verified with PyJWT (same secret, HS512, audience = the route
name, issuer `Otoroshi`) and the decoded claims are returned in the JSON body:
`{"challengeVersion", "token", "stateToken", "method", "path", "headers", "header_lines"}`. A claim that does not
verify gives 500 `{"error": "error decoding jwt", "error_description": ...}` (the state answer is
still sent, so the gateway forwards that 500 and the caller can read why). A V2 state that does not
verify gives 500 `{"error": "error decoding state jwt", ...}` without any state answer.

`--mode` makes it misbehave on purpose (see MODES). Only the standard library and PyJWT are used.
It listens on 127.0.0.1 only, prints `LISTENING <port>` on stdout, and exits when its stdin closes
or on SIGTERM.
"""

import argparse
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

try:
    import jwt  # PyJWT
except ImportError:  # pragma: no cover - reported to the test through the exit status
    sys.stderr.write("PyJWT is missing: run `python3 -m pip install pyjwt`\n")
    sys.exit(3)

ISSUER = "Otoroshi"
STATE_HEADER = "Otoroshi-State"
STATE_RESP_HEADER = "Otoroshi-State-Resp"
CLAIM_HEADER = "Otoroshi-Claim"
ANSWER_TTL = 10  # seconds, as the demo backend

MODES = (
    "ok",            # behave
    "no-header",     # omit Otoroshi-State-Resp
    "wrong-state",   # V1: echo a different value; V2: sign a different state-resp
    "bad-signature", # V2: sign the answer with another key
    "wrong-alg",     # V2: sign with HS256 instead of HS512
    "ttl-too-long",  # V2: exp = now + 3600
    "expired",       # V2: exp in the past beyond the leeway, lifetime and iat otherwise fine
    "missing-iat",   # V2: no iat claim
    "missing-exp",   # V2: no exp claim
)


def other_value(value: str) -> str:
    """A value of the same length that differs in its last character."""
    if not value:
        return "x"
    last = "A" if value[-1] != "A" else "B"
    return value[:-1] + last


def is_v2(value: str) -> bool:
    return value.startswith("eyJ") and "." in value


class Backend:
    def __init__(self, secret: str, audience: str, mode: str):
        self.secret = secret
        self.audience = audience
        self.mode = mode

    def decode(self, token: str) -> dict:
        return jwt.decode(
            token,
            self.secret,
            algorithms=["HS512"],
            audience=self.audience,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "iss", "aud"]},
        )

    def state_answer(self, state: str):
        """The V2 answer token for `state`, according to the mode; None = send no header."""
        mode = self.mode
        if mode == "no-header":
            return None
        now = int(time.time())
        claims = {
            "state-resp": other_value(state) if mode == "wrong-state" else state,
            "iat": now,
            "nbf": now,
            "exp": now + ANSWER_TTL,
            "aud": ISSUER,
        }
        key, alg = self.secret, "HS512"
        if mode == "bad-signature":
            key = self.secret + "-but-not-the-shared-one"
        elif mode == "wrong-alg":
            alg = "HS256"
        elif mode == "ttl-too-long":
            claims["exp"] = now + 3600
        elif mode == "expired":
            # exp is 15 s in the past (beyond a 10 s leeway) while the lifetime (20 s) stays under
            # a 30 s ttl and iat (35 s ago) stays inside Torii's freshness window
            # (now - ttl - leeway): only the expiry check can reject this token.
            claims["iat"] = claims["nbf"] = now - 35
            claims["exp"] = now - 15
        elif mode == "missing-iat":
            del claims["iat"]
        elif mode == "missing-exp":
            del claims["exp"]
        return jwt.encode(claims, key, algorithm=alg)


def make_handler(backend: Backend):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def version_string(self):
            return "otoroshi-compat-backend"

        def log_message(self, fmt, *args):  # quiet; errors go into the response bodies
            pass

        def drain_body(self):
            te = (self.headers.get("Transfer-Encoding") or "").lower()
            if "chunked" in te:
                while True:
                    line = self.rfile.readline()
                    if not line:
                        return
                    size = int(line.split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return
                    self.rfile.read(size + 2)
            length = int(self.headers.get("Content-Length") or 0)
            if length > 0:
                self.rfile.read(length)

        def reply(self, status: int, body: dict, extra: dict):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            self.wfile.flush()

        def handle_any(self):
            self.drain_body()
            extra = {}
            body = {
                "method": self.command,
                "path": self.path,
                "headers": {k: v for k, v in self.headers.items()},
                # Every line in arrival order: the dict above keeps one line per name.
                "header_lines": [[k, v] for k, v in self.headers.items()],
            }
            state = self.headers.get(STATE_HEADER) or "none"
            if is_v2(state):
                body["challengeVersion"] = "V2"
                try:
                    decoded_state = backend.decode(state)
                except jwt.PyJWTError as e:
                    body.update(error="error decoding state jwt", error_description=str(e))
                    return self.reply(500, body, extra)
                body["stateToken"] = decoded_state
                answer = backend.state_answer(str(decoded_state.get("state", "")))
                if answer is not None:
                    extra[STATE_RESP_HEADER] = answer
            else:
                body["challengeVersion"] = "V1"
                if backend.mode != "no-header":
                    echoed = other_value(state) if backend.mode == "wrong-state" else state
                    extra[STATE_RESP_HEADER] = echoed
            claim = self.headers.get(CLAIM_HEADER)
            if claim is not None:
                try:
                    body["token"] = backend.decode(claim)
                except jwt.PyJWTError as e:
                    body.update(error="error decoding jwt", error_description=str(e))
                    return self.reply(500, body, extra)
            return self.reply(200, body, extra)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = handle_any

    return Handler


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = any)")
    p.add_argument("--secret", required=True, help="shared HMAC secret")
    p.add_argument("--audience", required=True, help="route name expected as `aud`")
    p.add_argument("--mode", choices=MODES, default="ok")
    args = p.parse_args()

    def handle_error(self, request, client_address):
        # one line (a multi-line traceback can be cut short when the test kills the process)
        kind, value = sys.exc_info()[:2]
        if issubclass(kind, (ConnectionResetError, BrokenPipeError)):
            return  # a gateway that refuses an answer may close without reading it all
        sys.stderr.write(f"otoroshi_backend[{args.mode}]: connection from {client_address}: "
                         f"{kind.__name__}: {value}\n")
        sys.stderr.flush()

    ThreadingHTTPServer.handle_error = handle_error
    ThreadingHTTPServer.request_queue_size = 64
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(
        Backend(args.secret, args.audience, args.mode)))
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))

    def watch_stdin():
        try:
            while sys.stdin.buffer.read(4096):
                pass
        finally:
            os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    print(f"LISTENING {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
