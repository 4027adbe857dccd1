#!/usr/bin/env bash
# Securing service-to-service communication over TLS with JWT, through Torii.
#
#   order-processing ──TLS──▶ STS Torii (client_credentials) → an RS256 access token
#   client ──TLS──▶ edge Torii ──mTLS──▶ sidecar Torii ──▶ order-processing (torii mirror)
#                    │ checks the JWT         (client cert required)
#   order-processing ──TLS──▶ edge Torii ──mTLS──▶ sidecar Torii ──▶ inventory (torii mirror)
#                    │ checks the JWT, exchanges it for a Torii-signed info token
#
# Everything is generated in a temporary directory: a test CA and certificates, and the STS's
# RSA 2048 signing key (openssl). The STS is Torii's own OAuth2 token service; the edge checks
# its tokens with the JWKS the script fetches from it.
#
# Needs: openssl, curl, and the torii binary (TORII=path, default: built with cargo).
# BASE_PORT=N uses ports N..N+5 instead of 8443, 9443, 9444, 9001, 9002, 7443.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/../.."
if [[ -z "${TORII:-}" ]]; then
    (cd "$root" && cargo build --quiet --bin torii)
    TORII="$root/target/debug/torii"
fi
if [[ -n "${BASE_PORT:-}" ]]; then
    EDGE=$BASE_PORT; OP_TLS=$((BASE_PORT + 1)); INV_TLS=$((BASE_PORT + 2))
    OP=$((BASE_PORT + 3)); INV=$((BASE_PORT + 4)); STS=$((BASE_PORT + 5))
else
    EDGE=8443; OP_TLS=9443; INV_TLS=9444; OP=9001; INV=9002; STS=7443
fi
# The tokens' `iss`: scheme://host of the token request, the Host header including its port.
ISSUER="https://sts.s2s.test:$STS"
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

step "0. A test CA, a certificate for each TLS endpoint, the STS's RSA signing key"
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
leaf sts "DNS:sts.s2s.test"
mv sts.key sts-tls.key
# The STS's token signing key: RSA 2048, PKCS#8 PEM (tokens RS256).
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sts.key 2>/dev/null
echo "generated in $work"

sed -e "s/127.0.0.1:7443/127.0.0.1:$STS/" "$here/sts.toml" > sts.toml
sed -e "s/127.0.0.1:8443/127.0.0.1:$EDGE/; s/127.0.0.1:9443/127.0.0.1:$OP_TLS/; s/127.0.0.1:9444/127.0.0.1:$INV_TLS/" \
    -e "s|https://sts.s2s.test:7443|$ISSUER|" "$here/edge.toml" > edge.toml
for svc in order-processing inventory; do
    if [[ $svc == order-processing ]]; then tls=$OP_TLS; port=$OP; else tls=$INV_TLS; port=$INV; fi
    sed -e "s/SIDECAR_PORT/$tls/g; s/SERVICE_PORT/$port/g; s/SERVICE/$svc/g" \
        "$here/sidecar.toml" > "$svc.toml"
