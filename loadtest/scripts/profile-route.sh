#!/usr/bin/env bash
# Where a route's proxy CPU goes: runs wrk against one Torii route (plain, v2 or v2-info) behind
# `torii mirror --body-bytes`, records the gateway with `perf record` during the load, and prints
# perf's flat profile (self time per symbol, user and kernel), plus the proxy CPU per request.
# Run it for plain and for v2-info in turn and compare the two profiles symbol by symbol.
#
#   loadtest/scripts/profile-route.sh v2-info      # ROUTE: plain | v2 | v2-info
#
# Environment: CONNS=64 DURATION=10s WORKERS=2 BODY_BYTES=1024 TOP=45 OUT=/tmp/profile-ROUTE.txt
#   PAD_BYTES=N adds an `X-Pad` header whose value is N bytes to every request (0: none): a plain
#   route then carries as many more bytes as a secured one, to price those bytes in the kernel
#   TORII=path of the gateway binary (default target/release/torii), MIRROR_BIN= the binary that
#   runs `torii mirror` (default: TORII; set it when TORII is an older build without --body-bytes),
#   PERF_DATA= keep perf's recording there (with call graphs: `perf report -i FILE -G` shows callers)
# Needs: target/release/torii (cargo build --release -p torii-engine), wrk, perf. Loopback only;
# everything started here is stopped on exit.
set -euo pipefail
ROUTE=${1:-plain}
CONNS=${CONNS:-64}
DURATION=${DURATION:-10s}
WORKERS=${WORKERS:-2}
BODY_BYTES=${BODY_BYTES:-1024}
PAD_BYTES=${PAD_BYTES:-0}
TOP=${TOP:-45}
OUT=${OUT:-/tmp/profile-$ROUTE.txt}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TORII=${TORII:-$ROOT/target/release/torii}
MIRROR_BIN=${MIRROR_BIN:-$TORII}
WORK=$(mktemp -d /tmp/profile-route.XXXXXX)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    local i
    for i in $(seq 1 100); do
        curl -s -o /dev/null -m 1 -H 'Host: bench.local' "http://127.0.0.1:$1/" && return 0
        sleep 0.1
        : "$i"
    done
    echo "nothing on port $1" >&2
    exit 1
}
SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n')
export PR_SECRET=$SECRET
MPORT=$(port)
mirror=("$MIRROR_BIN" mirror --listen "127.0.0.1:$MPORT" --body-bytes "$BODY_BYTES")
security=""
case $ROUTE in
    plain) ;;
    v2) mirror+=(--challenge v2 --secret "$SECRET")
        security=$'[routes.challenge]\nversion = "v2"\nsecret = "${env.PR_SECRET}"' ;;
    v2-info) mirror+=(--challenge v2 --secret "$SECRET")
        security=$'[routes.challenge]\nversion = "v2"\nsecret = "${env.PR_SECRET}"\n\n[routes.info_token]\nsecret = "${env.PR_SECRET}"' ;;
    *) echo "ROUTE is plain, v2 or v2-info" >&2; exit 2 ;;
esac
TORII_LOG=warn "${mirror[@]}" >"$WORK/mirror.log" 2>&1 &
PIDS+=("$!")
wait_port "$MPORT"
GPORT=$(port)
cat >"$WORK/torii.toml" <<TOML
[gateway]
workers = $WORKERS
http = ["127.0.0.1:$GPORT"]

[[routes]]
id = "r"
domains = ["bench.local"]
targets = ["http://127.0.0.1:$MPORT"]

$security
TOML
TORII_LOG=warn "$TORII" run --config "$WORK/torii.toml" >"$WORK/torii.log" 2>&1 &
GPID=$!
PIDS+=("$GPID")
wait_port "$GPORT"
headers=(-H 'Host: bench.local')
if ((PAD_BYTES > 0)); then headers+=(-H "X-Pad: $(head -c "$PAD_BYTES" /dev/zero | tr '\0' p)"); fi
wrk -t2 -c"$CONNS" -d2s "${headers[@]}" "http://127.0.0.1:$GPORT/" >/dev/null
ticks() { awk '{ print $14 + $15 }' "/proc/$GPID/stat"; }
# Context switches of every gateway thread (voluntary: it slept waiting for IO; involuntary:
# preempted), summed.
switches() { cat /proc/"$GPID"/task/*/status | awk '/_ctxt_switches/ { n += $2 } END { print n }'; }
t0=$(ticks)
c0=$(switches)
wrk -t2 -c"$CONNS" -d"$DURATION" "${headers[@]}" "http://127.0.0.1:$GPORT/" >"$WORK/wrk.txt" &
WRK=$!
sleep 1
perf record -q -F 2999 -g -p "$GPID" -o "$WORK/perf.data" -- sleep 6 >/dev/null 2>&1
wait "$WRK"
t1=$(ticks)
c1=$(switches)
reqs=$(awk '/requests in/ { print $1 }' "$WORK/wrk.txt")
us=$(awk -v t=$((t1 - t0)) -v r="$reqs" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", t * 1e6 / hz / r }')
perf report -i "$WORK/perf.data" --no-children --sort symbol --stdio 2>/dev/null |
    grep -E '^ +[0-9]+\.[0-9]+%' | sed -E 's/ +- +- *$//' >"$WORK/symbols.txt" || true
{
    echo "# route $ROUTE, $CONNS conns, $WORKERS workers, body $BODY_BYTES B, pad $PAD_BYTES B: $reqs requests, proxy CPU $us µs/request (includes perf's sampling overhead)"
    grep -E "Requests/sec|Non-2xx" "$WORK/wrk.txt" || true
    awk -v c=$((c1 - c0)) -v r="$reqs" 'BEGIN { printf "context switches per request: %.3f\n", c / r }'
    # Every sampled symbol in one of these groups (first match wins), as a share of the samples
    # and as µs per request (share × the measured proxy CPU per request).
    echo "## where the time goes (self time, all symbols)"
    awk -v us="$us" '
        function group(sym) {
            if (sym ~ /\[k\]/) return "kernel (syscalls, TCP, scheduler)"
            if (sym ~ /sha512|sha256|ring::hmac|ring::digest|ring_core/) return "protocol: SHA-2 and HMAC (ring)"
            if (sym ~ /torii_protocol|base64|serde|rand_chacha|rand_core|subtle|itoa|ryu/) return "protocol: token text, JSON, base64, CSPRNG"
            if (sym ~ /monoio|io_uring/) return "runtime (monoio)"
            if (sym ~ /torii_engine|httparse/) return "engine (HTTP, routing, proxy)"
            if (sym ~ /memmove|memcpy|memset|memcmp/) return "libc: memory copies"
            if (sym ~ /clock_gettime|read_tsc/) return "clock reads (vDSO)"
            return "other user space (allocator, libc, std)"
        }
        { pct = $1; sub(/%/, "", pct); sym = $0; sub(/^ *[0-9.]+% +/, "", sym); g = group(sym); share[g] += pct }
        END { for (g in share) printf "%7.2f%%  %5.2f µs  %s\n", share[g], share[g] * us / 100, g }
    ' "$WORK/symbols.txt" | sort -rn
    echo "## top $TOP symbols"
    awk -v n="$TOP" 'NR <= n' "$WORK/symbols.txt"
} | tee "$OUT"
if [[ -n "${PERF_DATA:-}" ]]; then cp "$WORK/perf.data" "$PERF_DATA"; fi
