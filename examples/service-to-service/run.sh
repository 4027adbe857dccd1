#!/usr/bin/env bash
# Securing service-to-service communication over TLS with JWT, through Torii.
#
#   client ──TLS──▶ edge Torii ──mTLS──▶ sidecar Torii ──▶ order-processing (torii mirror)
#                    │ checks the JWT         (client cert required)
#   order-processing ──TLS──▶ edge Torii ──mTLS──▶ sidecar Torii ──▶ inventory (torii mirror)
#                    │ checks the JWT, exchanges it for a Torii-signed info token
#
# Everything is generated in a temporary directory: a test CA and certificates (openssl), the
# identity server's RS256 key pair, and the token it issues (signed with openssl: the STS is
# this script; see docs/tls.md to use Torii's own token service instead).
#
# Needs: openssl, curl, and the torii binary (TORII=path, default: built with cargo).
# BASE_PORT=N uses ports N..N+4 instead of 8443, 9443, 9444, 9001, 9002.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/../.."
if [[ -z "${TORII:-}" ]]; then
    (cd "$root" && cargo build --quiet --bin torii)
    TORII="$root/target/debug/torii"
fi
if [[ -n "${BASE_PORT:-}" ]]; then
    EDGE=$BASE_PORT; OP_TLS=$((BASE_PORT + 1)); INV_TLS=$((BASE_PORT + 2))
    OP=$((BASE_PORT + 3)); INV=$((BASE_PORT + 4))
else
    EDGE=8443; OP_TLS=9443; INV_TLS=9444; OP=9001; INV=9002
fi
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
fail() { echo "FAILED: $*" >&2; exit 1; }

step "0. A test CA, a certificate for each TLS endpoint, the identity server's key pair"
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
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sts.key 2>/dev/null
openssl pkey -in sts.key -pubout -out sts.pub.pem
echo "generated in $work"

sed -e "s/127.0.0.1:8443/127.0.0.1:$EDGE/; s/127.0.0.1:9443/127.0.0.1:$OP_TLS/; s/127.0.0.1:9444/127.0.0.1:$INV_TLS/" \
    "$here/edge.toml" > edge.toml
for svc in order-processing inventory; do
    if [[ $svc == order-processing ]]; then tls=$OP_TLS; port=$OP; else tls=$INV_TLS; port=$INV; fi
    sed -e "s/SIDECAR_PORT/$tls/g; s/SERVICE_PORT/$port/g; s/SERVICE/$svc/g" \
        "$here/sidecar.toml" > "$svc.toml"
done
export S2S_CLAIM_SECRET="s2s-example-claim-secret-$(openssl rand -hex 16)"
"$TORII" check --config edge.toml
"$TORII" mirror --listen "127.0.0.1:$OP" 2>mirror-op.log & pids+=($!)
"$TORII" mirror --listen "127.0.0.1:$INV" 2>mirror-inv.log & pids+=($!)
"$TORII" run --config order-processing.toml 2>sidecar-op.log & pids+=($!)
"$TORII" run --config inventory.toml 2>sidecar-inv.log & pids+=($!)
"$TORII" run --config edge.toml 2>edge.log & pids+=($!)
for port in $EDGE $OP_TLS $INV_TLS $OP $INV; do
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
done

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
mint() { # aud list (JSON), lifetime seconds
    local now header payload input sig
    now=$(date +%s)
    header=$(printf '{"alg":"RS256","typ":"JWT","kid":"sts-1"}' | b64url)
    payload=$(printf '{"iss":"https://sts.s2s.test","sub":"order-processing","aud":%s,"scope":"orders:write inventory:read","iat":%d,"nbf":%d,"exp":%d}' \
        "$1" "$now" "$now" $((now + $2)) | b64url)
    input="$header.$payload"
    sig=$(printf '%s' "$input" | openssl dgst -sha256 -sign sts.key | b64url)
    printf '%s.%s' "$input" "$sig"
}
call() { # host, path, extra curl args...
    local host=$1 path=$2; shift 2
    curl -sS --cacert ca.pem --resolve "$host:$EDGE:127.0.0.1" -o body.json -w '%{http_code}' \
        "$@" "https://$host:$EDGE$path"
}
expect() { # expected status, actual status, what
    [[ $2 == "$1" ]] || { cat body.json >&2 || true; fail "$3: expected $1, got $2"; }
    echo "ok: $3 -> $2"
}

step "1. The identity server issues an RS256 JWT to order-processing"
TOKEN=$(mint '["order-processing","inventory"]' 300)
echo "token: ${TOKEN:0:40}..."

step "2. The client calls order-processing over HTTPS with the token"
expect 200 "$(call orders.s2s.test /orders -X POST -H "Authorization: Bearer $TOKEN")" \
    "POST https://orders.s2s.test/orders with the token"
grep -q '"authorization":"Bearer ' body.json || fail "order-processing did not receive the token"
grep -q '"x-forwarded-proto":"https"' body.json || fail "the sidecar did not see TLS from the edge"

step "3. Without a valid token, no service sees the request"
expect 401 "$(call orders.s2s.test /orders)" "no token"
grep -q 'error.expected.token.not.found' body.json || fail "no reason given"
expect 401 "$(call orders.s2s.test /orders -H "Authorization: Bearer ${TOKEN}x")" "tampered token"
EXPIRED=$(mint '["order-processing"]' -60)
expect 401 "$(call orders.s2s.test /orders -H "Authorization: Bearer $EXPIRED")" "expired token"
WRONG_AUD=$(mint '["order-processing"]' 300)
expect 401 "$(call inventory.s2s.test /items -H "Authorization: Bearer $WRONG_AUD")" \
    "token not meant for inventory"

step "4. order-processing calls inventory with the same token, over TLS"
expect 200 "$(call inventory.s2s.test /items/42 -H "Authorization: Bearer $TOKEN")" \
    "GET https://inventory.s2s.test/items/42"
grep -q '"x-caller-claim"' body.json || fail "inventory did not get Torii's info token"
grep -q '"authorization"' body.json && fail "the external token reached inventory"
claim=$(sed -e 's/.*"x-caller-claim":"\([^"]*\)".*/\1/' body.json | cut -d. -f2 | tr '_-' '/+')
while (( ${#claim} % 4 )); do claim="$claim="; done
echo "inventory's info token: $(printf '%s' "$claim" | openssl base64 -d -A)"
printf '%s' "$claim" | openssl base64 -d -A | grep -q '"sub":"order-processing"' \
    || fail "the info token does not carry the caller"

step "5. Every hop is TLS: the sidecars refuse clients without the CA's certificate"
if curl -sS -o /dev/null --cacert ca.pem --resolve "order-processing.internal:$OP_TLS:127.0.0.1" \
    "https://order-processing.internal:$OP_TLS/" 2>/dev/null; then
    fail "the sidecar accepted a client without a certificate"
fi
echo "ok: a direct call to order-processing without a client certificate is refused"
if curl -sS -o /dev/null "https://127.0.0.1:$EDGE/" -H "Host: orders.s2s.test" 2>/dev/null; then
    fail "the edge certificate was trusted without the example CA"
fi
echo "ok: the edge certificate is only trusted through the example CA"

echo
echo "all five steps passed"
