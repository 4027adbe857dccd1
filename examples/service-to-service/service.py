#!/usr/bin/env python3
"""The two services of the service-to-service example, small HTTPS programs behind Torii.

  inventory          POST /items/reserve: reserves stock for the caller named by the token
                     Torii verified (it only decodes the claims: Torii checked the signature,
                     the issuer and the `place-order` scope before the request got here)
  order-processing   POST /orders: places an order by calling inventory *through Torii* over
                     TLS (https://inventory.s2s.test:EDGE/items/reserve), with the caller's
                     token, and answers with what inventory said (a refusal keeps its status)

Both accept only clients with a certificate from the example CA (mutual TLS): Torii's.
"""
import argparse
import base64
import http.client
import json
import socket
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def claims_of(authorization):
    token = (authorization or "").removeprefix("Bearer ").strip()
    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("role", choices=["inventory", "order-processing"])
    ap.add_argument("--listen", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--edge", help="order-processing: host:port of Torii")
    args = ap.parse_args()
    client_ctx = ssl.create_default_context(cafile=args.ca)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt, *a):
            sys.stderr.write("%s: %s\n" % (args.role, fmt % a))

        def answer(self, status, doc):
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
            caller = claims_of(self.headers.get("Authorization"))
            if args.role == "inventory" and self.path == "/items/reserve":
                return self.answer(200, {"reserved": True, "for": caller.get("sub"),
                                         "scope": caller.get("scope")})
            if args.role == "order-processing" and self.path == "/orders":
                edge_host, edge_port = args.edge.rsplit(":", 1)

                class ViaEdge(http.client.HTTPSConnection):
                    """inventory.s2s.test is Torii, reached on the loopback; the name is
                    still the one sent in SNI and verified in Torii's certificate."""

                    def connect(self):
                        sock = socket.create_connection((edge_host, int(edge_port)), self.timeout)
                        self.sock = client_ctx.wrap_socket(sock, server_hostname=self.host)

                conn = ViaEdge("inventory.s2s.test", int(edge_port), timeout=10)
                conn.request("POST", "/items/reserve", body=b"{}", headers={
                    "Authorization": self.headers.get("Authorization", ""),
                    "Content-Type": "application/json", "Accept": "application/json"})
                r = conn.getresponse()
                inventory = json.loads(r.read() or b"{}")
                conn.close()
                if r.status == 200:
                    return self.answer(201, {"status": "order created", "inventory": inventory})
                return self.answer(r.status, {"status": "order refused by inventory",
                                              "inventory": inventory})
            self.answer(404, {"error": "not found"})

    h, p = args.listen.rsplit(":", 1)
    server = ThreadingHTTPServer((h, int(p)), Handler)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=args.ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_cert_chain(args.cert, args.key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    sys.stderr.write("%s: listening on https://%s\n" % (args.role, args.listen))
    server.serve_forever()


if __name__ == "__main__":
    main()
