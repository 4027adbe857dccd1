#!/usr/bin/env bash
# Securing service-to-service communication over TLS with JWT, through Torii, with an identity
# server that is not Torii and rotates its signing key during the run.
#
#   client ──TLS──▶ Torii ──mTLS──▶ order-processing (service.py)
#                     │                   │ calls inventory through Torii, with the caller's token
#                     │   ◀──TLS──────────┘
#                     └──mTLS──▶ inventory (service.py; Torii requires the scope place-order)
#   Torii ──HTTPS──▶ identity server (sts.py, PyJWT): its JWKS URL, fetched and refreshed
#
# Everything is generated in a temporary directory: a test CA and a certificate for each TLS
# endpoint (openssl). The identity server makes its own RSA keys.
#
# Needs: python3 with PyJWT and cryptography (pip install 'pyjwt[crypto]'), openssl, curl, and
# the torii binary (TORII=path, default: built with cargo).
# BASE_PORT=N uses ports N..N+4 instead of 8443, 9443, 9444, 7443, 7444.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/../.."
if [[ -z "${TORII:-}" ]]; then
    (cd "$root" && cargo build --quiet --bin torii)
    # Where cargo put it: CARGO_TARGET_DIR, a configured target-dir, or $root/target.
    target_dir=$(cd "$root" && cargo metadata --format-version 1 --no-deps \
        | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
    TORII="${target_dir:?cargo metadata named no target directory}/debug/torii"
fi
if [[ -n "${BASE_PORT:-}" ]]; then
    EDGE=$BASE_PORT; OP=$((BASE_PORT + 1)); INV=$((BASE_PORT + 2))
    STS=$((BASE_PORT + 3)); ROGUE=$((BASE_PORT + 4))
else
    EDGE=8443; OP=9443; INV=9444; STS=7443; ROGUE=7444
fi
python3 -c 'import jwt, cryptography' 2>/dev/null \
    || { echo "FAILED: python3 needs PyJWT and cryptography: pip install 'pyjwt[crypto]'" >&2; exit 1; }
work="$(mktemp -d)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
cd "$work"

step() { printf '\n== %s\n' "$*"; }
fail() { echo "FAILED: $*" >&2; for f in *.log; do echo "--- $f" >&2; tail -n 20 "$f" >&2; done; exit 1; }

step "0. A test CA and a certificate for each TLS endpoint"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=Torii s2s example CA" -keyout ca.key -out ca.pem \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
leaf() { # name, SAN list
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
        -keyout "$1.key" -out "$1.csr" 2>/dev/null
    printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n' "$2" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
        -extfile "$1.ext" -out "$1.pem" 2>/dev/null
}
leaf edge "DNS:orders.s2s.test,DNS:inventory.s2s.test"
leaf order-processing "DNS:order-processing.internal"
leaf inventory "DNS:inventory.internal"
leaf gateway-client "DNS:edge.s2s.test"
leaf sts "DNS:sts.s2s.test,IP:127.0.0.1"
echo "generated in $work"

sed -e "s/127.0.0.1:8443/127.0.0.1:$EDGE/; s/127.0.0.1:9443/127.0.0.1:$OP/; s/127.0.0.1:9444/127.0.0.1:$INV/" \
    -e "s/127.0.0.1:7443/127.0.0.1:$STS/g" "$here/edge.toml" > edge.toml
wait_port() {
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    fail "nothing listens on 127.0.0.1:$1"
}
python3 "$here/sts.py" --listen "127.0.0.1:$STS" --cert sts.pem --key sts.key \
    --issuer https://sts.s2s.test \
    --client web-shop:shop-secret:place-order,read-catalog \
    --client catalog-browser:browser-secret:read-catalog 2>sts.log & pids+=($!)
# A second identity server nobody trusts: same program, its own keys and issuer.
python3 "$here/sts.py" --listen "127.0.0.1:$ROGUE" --cert sts.pem --key sts.key \
    --issuer https://rogue.example --client web-shop:shop-secret:place-order 2>rogue.log & pids+=($!)
wait_port "$STS"; wait_port "$ROGUE"
for svc in inventory order-processing; do
    port=$INV; [[ $svc == order-processing ]] && port=$OP
    python3 "$here/service.py" "$svc" --listen "127.0.0.1:$port" --cert "$svc.pem" \
        --key "$svc.key" --ca ca.pem --edge "127.0.0.1:$EDGE" 2>"$svc.log" & pids+=($!)
done
"$TORII" check --config edge.toml
"$TORII" run --config edge.toml 2>edge.log & pids+=($!)
TORII_PID=${pids[-1]}
for port in $EDGE $OP $INV; do wait_port "$port"; done

b64url_decode() { # a base64url segment on stdin → its bytes
    local s
    s=$(tr '_-' '/+')
    while (( ${#s} % 4 )); do s="$s="; done
    printf '%s' "$s" | openssl base64 -d -A
}
get_token() { # identity server port, client id, secret, scope → prints the access token
    curl -sS --cacert ca.pem --resolve "sts.s2s.test:$1:127.0.0.1" -X POST \
        -d "grant_type=client_credentials&client_id=$2&client_secret=$3&scope=$4" \
        "https://sts.s2s.test:$1/oauth2/token" | sed -E 's/.*"access_token": *"([^"]+)".*/\1/'
}
call() { # host, path, token → writes body.json, prints the HTTP status
    curl -sS --cacert ca.pem --resolve "$1:$EDGE:127.0.0.1" -o body.json -w '%{http_code}' \
        -X POST -H "Authorization: Bearer $3" -H 'Accept: application/json' \
        "https://$1:$EDGE$2"
}
expect() { # expected status, actual status, what
    [[ $2 == "$1" ]] || { cat body.json >&2 || true; fail "$3: expected $1, got $2"; }
    echo "ok: $3 -> $2 $(cat body.json)"
}

step "1. The identity server issues an RS256 token with the scope place-order"
TOKEN=$(get_token "$STS" web-shop shop-secret "place-order read-catalog")
header=$(printf '%s' "$TOKEN" | cut -d. -f1 | b64url_decode)
claims=$(printf '%s' "$TOKEN" | cut -d. -f2 | b64url_decode)
echo "header: $header"
echo "claims: $claims"
grep -q '"kid": *"sts-1"' <<<"$header" || fail "not signed with sts-1"
grep -q '"scope": *"place-order read-catalog"' <<<"$claims" || fail "no place-order scope"

step "2. order-processing calls inventory through Torii, over TLS, with the caller's token"
expect 201 "$(call orders.s2s.test /orders "$TOKEN")" "POST https://orders.s2s.test/orders"
grep -q '"reserved": *true' body.json || fail "inventory did not reserve"
grep -q '"for": *"web-shop"' body.json || fail "inventory did not see the caller"

step "3. A token without the scope place-order: order-processing is reached, inventory is not"
NOSCOPE=$(get_token "$STS" catalog-browser browser-secret read-catalog)
expect 403 "$(call orders.s2s.test /orders "$NOSCOPE")" "order with a read-catalog token"
grep -q 'error.insufficient.scope' body.json || fail "no reason from Torii"
expect 403 "$(call inventory.s2s.test /items/reserve "$NOSCOPE")" "inventory called directly"
grep -q 'read-catalog' body.json && fail "the refusal names a claim value"
echo "ok: the 403 names no claim value"

step "4. The identity server rotates its signing key; Torii picks it up without a reload"
curl -sS --cacert ca.pem --resolve "sts.s2s.test:$STS:127.0.0.1" -X POST \
    "https://sts.s2s.test:$STS/admin/rotate"; echo
ROTATED=$(get_token "$STS" web-shop shop-secret "place-order")
grep -q '"kid": *"sts-2"' <<<"$(printf '%s' "$ROTATED" | cut -d. -f1 | b64url_decode)" \
    || fail "the new token is not signed with sts-2"
# The first call names a kid Torii has not seen: it is refused at once (no request waits on a
# fetch) and Torii fetches the JWKS again; the next calls are accepted.
refused=0
for _ in $(seq 1 50); do
    status=$(call orders.s2s.test /orders "$ROTATED")
    [[ $status == 201 ]] && break
    refused=$((refused + 1)); sleep 0.2
done
expect 201 "$status" "order with a token signed by the rotated key ($refused refused while the new set was fetched)"
kill -0 "$TORII_PID" || fail "torii is gone"
grep -q 'configuration reloaded' edge.log && fail "torii was reloaded"
grep -q 'JWKS key set updated' edge.log || fail "torii did not log the new key set"
echo "ok: same torii process (pid $TORII_PID), no reload; $(grep 'JWKS key set updated' edge.log | tail -n 1 | sed 's/.*kids=/kids=/')"

step "5. A token from an identity server Torii does not trust is refused"
ROGUE_TOKEN=$(get_token "$ROGUE" web-shop shop-secret place-order)
expect 401 "$(call orders.s2s.test /orders "$ROGUE_TOKEN")" "token from https://rogue.example"
grep -q 'error.bad.token' body.json || fail "no reason given"

step "6. Every hop is TLS: the services refuse clients without a certificate from the CA"
if curl -sS -o /dev/null --cacert ca.pem --resolve "inventory.internal:$INV:127.0.0.1" \
    -X POST "https://inventory.internal:$INV/items/reserve" 2>/dev/null; then
    fail "inventory accepted a client without a certificate"
fi
echo "ok: a direct call to inventory without a client certificate is refused"

echo
echo "all six steps passed"
