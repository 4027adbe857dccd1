#!/usr/bin/env bash
# Torii vs nginx as a plain HTTP/1.1 reverse proxy, on loopback, same backend (torii mirror).
#
# For each connection count in CONNS and each target in TARGETS it runs
#   wrk -t$THREADS -c$CONNS -d$DURATION --latency -H 'Host: bench.local' http://127.0.0.1:PORT/
# after a short warm-up, and records requests/s, p50/p99, non-2xx and socket errors, and the CPU
# time each process spent per request (utime+stime from /proc/PID/stat, after - before, clock
# ticks converted to µs with `getconf CLK_TCK`, divided by the requests wrk counted; wrk's own
# from this shell's cutime+cstime), and the
# time the proxy's threads waited for a CPU while runnable (/proc/PID/task/*/schedstat).
#
# Targets:
#   direct       wrk straight to the mirror: the ceiling (no proxy; proxy CPU column is "-")
#   torii        torii run, 2 workers, default driver (io_uring when the kernel allows it)
#   torii-epoll  the same binary with MONOIO_FORCE_LEGACY_DRIVER=1 (monoio's epoll driver)
#   nginx        nginx, 2 workers, proxy_http_version 1.1, Connection "", keepalive 64
#   torii-ops    torii with the admin listener and the JSON access log (to a file) on
#   torii-base   TORII_BASE (another torii binary, e.g. one built before a change), same config
#   torii-cpu    torii with gateway.connection_steering = "cpu" (each connection served by the
#                worker on the CPU that received it; docs/configuration.md)
#   torii-v1     torii with [routes.challenge] version = "v1" (mirror: --challenge v1)
#   torii-v2     torii with a V2 challenge, HS512 (mirror: --challenge v2 --secret)
#   torii-v2-info  V2 challenge + [routes.info_token] (latest, HS512); the mirror verifies the
#                claim too. These three are the secured routes: SECURED=1 runs them with torii
#                (plain) and nginx, so one table compares all four routes and nginx.
#   torii-jwt-file  [routes.jwt] RS256 with the keys from a JWKS file (jwks_file); wrk sends
#                Authorization: Bearer <token> (PyJWT signs it with protocol/tests/keys/rsa2048.pem)
#   torii-jwt-url   the same keys fetched from a URL (jwks_url, a python3 http.server on loopback)
#                and fetched again every second (jwks_refresh_min = jwks_refresh_max = 1s), so
#                the background refresh runs during the measurement; the p99 of the two rows is
#                what compares. Both with limits.verified_token_cache = JWT_CACHE (default 0: every
#                request verifies the signature; the cache would hide the verify path).
#   NAME@base    any torii target above run with the TORII_BASE binary instead (e.g.
#                torii-v2-info@base): SECURED=1 BASE=1 compares plain, V1 and V2 + info token
#                before and after a change in one run.
#   JWT=1 runs "torii torii-jwt-file torii-jwt-url" (with BODY_BYTES=1024, as SECURED=1).
#
# Environment (all optional):
#   DURATION=15s  CONNS="64 256"  THREADS=2  WARMUP=3s
#   TARGETS="direct torii torii-epoll nginx"   DIRECT=1 (0 drops the "direct" row)
#   PROXY_WORKERS=2  MIRROR_WORKERS=1
#   MIRROR_CPU=      core list for `taskset -c` on the mirror (default: not pinned, see below)
#   NGINX_AFFINITY=auto   nginx worker_cpu_affinity ("auto" pins like torii does; "off" not)
#   OUT=/tmp/proxy-compare.md   markdown table written here (also printed)
#   MAX_BG=       wait (up to MAX_BG_WAIT=120 s) until other processes use at most this busy %
#   SKIP_BUILD=1  do not run cargo build (use the existing target/release/torii)
#   TORII_STEERING=cpu  connection_steering for every torii target (default: torii-cpu only)
#   TORII_BASE=   path of the binary the torii-base target runs
#   KEEP_DIR=1    keep the scratch directory (configs, logs, raw wrk output)
#   BODY_BYTES=   the mirror answers every request with a JSON body of exactly this many bytes
#                 (`torii mirror --body-bytes`) instead of describing the request. Default: 1024
#                 with SECURED=1, so the plain and the secured routes return the same body (the
#                 description echoes the request headers, ~1.3 KB more on a V2 + info route);
#                 unset otherwise (the description, as in the earlier recorded runs).
#
# Pinning. Torii pins worker N to the N-th CPU the process may use (engine/src/cpus.rs,
# `gateway.pin_workers`), so a `taskset` mask on torii is respected; nginx gets
# `worker_cpu_affinity auto` to match. On a 2-core
# machine nothing can be isolated: wrk, the mirror and the proxy share both cores whatever we do.
# The mirror is left unpinned by default so the scheduler can balance it; pinning it to one core
# (MIRROR_CPU=1) puts mirror + one proxy worker + part of wrk on that core and the other worker
# on the other, which is less even. Every figure is relative to this shared machine: compare
# rows of the same run, not runs of different machines.
#
# TLS=1: the proxies terminate TLS (wrk speaks https to them, keep-alive, so handshakes are
# amortised) with the same self-signed ECDSA P-256 certificate generated here with openssl;
# both proxy to the plain mirror. Torii: `https` listener + `[[certificates]]`; nginx:
# `listen ... ssl`, TLS 1.2/1.3, its default ciphers. Default TARGETS becomes "torii nginx".
#
# Only 127.0.0.1 is ever contacted. Everything started here is stopped on exit.