done
export S2S_CLAIM_SECRET="s2s-example-claim-secret-$(openssl rand -hex 16)"
export S2S_CLIENT_SECRET="$(openssl rand -hex 24)"
wait_port() {
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    fail "nothing listens on 127.0.0.1:$1"
}
"$TORII" check --config sts.toml
"$TORII" run --config sts.toml 2>sts.log & pids+=($!)
wait_port "$STS"
sts() { # path, extra curl args... (TLS, verified with the example CA)
    local path=$1; shift
    curl -sS --cacert ca.pem --resolve "sts.s2s.test:$STS:127.0.0.1" "$@" "https://sts.s2s.test:$STS$path"
}
# The edge verifies tokens with the STS's published keys, saved as a file (jwks_file).
sts /.well-known/otoroshi/oauth/jwks.json -o sts-jwks.json
grep -q '"kid":"sts-1"' sts-jwks.json || fail "the STS's JWKS does not list sts-1: $(cat sts-jwks.json)"
"$TORII" check --config edge.toml
"$TORII" mirror --listen "127.0.0.1:$OP" 2>mirror-op.log & pids+=($!)
"$TORII" mirror --listen "127.0.0.1:$INV" 2>mirror-inv.log & pids+=($!)
"$TORII" run --config order-processing.toml 2>sidecar-op.log & pids+=($!)
"$TORII" run --config inventory.toml 2>sidecar-inv.log & pids+=($!)
"$TORII" run --config edge.toml 2>edge.log & pids+=($!)
for port in $EDGE $OP_TLS $INV_TLS $OP $INV; do wait_port "$port"; done

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
b64url_decode() { # a base64url segment on stdin → its bytes
    local s
    s=$(tr '_-' '/+')
    while (( ${#s} % 4 )); do s="$s="; done
    printf '%s' "$s" | openssl base64 -d -A
}
token_request() { # client id, client secret → writes token.json, prints the HTTP status
    sts /.well-known/otoroshi/oauth/token -o token.json -w '%{http_code}' -X POST \
        -H 'Content-Type: application/json' \
        -d "{\"grant_type\":\"client_credentials\",\"client_id\":\"$1\",\"client_secret\":\"$2\"}"
}
call() { # host, path, extra curl args...
    local host=$1 path=$2; shift 2
    curl -sS --cacert ca.pem --resolve "$host:$EDGE:127.0.0.1" -o body.json -w '%{http_code}' \
        "$@" "https://$host:$EDGE$path"
}
expect() { # expected status, actual status, what
    [[ $2 == "$1" ]] || { cat body.json token.json >&2 || true; fail "$3: expected $1, got $2"; }
    echo "ok: $3 -> $2"
}

step "1. The STS (Torii's token service) issues an RS256 JWT to order-processing"
status=$(token_request order-processing "$S2S_CLIENT_SECRET")
[[ $status == 200 ]] || fail "token request: expected 200, got $status: $(cat token.json)"
TOKEN=$(sed -E 's/.*"access_token":"([^"]+)".*/\1/' token.json)
echo "token: ${TOKEN:0:40}..."
header=$(printf '%s' "$TOKEN" | cut -d. -f1 | b64url_decode)
claims=$(printf '%s' "$TOKEN" | cut -d. -f2 | b64url_decode)
echo "header: $header"
echo "claims: $claims"
grep -q '"alg":"RS256"' <<<"$header" || fail "not an RS256 token"
grep -q "\"iss\":\"$ISSUER\"" <<<"$claims" || fail "the token's iss is not $ISSUER"
grep -q '"aud":"otoroshi"' <<<"$claims" || fail "the token's aud is not otoroshi"
grep -q '"sub":"order-processing"' <<<"$claims" || fail "the token's sub is not order-processing"

step "2. The client calls order-processing over HTTPS with the token"
expect 200 "$(call orders.s2s.test /orders -X POST -H "Authorization: Bearer $TOKEN")" \
    "POST https://orders.s2s.test/orders with the token"
grep -q '"authorization":"Bearer ' body.json || fail "order-processing did not receive the token"
grep -q '"x-forwarded-proto":"https"' body.json || fail "the sidecar did not see TLS from the edge"

step "3. Without a valid token, no service sees the request"
expect 401 "$(call orders.s2s.test /orders)" "no token"
grep -q 'error.expected.token.not.found' body.json || fail "no reason given"
# A tampered token: the STS's signature kept, the claims changed (sub: admin).
tampered="$(cut -d. -f1 <<<"$TOKEN").$(sed 's/"sub":"order-processing"/"sub":"admin"/' <<<"$claims" \
    | b64url).$(cut -d. -f3 <<<"$TOKEN")"
expect 401 "$(call orders.s2s.test /orders -H "Authorization: Bearer $tampered")" \
    "tampered token (sub changed to admin)"
grep -q 'bad signature' body.json || fail "tampered token: $(cat body.json)"
expect 401 "$(call orders.s2s.test /orders -H "Authorization: Bearer ${TOKEN}x")" \
    "truncated or padded token"
# A forger's token: the STS's iss, aud, sub and kid, signed with a key of the forger's own.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out forger.key 2>/dev/null
now=$(date +%s)
forged=$(printf '{"alg":"RS256","typ":"JWT","kid":"sts-1"}' | b64url).$(printf \
    '{"iss":"%s","sub":"order-processing","aud":"otoroshi","iat":%d,"nbf":%d,"exp":%d}' \
    "$ISSUER" "$now" "$now" $((now + 300)) | b64url)
forged="$forged.$(printf '%s' "$forged" | openssl dgst -sha256 -sign forger.key | b64url)"
expect 401 "$(call inventory.s2s.test /items -H "Authorization: Bearer $forged")" \
    "token forged with another RSA key"
expect 401 "$(token_request order-processing "wrong-$S2S_CLIENT_SECRET")" \
    "the STS refuses a client with a wrong secret"
grep -q 'invalid_client' token.json || fail "no invalid_client: $(cat token.json)"
expect 401 "$(token_request inventory "$S2S_CLIENT_SECRET")" "the STS refuses an unknown client"

step "4. order-processing calls inventory with the same token, over TLS"
expect 200 "$(call inventory.s2s.test /items/42 -H "Authorization: Bearer $TOKEN")" \
    "GET https://inventory.s2s.test/items/42"
grep -q '"x-caller-claim"' body.json || fail "inventory did not get Torii's info token"
grep -q '"authorization"' body.json && fail "the external token reached inventory"
claim=$(sed -e 's/.*"x-caller-claim":"\([^"]*\)".*/\1/' body.json | cut -d. -f2 | b64url_decode)
echo "inventory's info token: $claim"
grep -q '"sub":"order-processing"' <<<"$claim" || fail "the info token does not carry the caller"
grep -q "\"iss\":\"$ISSUER\"" <<<"$claim" || fail "the info token does not carry the STS as issuer"

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
