#!/usr/bin/env python3
"""A gRPC backend behind Torii's exchange protocol (V2) and info token, on grpcio and PyJWT.

Every call, unary or streaming, carries Torii's `Otoroshi-State` token in its metadata. The
backend verifies it (HS512 with the route's `to_backend` secret, issuer `Otoroshi`, not
expired) and answers `Otoroshi-State-Resp` in its *initial* response metadata (the HTTP/2
response headers), a token signed with the `from_backend` secret whose `state-resp` is the
state it received (docs/compatibility.md §1.2). Torii checks that answer before anything of
the response reaches the client, and removes it. A call whose state does not verify is refused
with UNAUTHENTICATED (it did not come through Torii).

The caller Torii admitted is in `Otoroshi-Claim` (the info token, docs/compatibility.md §3),
verified here with the route's info-token secret.

Service `example.Greeter` over raw bytes (no generated code, so the example stands alone):
  SayHello (unary)          b"NAME" -> b"hello, NAME (caller: SUB)"
  Count (server streaming)  b"N"    -> b"0", b"1", ... b"N-1"

Run:  challenge_backend.py --listen 127.0.0.1:50051 --secret S [--claim-secret C]
(port 0 picks one; the port is printed as {"port": N} on stdout). Serves until stdin closes
when --until-stdin-closes is given (the tests), else until killed.

Torii's route (secrets written inline here; use environment references in production):

    [[routes]]
    id = "greeter"
    name = "greeter"
    domains = ["greeter.example.com"]
    targets = [{ url = "h2c://127.0.0.1:50051" }]
    [routes.challenge]
    version = "v2"
    secret = "S"
    [routes.info_token]
    secret = "C"
"""
import argparse
import json
import sys
import time
from concurrent import futures

import grpc
import jwt

ALG = "HS512"
TTL = 10


def ident(b):
    return b


class Guard:
    """Verifies one call's exchange-protocol state and info token; answers the challenge."""

    def __init__(self, secret, claim_secret):
        self.secret = secret
        self.claim_secret = claim_secret

    def admit(self, context):
        md = dict(context.invocation_metadata())
        try:
            state = jwt.decode(md.get("otoroshi-state", ""), self.secret, algorithms=[ALG],
                               issuer="Otoroshi", options={"verify_aud": False,
                                                          "require": ["exp", "iss"]})
        except jwt.InvalidTokenError as e:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad Otoroshi-State: %s" % e)
        now = int(time.time())
        answer = jwt.encode({"state-resp": state["state"], "iat": now, "nbf": now,
                             "exp": now + TTL, "aud": "Otoroshi"}, self.secret, algorithm=ALG)
        # Before any message: Torii reads the answer from the response headers.
        context.send_initial_metadata((("otoroshi-state-resp", answer),))
        caller = "-"
        if self.claim_secret:
            try:
                claims = jwt.decode(md.get("otoroshi-claim", ""), self.claim_secret,
                                    algorithms=[ALG], issuer="Otoroshi",
                                    options={"verify_aud": False})
                caller = claims.get("sub", "-")
            except jwt.InvalidTokenError as e:
                context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad Otoroshi-Claim: %s" % e)
        return caller


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", default="127.0.0.1:50051")
    ap.add_argument("--secret", required=True, help="the route's [routes.challenge] secret")
    ap.add_argument("--claim-secret", help="the route's [routes.info_token] secret")
    ap.add_argument("--until-stdin-closes", action="store_true")
    args = ap.parse_args()
    guard = Guard(args.secret, args.claim_secret)

    def say_hello(req, context):
        caller = guard.admit(context)
        return b"hello, %s (caller: %s)" % (req, caller.encode())

    def count(req, context):
        guard.admit(context)
        for i in range(int(req.decode())):
            yield str(i).encode()

    handlers = {
        "SayHello": grpc.unary_unary_rpc_method_handler(say_hello, ident, ident),
        "Count": grpc.unary_stream_rpc_method_handler(count, ident, ident),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("example.Greeter", handlers),))
    port = server.add_insecure_port(args.listen)
    server.start()
    print(json.dumps({"port": port}), flush=True)
    if args.until_stdin_closes:
        sys.stdin.read()
        server.stop(0)
    else:
        server.wait_for_termination()


if __name__ == "__main__":
    main()
