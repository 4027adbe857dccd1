#!/usr/bin/env python3
"""An identity server stand-in for the service-to-service example (the role WSO2 Identity
Server, Keycloak or Auth0 plays in production), independent of Torii: Python's standard library
for HTTPS and PyJWT (with `cryptography`) for the tokens.

  GET  /oauth2/jwks    the public keys, as a JWKS document (Cache-Control: max-age=300)
  POST /oauth2/token   OAuth2 client_credentials (form or JSON body): an RS256 access token
                       with iss, sub, azp, aud, scope, iat, nbf, exp, jti and the key's kid
  POST /admin/rotate   a new signing key: tokens are signed with it from now on, and the JWKS
                       lists it first (the previous key stays listed, as identity servers do
                       for tokens still in flight)

Clients and the scopes each may ask for come from --client ID:SECRET:SCOPE1,SCOPE2 (repeatable).
"""
import argparse
import json
import ssl
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


class Keys:
    """The signing keys, newest first."""

    def __init__(self):
        self.lock = threading.Lock()
        self.keys = []
        self.rotate()

    def rotate(self):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        kid = "sts-%d" % (len(self.keys) + 1)
        with self.lock:
            self.keys.insert(0, (kid, key))
            del self.keys[2:]
        return kid

    def current(self):
        with self.lock:
            return self.keys[0]

    def jwks(self):
        with self.lock:
            out = []
            for kid, key in self.keys:
                jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
                jwk.update({"kid": kid, "use": "sig", "alg": "RS256"})
                out.append(jwk)
        return {"keys": out}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", default="127.0.0.1:7443")
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--issuer", required=True)
    ap.add_argument("--audience", default="inventory-api")
    ap.add_argument("--client", action="append", default=[], help="ID:SECRET:SCOPE,SCOPE")
    args = ap.parse_args()
    clients = {}
    for c in args.client:
        cid, secret, scopes = c.split(":", 2)
        clients[cid] = (secret, set(filter(None, scopes.split(","))))
    keys = Keys()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt, *a):
            sys.stderr.write("sts: " + (fmt % a) + "\n")

        def answer(self, status, doc, extra=()):
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in extra:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/oauth2/jwks":
                self.answer(200, keys.jwks(), [("Cache-Control", "public, max-age=300")])
            else:
                self.answer(404, {"error": "not_found"})

        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
            if self.path == "/admin/rotate":
                kid = keys.rotate()
                return self.answer(200, {"kid": kid})
            if self.path != "/oauth2/token":
                return self.answer(404, {"error": "not_found"})
            if "json" in (self.headers.get("Content-Type") or ""):
                form = json.loads(raw or b"{}")
            else:
                form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            if form.get("grant_type") != "client_credentials":
                return self.answer(400, {"error": "unsupported_grant_type"})
            cid = form.get("client_id", "")
            secret, allowed = clients.get(cid, (None, set()))
            if secret is None or form.get("client_secret") != secret:
                return self.answer(401, {"error": "invalid_client"})
            scope = form.get("scope", " ".join(sorted(allowed))).split()
            if not set(scope) <= allowed:
                return self.answer(400, {"error": "invalid_scope"})
            kid, key = keys.current()
            now = int(time.time())
            claims = {"iss": args.issuer, "sub": cid, "azp": cid, "aud": args.audience,
                      "scope": " ".join(scope), "iat": now, "nbf": now, "exp": now + 300,
                      "jti": str(uuid.uuid4())}
            token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})
            self.answer(200, {"access_token": token, "token_type": "Bearer",
                              "expires_in": 300, "scope": " ".join(scope)})

    host, port = args.listen.rsplit(":", 1)
    server = ThreadingHTTPServer((host, int(port)), Handler)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(args.cert, args.key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    sys.stderr.write("sts: listening on https://%s (issuer %s)\n" % (args.listen, args.issuer))
    server.serve_forever()


if __name__ == "__main__":
    main()