set -euo pipefail

DURATION=${DURATION:-15s}
CONNS=${CONNS:-"64 256"}
THREADS=${THREADS:-2}
WARMUP=${WARMUP:-3s}
TLS=${TLS:-0}
if [[ "${JWT:-0}" == 1 ]]; then
    TARGETS=${TARGETS:-"torii torii-jwt-file torii-jwt-url"}
    BODY_BYTES=${BODY_BYTES:-1024}
fi
if [[ "${SECURED:-0}" == 1 && "${BASE:-0}" == 1 ]]; then
    TARGETS=${TARGETS:-"torii torii@base torii-v1 torii-v1@base torii-v2-info torii-v2-info@base nginx"}
fi
if [[ "${SECURED:-0}" == 1 ]]; then
    TARGETS=${TARGETS:-"torii torii-v1 torii-v2 torii-v2-info nginx"}
    BODY_BYTES=${BODY_BYTES:-1024}
fi
BODY_BYTES=${BODY_BYTES:-}
if [[ "$TLS" == 1 ]]; then
    TARGETS=${TARGETS:-"torii nginx"}
    SCHEME=https
else
    TARGETS=${TARGETS:-"direct torii torii-epoll nginx"}
    SCHEME=http
fi
# DIRECT=0 drops the ceiling row (wrk straight to the mirror); DIRECT=1 (default) keeps it.
if [[ "${DIRECT:-1}" == 0 ]]; then
    TARGETS=${TARGETS//direct/}
fi
PROXY_WORKERS=${PROXY_WORKERS:-2}
MIRROR_WORKERS=${MIRROR_WORKERS:-1}
MIRROR_CPU=${MIRROR_CPU:-}
NGINX_AFFINITY=${NGINX_AFFINITY:-auto}
OUT=${OUT:-/tmp/proxy-compare.md}
HOST_HEADER=bench.local

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TORII="$ROOT/target/release/torii"
CLK_TCK=$(getconf CLK_TCK)
WORK=$(mktemp -d /tmp/proxy-compare.XXXXXX)

PIDS=()

log() { printf '[proxy-compare] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ -z "${KEEP_DIR:-}" ]]; then
        rm -rf "$WORK"
    else
        log "scratch directory kept: $WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- tools -----------------------------------------------------------------------------------

ensure_tools() {
    local missing=()
    command -v wrk >/dev/null || missing+=(wrk)
    command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx-light)
    if ((${#missing[@]})); then
        log "installing ${missing[*]} with apt"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

nginx_bin() { command -v nginx || echo /usr/sbin/nginx; }

# --- processes -------------------------------------------------------------------------------

# A loopback port no TCP socket uses in any state (checked with ss), outside the kernel's
# ephemeral range: a port that is the local end of a TIME-WAIT client connection (wrk makes
# thousands) cannot be bound, and torii then reports it as "in use by another process".
free_port() {
    local lo hi port i
    read -r lo hi </proc/sys/net/ipv4/ip_local_port_range
    for i in $(seq 1 200); do
        if ((lo > 12000)); then
            port=$((10000 + (RANDOM + i) % (lo - 10000)))
        else
            port=$((hi + 1 + (RANDOM + i) % (65535 - hi)))
        fi
        if ! ss -Htan "sport = :$port" | grep -q .; then
            echo "$port"
            return 0
        fi
    done
    die "no free port found"
}

# Waits until something answers HTTP on 127.0.0.1:$1 (any status; scheme $2, default http), at
# most ~10 s.
wait_http() {
    local port=$1 scheme=${2:-http} i
    for i in $(seq 1 100); do
        if curl -k -s -o /dev/null -m 1 -H "Host: $HOST_HEADER" "$scheme://127.0.0.1:$port/" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
        : "$i"
    done
    die "nothing answers on 127.0.0.1:$port"
}

# utime and stime (clock ticks) of one pid, as "U S", from /proc/PID/stat (fields 14 and 15; the command name
# in field 2 may contain spaces, so fields are counted after the last ')').
ticks_of() {
    local stat rest
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0 0; return; }
    rest=${stat##*) }
    # shellcheck disable=SC2086
    set -- $rest
    # After ')' field 3 (state) is $1, so utime (14) is ${12} and stime (15) is ${13}.
    echo "${12} ${13}"
}

# cutime+cstime of this shell: CPU of the children it has reaped (clock ticks).
children_ticks() {
    local stat rest
    stat=$(cat "/proc/$$/stat")
    rest=${stat##*) }
    # shellcheck disable=SC2086
    set -- $rest
    # After ')' field 3 is $1, so cutime (16) is ${14} and cstime (17) is ${15}.
    echo $((${14} + ${15}))
}

# Sums of user and system ticks over a list of pids, as "U S".
ticks_sum() {
    local u=0 s=0 pid pu ps
    for pid in "$@"; do
        read -r pu ps < <(ticks_of "$pid")
        u=$((u + pu))
        s=$((s + ps))
    done
    echo "$u $s"
}

# Nanoseconds the threads of the given pids spent runnable but waiting for a CPU (second field
# of /proc/PID/task/TID/schedstat): how much the scheduler, not the proxy, held requests back.
runq_wait_ns() {
    local pid f total=0 cpu wait rest
    for pid in "$@"; do
        for f in /proc/"$pid"/task/*/schedstat; do
            [[ -r "$f" ]] || continue
            read -r cpu wait rest <"$f" || continue
            total=$((total + wait))
            : "$cpu" "$rest"
        done
    done
    echo "$total"
}

# The pids of a process and its direct children (nginx: master + workers).
tree_pids() {
    local pid=$1
    echo "$pid"
    pgrep -P "$pid" || true
}

# The secret of the secured routes (V2 challenge and info token), random per run.
SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n')
MIRROR_MODE=""

# start_mirror [MODE]: MODE is plain (default), v1 or v2 (answers the exchange protocol and
# verifies Otoroshi-Claim with $SECRET).
start_mirror() {
    MIRROR_MODE=${1:-plain}
    MIRROR_PORT=$(free_port)
    local cmd=("$TORII" mirror --listen "127.0.0.1:$MIRROR_PORT" --workers "$MIRROR_WORKERS")
    case $MIRROR_MODE in
        v1) cmd+=(--challenge v1) ;;
        v2) cmd+=(--challenge v2 --secret "$SECRET") ;;
    esac
    if [[ -n "$BODY_BYTES" ]]; then
        cmd+=(--body-bytes "$BODY_BYTES")
    fi
    if [[ -n "$MIRROR_CPU" ]]; then
        cmd=(taskset -c "$MIRROR_CPU" "${cmd[@]}")
    fi
    TORII_LOG=warn "${cmd[@]}" >"$WORK/mirror.log" 2>&1 &
    MIRROR_PID=$!
    PIDS+=("$MIRROR_PID")
    wait_http "$MIRROR_PORT"
    log "mirror ($MIRROR_MODE) on 127.0.0.1:$MIRROR_PORT (pid $MIRROR_PID, workers $MIRROR_WORKERS, cpu ${MIRROR_CPU:-any}, body ${BODY_BYTES:-description})"
}

# jwt_setup: an RS256 token and a JWKS document for it (PyJWT, the test key pair), the JWKS
# served by python3 http.server on a free loopback port. Sets TOKEN and JWKS_PORT.
TOKEN=""
jwt_setup() {
    [[ -n "$TOKEN" ]] && return 0
    mkdir -p "$WORK/jwks"
    python3 - "$ROOT/protocol/tests/keys/rsa2048.pem" "$WORK/jwks/jwks.json" "$WORK/token" <<'PY' || die "the JWT targets need python3 with PyJWT[crypto]"
import json, sys, time, jwt
from jwt.algorithms import RSAAlgorithm
from cryptography.hazmat.primitives.serialization import load_pem_private_key
pem = open(sys.argv[1], "rb").read()
key = load_pem_private_key(pem, None)
jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
jwk.update(kid="bench-1", alg="RS256", use="sig")
json.dump({"keys": [jwk]}, open(sys.argv[2], "w"))
now = int(time.time())
claims = {"iss": "https://sts.bench.test", "aud": "bench", "sub": "bench-client",
          "scope": "read", "iat": now, "nbf": now, "exp": now + 6 * 3600}
open(sys.argv[3], "w").write(jwt.encode(claims, pem, algorithm="RS256", headers={"kid": "bench-1"}))
PY
    TOKEN=$(cat "$WORK/token")
    JWKS_PORT=$(free_port)
    python3 -m http.server --bind 127.0.0.1 --directory "$WORK/jwks" "$JWKS_PORT" >"$WORK/jwks-server.log" 2>&1 &
    PIDS+=("$!")
    local i
    for i in $(seq 1 50); do
        curl -s -o /dev/null -m 1 "http://127.0.0.1:$JWKS_PORT/jwks.json" && break
        sleep 0.1
        : "$i"
    done
    log "JWKS on http://127.0.0.1:$JWKS_PORT/jwks.json"
}

# The Authorization header a target's requests carry (none for most).
auth_for() {
    case $1 in
        torii-jwt-*) echo "Authorization: Bearer $TOKEN" ;;
        *) echo "X-Bench: 1" ;;
    esac
}

# start_torii NAME [ENV=VALUE...]: sets PROXY_PORT and PROXY_PIDS.
start_torii() {
    local name=$1
    shift
    PROXY_PORT=$(free_port)
    local listener="http = [\"127.0.0.1:$PROXY_PORT\"]"
    local tables=""
    if [[ "$TLS" == 1 ]]; then
        listener="https = [\"127.0.0.1:$PROXY_PORT\"]"
        tables=$(printf '[[certificates]]\ncert = "%s"\nkey = "%s"\n' "$WORK/cert.pem" "$WORK/key.pem")
    fi
    local extra="" security="" steering=""
    [[ $name == torii-cpu || -n "${TORII_STEERING:-}" ]] && steering="connection_steering = \"${TORII_STEERING:-cpu}\""
    case $name in
        torii-v1) security=$(printf '[routes.challenge]\nversion = "v1"\n') ;;
        torii-v2) security=$(printf '[routes.challenge]\nversion = "v2"\nsecret = "${env.PC_SECRET}"\n') ;;
        torii-v2-info)
            security=$(printf '[routes.challenge]\nversion = "v2"\nsecret = "${env.PC_SECRET}"\n\n[routes.info_token]\nsecret = "${env.PC_SECRET}"\n')
            ;;
        torii-jwt-file)
            security=$(printf '[routes.jwt]\nalgorithms = ["RS256"]\nissuer = "https://sts.bench.test"\naudience = "bench"\njwks_file = "%s"\n' "$WORK/jwks/jwks.json")
            extra=$(printf '[limits]\nverified_token_cache = %s\n' "${JWT_CACHE:-0}")
            ;;
        torii-jwt-url)
            security=$(printf '[routes.jwt]\nalgorithms = ["RS256"]\nissuer = "https://sts.bench.test"\naudience = "bench"\njwks_url = "http://127.0.0.1:%s/jwks.json"\ninsecure_jwks_http = true\njwks_refresh_min = "1s"\njwks_refresh_max = "1s"\n' "$JWKS_PORT")
            extra=$(printf '[limits]\nverified_token_cache = %s\n' "${JWT_CACHE:-0}")
            ;;
    esac
    if [[ $name == torii-ops ]]; then
        listener+=$(printf '\nadmin = "127.0.0.1:%s"' "$(free_port)")
        extra=$(printf '[access_log]\npath = "%s"\n' "$WORK/access.log")
    fi
    cat >"$WORK/$name.toml" <<EOF
[gateway]
workers = $PROXY_WORKERS
$listener
$steering

$tables
$extra

[[routes]]
id = "plain"
domains = ["$HOST_HEADER"]
targets = ["http://127.0.0.1:$MIRROR_PORT"]

$security
EOF
    env TORII_LOG=info PC_SECRET="$SECRET" "$@" "${BIN:-$TORII}" run --config "$WORK/$name.toml" >"$WORK/$name.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    PROXY_PIDS=("$pid")
    wait_http "$PROXY_PORT" "$SCHEME"
    local i
    for i in $(seq 1 50); do
        (($(grep -c 'worker started' "$WORK/$name.log") >= PROXY_WORKERS)) && break
        sleep 0.1
        : "$i"
    done
    local drivers
    drivers=$(grep -o 'driver="\?[a-z_]*' "$WORK/$name.log" | tr -d '"' | sort | uniq -c | tr -s ' ' | paste -sd, - || true)
    log "$name${BIN:+ (binary $BIN)} on 127.0.0.1:$PROXY_PORT (pid $pid; workers:${drivers:- driver not logged})"
}

start_nginx() {
    PROXY_PORT=$(free_port)
    mkdir -p "$WORK/nginx"
    local NGINX_SSL="" NGINX_SSL_CONF=""
    if [[ "$TLS" == 1 ]]; then
        NGINX_SSL=" ssl"
        NGINX_SSL_CONF="        ssl_certificate $WORK/cert.pem;
        ssl_certificate_key $WORK/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;"
    fi
    cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes $PROXY_WORKERS;
worker_cpu_affinity $NGINX_AFFINITY;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    keepalive_requests 1000000;
    upstream mirror {
        server 127.0.0.1:$MIRROR_PORT;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$PROXY_PORT reuseport$NGINX_SSL;
$NGINX_SSL_CONF
        server_name $HOST_HEADER;
        location / {
            proxy_pass http://mirror;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
    "$(nginx_bin)" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" >"$WORK/nginx/stdout.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    wait_http "$PROXY_PORT" "$SCHEME"
    mapfile -t PROXY_PIDS < <(tree_pids "$pid")
    log "nginx on 127.0.0.1:$PROXY_PORT (master $pid, ${#PROXY_PIDS[@]} processes, affinity $NGINX_AFFINITY)"
}

# Removes a pid (already reaped) from the list the exit trap signals.
forget_pid() {
    local keep=() p
    for p in "${PIDS[@]}"; do
        [[ "$p" == "$1" ]] || keep+=("$p")
    done
    PIDS=("${keep[@]}")
}

# Stops pids started here and forgets them (so the exit trap never signals a reused pid).
stop_pids() {
    local pid keep=() p
    for pid in "$@"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "$@"; do
        wait "$pid" 2>/dev/null || true
    done
    for p in "${PIDS[@]}"; do
        [[ " $* " == *" $p "* ]] || keep+=("$p")
    done
    PIDS=("${keep[@]}")
}

# --- one measurement -------------------------------------------------------------------------

# Busy CPU % of the whole machine over 1 s, while nothing of ours is loaded (between runs): what
# other people's work takes from the benchmark. load1 is a 1-minute average that our own wrk
# runs inflate, so it is recorded but this is the better contention figure.
background_busy() {
    local a b
    a=$(awk '/^cpu / { print $2+$3+$4+$5+$6+$7+$8+$9, $5+$6 }' /proc/stat)
    sleep 1
    b=$(awk '/^cpu / { print $2+$3+$4+$5+$6+$7+$8+$9, $5+$6 }' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " "); t = y[1] - x[1]; i = y[2] - x[2]; printf "%.0f", (t > 0 ? 100 * (t - i) / t : 0) }'
}

# With MAX_BG set, waits (at most MAX_BG_WAIT seconds, default 120) until background_busy is
# at or below MAX_BG percent; sets BG to the last reading either way.
wait_quiet() {
    local waited=0
    BG=$(background_busy)
    while [[ -n "${MAX_BG:-}" ]] && ((BG > MAX_BG && waited < ${MAX_BG_WAIT:-120})); do
        log "background CPU ${BG}% > ${MAX_BG}%, waiting"
        sleep 4
        waited=$((waited + 5))
        BG=$(background_busy)
    done
}

# µs per request from a tick delta, 1 decimal.
us_per_req() {
    local ticks=$1 reqs=$2
    awk -v t="$ticks" -v r="$reqs" -v hz="$CLK_TCK" 'BEGIN { if (r > 0) printf "%.1f", t * 1e6 / hz / r; else print "n/a" }'
}

# measure LABEL PORT CONNS PROXY_PID...: appends one table row to $ROWS.
measure() {
    local label=$1 port=$2 conns=$3
    shift 3
    local proxy_pids=("$@")
    local url="$SCHEME://127.0.0.1:$port/"
    [[ "$label" == direct ]] && url="http://127.0.0.1:$port/"
    local raw="$WORK/wrk-$label-$conns.txt"

    local load pu0 ps0 mu0 ms0 pu1 ps1 mu1 ms1
    wait_quiet
    local auth
    auth=$(auth_for "$label")
    wrk -t"$THREADS" -c"$conns" -d"$WARMUP" -H "Host: $HOST_HEADER" -H "$auth" "$url" >/dev/null 2>&1 || true
    load=$(cut -d' ' -f1 /proc/loadavg)
    read -r pu0 ps0 < <(ticks_sum "${proxy_pids[@]}")
    read -r mu0 ms0 < <(ticks_of "$MIRROR_PID")
    local rq0 rq1
    rq0=$(runq_wait_ns "${proxy_pids[@]}")
    # wrk runs in the background and is waited for, so that a signal stops the script (and the
    # trap stops wrk) at once. Its CPU is the growth of this shell's cutime+cstime (fields 16
    # and 17 of /proc/$$/stat) across the wait: wrk is the only child reaped in between.
    local t0 c0 c1 wrk_pid
    t0=$(date +%s.%N)
    c0=$(children_ticks)
    wrk -t"$THREADS" -c"$conns" -d"$DURATION" --latency -H "Host: $HOST_HEADER" -H "$auth" "$url" >"$raw" 2>&1 &
    wrk_pid=$!
    PIDS+=("$wrk_pid")
    wait "$wrk_pid" || true
    c1=$(children_ticks)
    forget_pid "$wrk_pid"
    read -r pu1 ps1 < <(ticks_sum "${proxy_pids[@]}")
    read -r mu1 ms1 < <(ticks_of "$MIRROR_PID")
    rq1=$(runq_wait_ns "${proxy_pids[@]}")
    local wall
    wall=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')

    local reqs rps p50 p99 non2xx sockerr
    reqs=$(awk '/requests in/ { print $1 }' "$raw")
    rps=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$raw")
    p50=$(awk '$1 == "50%" { print $2 }' "$raw")
    p99=$(awk '$1 == "99%" { print $2 }' "$raw")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$raw")
    sockerr=$(awk '/Socket errors:/ { sub(/^ *Socket errors: */, ""); print }' "$raw")
    [[ -n "$reqs" ]] || { cat "$raw" >&2; die "could not parse wrk output for $label"; }

    local proxy_us="-" proxy_split="-" proxy_rq="-"
    if ((${#proxy_pids[@]})); then
        proxy_rq=$(awk -v n=$((rq1 - rq0)) -v r="$reqs" 'BEGIN { printf "%.1f", n / 1000 / r }')
        proxy_us=$(us_per_req $((pu1 - pu0 + ps1 - ps0)) "$reqs")
        proxy_split="$(us_per_req $((pu1 - pu0)) "$reqs") / $(us_per_req $((ps1 - ps0)) "$reqs")"
    fi
    local mirror_us wrk_us
    mirror_us=$(us_per_req $((mu1 - mu0 + ms1 - ms0)) "$reqs")
    wrk_us=$(us_per_req $((c1 - c0)) "$reqs")

    ROWS+=("| $label | $conns | $rps | $p50 | $p99 | $proxy_us | $proxy_split | $proxy_rq | $mirror_us | $wrk_us | ${non2xx:-0} | ${sockerr:-none} | $BG% | $load |")
    log "$label c=$conns: $rps req/s, p99 $p99, proxy ${proxy_us} µs/req (user/sys ${proxy_split}, run-queue wait ${proxy_rq}), mirror ${mirror_us} µs/req, wrk ${wrk_us} µs/req, wall ${wall}s, bg CPU ${BG}%, load $load"
    if [[ -n "$non2xx" || -n "$sockerr" ]]; then
        log "  $label c=$conns: non-2xx=${non2xx:-0} socket errors: ${sockerr:-none}"
    fi
}

# --- main ------------------------------------------------------------------------------------

ensure_tools
if [[ -z "${SKIP_BUILD:-}" ]]; then
    log "building torii (release)"
    (cd "$ROOT" && cargo build --release -q -p torii-engine)
fi
[[ -x "$TORII" ]] || die "$TORII not found (build it, or unset SKIP_BUILD)"

ROWS=()
if [[ "$TLS" == 1 ]]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
        -subj "/CN=$HOST_HEADER" -addext "subjectAltName=DNS:$HOST_HEADER" \
        -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
fi
# The mirror mode a target needs.
mirror_mode_for() {
    case ${1%@base} in
        torii-v1) echo v1 ;;
        torii-v2 | torii-v2-info) echo v2 ;;
        *) echo plain ;;
    esac
}

for target in $TARGETS; do
    PROXY_PIDS=()
    want=$(mirror_mode_for "$target")
    if [[ "$want" != "$MIRROR_MODE" ]]; then
        [[ -n "$MIRROR_MODE" ]] && stop_pids "$MIRROR_PID"
        start_mirror "$want"
    fi
    BIN=""
    if [[ "$target" == *@base ]]; then
        [[ -x "${TORII_BASE:-}" ]] || die "$target needs TORII_BASE=/path/to/torii"
        BIN=$TORII_BASE
    fi
    case ${target%@base} in
        direct) PROXY_PORT=$MIRROR_PORT ;;
        torii) start_torii torii ;;
        torii-epoll) start_torii torii-epoll MONOIO_FORCE_LEGACY_DRIVER=1 ;;
        torii-ops | torii-cpu | torii-v1 | torii-v2 | torii-v2-info) start_torii "${target%@base}" ;;
        torii-jwt-file | torii-jwt-url)
            jwt_setup
            start_torii "${target%@base}"
            ;;
        torii-base)
            [[ -x "${TORII_BASE:-}" ]] || die "torii-base needs TORII_BASE=/path/to/torii"
            BIN=$TORII_BASE start_torii torii-base
            ;;
        nginx) start_nginx ;;
        *) die "unknown target $target" ;;
    esac
    # Sanity: one request by hand must be a 200 through this target.
    scheme=$SCHEME
    [[ "$target" == direct ]] && scheme=http
    code=$(curl -k -s -o /dev/null -w '%{http_code}' -m 2 -H "Host: $HOST_HEADER" -H "$(auth_for "$target")" "$scheme://127.0.0.1:$PROXY_PORT/check")
    [[ "$code" == 200 ]] || die "$target answered $code to a plain GET"
    for conns in $CONNS; do
        measure "$target" "$PROXY_PORT" "$conns" "${PROXY_PIDS[@]}"
    done
    if ((${#PROXY_PIDS[@]})); then
        # nginx: the master is the first pid; stopping it stops its workers.
        stop_pids "${PROXY_PIDS[0]}"
    fi
done

{
    echo "<!-- $(date -u +%Y-%m-%dT%H:%M:%SZ) $(nproc) cpus, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') -->"
    echo "<!-- $SCHEME; wrk -t$THREADS -d$DURATION (warm-up $WARMUP) --latency; proxy workers $PROXY_WORKERS; mirror workers $MIRROR_WORKERS, cpu ${MIRROR_CPU:-any}, body ${BODY_BYTES:-description}; nginx affinity $NGINX_AFFINITY; CLK_TCK $CLK_TCK -->"
    echo
    echo "| target | conns | req/s | p50 | p99 | proxy CPU µs/req | proxy user / sys | proxy run-queue wait µs/req | mirror CPU µs/req | wrk CPU µs/req | non-2xx | socket errors | bg CPU | load1 |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"
    printf '%s\n' "${ROWS[@]}"
} | tee "$OUT"
log "table written to $OUT"
