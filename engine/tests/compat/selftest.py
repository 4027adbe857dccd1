#!/usr/bin/env python3
"""Checks `otoroshi_backend.py` on its own, without Torii: runs it in every mode, sends it
hand-made Otoroshi-like requests (V1 state, V2 state token, info token minted with PyJWT) and
checks each answer with an independent implementation of Otoroshi's V2 answer check (the
configured algorithm and signature, `aud` holding `Otoroshi`, `state-resp` equal to the state,
`exp` and `iat` present, `exp - iat` within the ttl, with leeway), plus Torii's freshness rule
(`iat` no older than ttl + leeway). Each misbehaving mode must fail for the reason it is meant to
exercise, and only that one.

Run: python3 engine/tests/compat/selftest.py   (exit 0 = all good)
"""

import http.client
import json
import os
import secrets
import string
import subprocess
import sys
import time

import jwt

HERE = os.path.dirname(os.path.abspath(__file__))
SECRET = "s" * 32 + "0123456789abcdef0123456789abcdef"  # 64 characters
AUD = "compat-service"
TTL, LEEWAY = 30, 10
ALPHABET = string.ascii_letters + string.digits + "-_.~"  # stand-in for the extended charset


def start(mode):
    p = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "otoroshi_backend.py"), "--port", "0",
         "--secret", SECRET, "--audience", AUD, "--mode", mode],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    assert line.startswith("LISTENING "), line
    return p, int(line.split()[1])


def call(port, headers, method="GET", path="/x?y=1"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request(method, path, headers=headers)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, body


def v2_check(token, state):
    """Otoroshi's V2 answer check (+ Torii freshness). Returns None or the failure reason."""
    now = int(time.time())
    if jwt.get_unverified_header(token).get("alg") != "HS512":
        return "alg"
    try:
        c = jwt.decode(token, SECRET, algorithms=["HS512"], audience="Otoroshi",
                       leeway=LEEWAY, options={"verify_iat": False})
    except jwt.ExpiredSignatureError:
        return "expired"
    except jwt.InvalidSignatureError:
        return "signature"
    if c.get("state-resp") != state:
        return "state"
    if "exp" not in c or "iat" not in c:
        return "exp/iat missing"
    if c["exp"] - c["iat"] > TTL:
        return "ttl"
    if c["iat"] < now - TTL - LEEWAY:
        return "stale"
    return None


def state_value():
    return "".join(secrets.choice(ALPHABET) for _ in range(128))


def state_token(state, key=SECRET, aud=AUD, exp_in=TTL):
    now = int(time.time())
    return jwt.encode({"iss": "Otoroshi", "sub": "Otoroshi", "aud": aud, "iat": now, "nbf": now,
                       "exp": now + exp_in, "jti": secrets.token_hex(8), "state": state},
                      key, algorithm="HS512")


def claim(key=SECRET, aud=AUD):
    now = int(time.time())
    return jwt.encode({"iss": "Otoroshi", "sub": "public", "aud": aud, "iat": now, "nbf": now,
                       "exp": now + TTL, "jti": secrets.token_hex(8), "access_type": "public"},
                      key, algorithm="HS512")


EXPECTED_V2 = {
    "ok": None, "no-header": "no header", "wrong-state": "state", "bad-signature": "signature",
    "wrong-alg": "alg", "ttl-too-long": "ttl", "expired": "expired",
    "missing-iat": "exp/iat missing", "missing-exp": "exp/iat missing",
}
EXPECTED_V1 = {"ok": None, "no-header": "no header", "wrong-state": "state"}

failures = []


def expect(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


for mode, want in EXPECTED_V2.items():
    p, port = start(mode)
    try:
        st = state_value()
        status, hs, body = call(port, {"Otoroshi-State": state_token(st),
                                       "Otoroshi-Claim": claim()})
        b = json.loads(body)
        got = "no header" if "otoroshi-state-resp" not in hs else \
            v2_check(hs["otoroshi-state-resp"], st)
        expect(status == 200 and b["challengeVersion"] == "V2" and got == want,
               f"V2 {mode}: status {status}, check -> {got!r} (want {want!r})")
        if mode == "ok":
            expect(b["token"]["access_type"] == "public" and b["stateToken"]["state"] == st,
                   "V2 ok: decoded claim and state token in the body")
            # V1 against the same backend, with the 128-char state echoed byte for byte.
            v1 = state_value()
            status, hs, _ = call(port, {"Otoroshi-State": v1}, method="POST")
            expect(status == 200 and hs.get("otoroshi-state-resp") == v1, "V1 ok: echo")
            # Bad inputs from the gateway side are refused, as Otoroshi's backends do.
            for what, hdrs in {
                "state signed with another key": {"Otoroshi-State": state_token(st, key="k" * 64)},
                "state for another audience": {"Otoroshi-State": state_token(st, aud="other")},
                "expired state": {"Otoroshi-State": state_token(st, exp_in=-60)},
            }.items():
                status, hs, body = call(port, hdrs)
                expect(status == 500 and "otoroshi-state-resp" not in hs
                       and json.loads(body)["error"] == "error decoding state jwt",
                       f"V2 refuses {what}")
            for what, tok in {"claim signed with another key": claim(key="k" * 64),
                              "claim for another audience": claim(aud="other")}.items():
                status, hs, body = call(port, {"Otoroshi-State": v1, "Otoroshi-Claim": tok})
                expect(status == 500 and json.loads(body)["error"] == "error decoding jwt",
                       f"V1 refuses {what}")
            # keep-alive: two requests on one connection
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            for _ in range(2):
                c.request("GET", "/", headers={"Otoroshi-State": "abc"})
                r = c.getresponse()
                r.read()
            expect(r.status == 200 and r.getheader("Otoroshi-State-Resp") == "abc",
                   "keep-alive: two requests on one connection")
            c.close()
    finally:
        p.stdin.close()  # closing stdin must make it exit
        try:
            p.wait(timeout=5)
            expect(True, f"{mode}: exits when stdin closes")
        except subprocess.TimeoutExpired:
            p.kill()
            expect(False, f"{mode}: exits when stdin closes")

for mode, want in EXPECTED_V1.items():
    p, port = start(mode)
    try:
        st = state_value()
        status, hs, _ = call(port, {"Otoroshi-State": st})
        got = "no header" if "otoroshi-state-resp" not in hs else \
            (None if hs["otoroshi-state-resp"] == st else "state")
        expect(status == 200 and got == want, f"V1 {mode}: check -> {got!r} (want {want!r})")
    finally:
        p.terminate()  # SIGTERM must make it exit
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            expect(False, f"{mode}: exits on SIGTERM")

print("selftest:", "FAILED " + str(len(failures)) if failures else "all passed")
sys.exit(1 if failures else 0)
