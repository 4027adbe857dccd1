#!/usr/bin/env bash
# Torii's upstream side under load: what a client sees when a backend dies, fails, hangs or is
# slow, and whether weights and health checks do what docs/upstreams.md says.
#
# Usage: upstream-reliability.sh [SCENARIO...]   (default: all, in this order)
#   kill     3 nginx backends, retries on; one backend SIGKILLed at KILL_AT. Client errors.
#   503      2 healthy backends + 1 answering 503 to everything (nginx `return 503`),
#            [routes.outlier_detection] consecutive_gateway_failure = 5. Client errors, and how
#            many requests the 503 backend received (its access log, and Torii's /metrics).
#   recover  the same 503 backend with [routes.health_check] (interval 1s, unhealthy_threshold 2,
#            healthy_threshold 1) and no outlier detection; the load starts once the check has
#            taken it out (torii_upstream_endpoint_up 0); at RESTART_AT it is replaced by a
#            healthy nginx on the same port. Time from the moment it answers again to its
#            first proxied request (its access log, $msec), and the probes in between.
#   weights  2 backends weighted 3:1, for round_robin, random and least_request: the split of
#            torii_upstream_endpoint_requests_total.
#   hung     2 nginx backends + 1 that accepts and reads but never answers (python3 asyncio),
#            per_try_timeout = "200ms"; without and with outlier detection. Client errors, p99.
#   lb       2 nginx backends + 1 python3 backend that waits SLOW_MS per request: round_robin
#            vs least_request, p50/p99 and req/s from wrk, and each backend's share.
#
# Every run: release torii (target/release/torii; the script builds nothing: build it first with
# `cargo build --release -p torii-engine`), WORKERS workers, an admin listener for /metrics,
# retries on (attempts = 3, on = connect-failure, reset, 502, 503, 504), idempotent GETs from
# `wrk -t$THREADS -c$CONNS -d$DURATION --latency`. Each backend nginx is its own process
# (master_process off, one process, so SIGKILL takes it down whole); only b3 writes an access log.
#
# Needs: wrk, nginx, python3, curl, ss. Only 127.0.0.1 is bound or contacted. Everything started
# here is stopped on exit (by PID); the scratch directory is removed unless KEEP_DIR=1.
#
# Environment (all optional):
#   DURATION=10s  CONNS=64  THREADS=2  WORKERS=2  KILL_AT=3  RESTART_AT=4  SLOW_MS=20
#   WEIGHTS_DURATION=5s  OUT=/tmp/upstream-reliability.md (markdown tables, also printed)
#   BUDGET_PERCENT=  [routes.retry] budget_percent for every run (default: unset, Torii's 50)
#   TORII=           the torii binary (default target/release/torii)

set -euo pipefail

DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
WORKERS=${WORKERS:-2}
KILL_AT=${KILL_AT:-3}
RESTART_AT=${RESTART_AT:-4}
SLOW_MS=${SLOW_MS:-20}
WEIGHTS_DURATION=${WEIGHTS_DURATION:-5s}
OUT=${OUT:-/tmp/upstream-reliability.md}
HOST_HEADER=up.test
SCENARIOS=("$@")
((${#SCENARIOS[@]})) || SCENARIOS=(kill 503 recover weights hung lb)

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TORII=${TORII:-"$ROOT/target/release/torii"}
WORK=$(mktemp -d /tmp/upstream-reliability.XXXXXX)
PIDS=()

log() { printf '[upstream-reliability] %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

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

for tool in wrk nginx python3 curl ss; do
    command -v "$tool" >/dev/null || [[ $tool == nginx && -x /usr/sbin/nginx ]] || die "$tool not found"
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x "$TORII" ]] || die "$TORII not found: cargo build --release -p torii-engine"

# Stops one process started here, by PID, and forgets it.
stop_pid() {
    local pid=$1 sig=${2:-TERM} keep=() p
    kill "-$sig" "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for p in "${PIDS[@]}"; do
        [[ $p == "$pid" ]] || keep+=("$p")
    done
    PIDS=("${keep[@]}")
}

stop_all() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
}

# A loopback port no TCP socket uses in any state, outside the ephemeral range (as in
# proxy-compare.sh: a TIME-WAIT client port cannot be bound).
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

# Waits (≤ 10 s) until something answers HTTP on 127.0.0.1:$1$2 (any status).
wait_http() {
    local port=$1 path=${2:-/} i
    for i in $(seq 1 200); do
        curl -s -o /dev/null -m 1 -H "Host: $HOST_HEADER" "http://127.0.0.1:$port$path" 2>/dev/null && return 0
        sleep 0.05
        : "$i"
    done
    die "nothing answers on 127.0.0.1:$port"
}

now_ms() { date +%s%3N; }

# start_nginx NAME PORT MODE: MODE ok (200 "ok\n" everywhere) or 503 (503 everywhere). One
# process; access log with $msec (ms since the epoch) and the path. Sets NGINX_PID.
start_nginx() {
    local name=$1 port=$2 mode=$3 dir="$WORK/$1" body
    mkdir -p "$dir"
    if [[ $mode == 503 ]]; then body='return 503 "down\n";'; else body='return 200 "ok\n";'; fi
    # Only b3 (the backend the scenarios break) logs, unbuffered, so that its count is exact
    # and the healthy backends spend nothing on logging.
    local access="access_log off;"
    [[ $name == b3 ]] && access="access_log $dir/access.log ts;"
    cat >"$dir/nginx.conf" <<EOF
master_process off;
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    log_format ts '\$msec \$status \$request_uri';
    $access
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$port;
        location / { default_type text/plain; $body }
    }
}
EOF
    "$NGINX" -c "$dir/nginx.conf" -p "$dir" >"$dir/stdout.log" 2>&1 &
    NGINX_PID=$!
    PIDS+=("$NGINX_PID")
    wait_http "$port" /started
}

# start_py NAME PORT MODE: MODE hung (accepts, reads, never answers) or slow (answers 200 "ok\n"
# after SLOW_MS ms, keep-alive). Sets PY_PID.
start_py() {
    local name=$1 port=$2 mode=$3
    cat >"$WORK/backend.py" <<'PY'
import asyncio, sys

PORT, MODE, DELAY = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]) / 1000.0
RESP = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\nok\n"

async def serve(reader, writer):
    buf = b""
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            if MODE == "hung":
                continue
            buf += data
            while b"\r\n\r\n" in buf:  # GETs without bodies only
                _, buf = buf.split(b"\r\n\r\n", 1)
                await asyncio.sleep(DELAY)
                writer.write(RESP)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()

async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", PORT, backlog=1024)
    async with server:
        await server.serve_forever()

asyncio.run(main())
PY
    python3 "$WORK/backend.py" "$port" "$mode" "$SLOW_MS" >"$WORK/$name.log" 2>&1 &
    PY_PID=$!
    PIDS+=("$PY_PID")
    local i
    for i in $(seq 1 100); do
        ss -Htln "sport = :$port" | grep -q . && return 0
        sleep 0.05
        : "$i"
    done
    die "$name did not listen on $port"
}

# start_torii NAME POLICY TARGETS_TOML EXTRA_TOML: sets PROXY_PORT, ADMIN_PORT, TORII_PID.
start_torii() {
    local name=$1 policy=$2 targets=$3 extra=$4
    PROXY_PORT=$(free_port)
    ADMIN_PORT=$(free_port)
    cat >"$WORK/$name.toml" <<EOF
[gateway]
workers = $WORKERS
http = ["127.0.0.1:$PROXY_PORT"]
admin = "127.0.0.1:$ADMIN_PORT"

[access_log]
path = "$WORK/$name.access.json"

[[routes]]
id = "up"
domains = ["$HOST_HEADER"]
targets = [$targets]
load_balancing = "$policy"

[routes.retry]
attempts = 3
on = ["connect-failure", "reset", "502", "503", "504"]
${BUDGET_PERCENT:+budget_percent = $BUDGET_PERCENT}
$extra
EOF
    TORII_LOG=warn "$TORII" run --config "$WORK/$name.toml" >"$WORK/$name.log" 2>&1 &
    TORII_PID=$!
    PIDS+=("$TORII_PID")
    wait_http "$PROXY_PORT"
    wait_http "$ADMIN_PORT" /ready
}

# metric NAME PORT: value of torii_upstream_endpoint_requests_total for endpoint 127.0.0.1:PORT.
endpoint_requests() {
    curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" |
        awk -v ep="endpoint=\"127.0.0.1:$1\"" '/^torii_upstream_endpoint_requests_total/ && index($0, ep) { print $2 }'
}
endpoint_up() {
    curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" |
        awk -v ep="endpoint=\"127.0.0.1:$1\"" '/^torii_upstream_endpoint_up/ && index($0, ep) { print $2 }'
}
metric_sum() {
    curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" | awk -v m="$1" 'index($0, m) == 1 { s += $2 } END { print s + 0 }'
}

# run_wrk NAME [DURATION]: writes $WORK/NAME.wrk; sets W_REQS W_RPS W_P50 W_P99 W_MAX W_NON2XX W_SOCK.
run_wrk() {
    wrk -t"$THREADS" -c"$CONNS" -d"${2:-$DURATION}" --latency -H "Host: $HOST_HEADER" \
        "http://127.0.0.1:$PROXY_PORT/" >"$WORK/$1.wrk" 2>&1
    parse_wrk "$WORK/$1.wrk"
}

# start_wrk NAME: run_wrk in the background, wrk itself being the process (so that the exit trap
# stops it); finish_wrk waits for it and parses its output.
start_wrk() {
    wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -H "Host: $HOST_HEADER" \
        "http://127.0.0.1:$PROXY_PORT/" >"$WORK/$1.wrk" 2>&1 &
    WRK_PID=$!
    PIDS+=("$WRK_PID")
}
finish_wrk() {
    local keep=() p
    wait "$WRK_PID"
    for p in "${PIDS[@]}"; do
        [[ $p == "$WRK_PID" ]] || keep+=("$p")
    done
    PIDS=("${keep[@]}")
    parse_wrk "$WORK/$1.wrk"
}

# Latencies in ms, whatever unit wrk printed.
to_ms() { awk -v v="$1" 'BEGIN { u = v; sub(/^[0-9.]+/, "", u); n = v + 0;
    if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000;
    printf "%.2f", n }'; }

parse_wrk() {
    local f=$1
    W_REQS=$(awk '/requests in/ { print $1 }' "$f")
    W_RPS=$(awk '/^Requests\/sec/ { printf "%.0f", $2 }' "$f")
    W_P50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$f")")
    W_P99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$f")")
    W_MAX=$(to_ms "$(awk '$1 == "Latency" { print $4; exit }' "$f")")
    W_NON2XX=$(awk '/Non-2xx/ { print $NF }' "$f")
    W_NON2XX=${W_NON2XX:-0}
    W_SOCK=$(awk '/Socket errors/ { gsub(",", ""); print $4 + $6 + $8 + $10 }' "$f")
    W_SOCK=${W_SOCK:-0}
}

RESULTS=()
# row TEXT: records a table row; the statuses other than 200 in the last torii's access log (and
# the tries each took) are logged, so a failure the client saw can be explained.
row() {
    RESULTS+=("$1")
    log "$1"
    local f
    f=$(ls -t "$WORK"/*.access.json 2>/dev/null | head -1)
    [[ -n "$f" ]] || return 0
    log "  non-200 answers in torii's access log: $(grep -vc '"status":200' "$f" || true); the first five:"
    awk '!/"status":200/ { if (n++ < 5) print "[upstream-reliability]   " $0 }' "$f" >&2
}

three_ok() {
    P1=$(free_port) P2=$(free_port) P3=$(free_port)
    start_nginx b1 "$P1" ok
    start_nginx b2 "$P2" ok
}

scenario_kill() {
    three_ok
    start_nginx b3 "$P3" ok
    local victim=$NGINX_PID
    start_torii kill round_robin "\"http://127.0.0.1:$P1\", \"http://127.0.0.1:$P2\", \"http://127.0.0.1:$P3\"" ""
    start_wrk kill
    sleep "$KILL_AT"
    stop_pid "$victim" KILL
    local killed_at=$(($(endpoint_requests "$P3")))
    finish_wrk kill
    row "| kill | b3 SIGKILLed at ${KILL_AT} s | $W_REQS | $W_RPS | $W_NON2XX | $W_SOCK | $W_P99 ms | retries: $(metric_sum 'torii_upstream_retries_total'); b3 tries: $killed_at at the kill, $(endpoint_requests "$P3") at the end |"
    stop_all
}

scenario_503() {
    three_ok
    start_nginx b3 "$P3" 503
    start_torii 503 round_robin "\"http://127.0.0.1:$P1\", \"http://127.0.0.1:$P2\", \"http://127.0.0.1:$P3\"" \
        "$(printf '\n[routes.outlier_detection]\nconsecutive_gateway_failure = 5\n')"
    run_wrk 503
    sleep 0.3
    local logged
    logged=$(grep -c ' 503 /' "$WORK/b3/access.log" || true)
    row "| 503 | b3 answers 503, ejection after 5 | $W_REQS | $W_RPS | $W_NON2XX | $W_SOCK | $W_P99 ms | b3 received $logged (access log), $(endpoint_requests "$P3") (metrics); ejections $(metric_sum 'torii_upstream_ejections_total'); retries $(metric_sum 'torii_upstream_retries_total') |"
    stop_all
}

scenario_recover() {
    three_ok
    start_nginx b3 "$P3" 503
    local bad=$NGINX_PID
    start_torii recover round_robin "\"http://127.0.0.1:$P1\", \"http://127.0.0.1:$P2\", \"http://127.0.0.1:$P3\"" \
        "$(printf '\n[routes.health_check]\npath = "/health"\ninterval = "1s"\ntimeout = "500ms"\nunhealthy_threshold = 2\nhealthy_threshold = 1\n')"
    # The health check takes b3 out first (2 bad probes, ~2 s): what is measured is its return.
    local i t0
    t0=$(now_ms)
    for i in $(seq 1 100); do
        [[ "$(endpoint_up "$P3")" == 0 ]] && break
        sleep 0.1
        : "$i"
    done
    [[ "$(endpoint_up "$P3")" == 0 ]] || die "the health check did not take b3 out"
    log "b3 found unhealthy $(($(now_ms) - t0)) ms after torii was ready"
    start_wrk recover
    sleep "$RESTART_AT"
    local before
    before=$(endpoint_requests "$P3")
    stop_pid "$bad" KILL
    mv "$WORK/b3" "$WORK/b3-503"
    start_nginx b3 "$P3" ok
    local up_ms
    up_ms=$(now_ms)
    finish_wrk recover
    sleep 0.3
    local first probe
    first=$(awk '$3 == "/" { printf "%.0f\n", $1 * 1000; exit }' "$WORK/b3/access.log")
    probe=$(awk '$3 == "/health" { printf "%s%.0f", sep, $1 * 1000 - up; sep = ", " }' up="$up_ms" "$WORK/b3/access.log")
    local gap="never"
    [[ -n "$first" ]] && gap="$((first - up_ms)) ms"
    row "| recover | b3 503 until ${RESTART_AT} s, then healthy; health check 1 s | $W_REQS | $W_RPS | $W_NON2XX | $W_SOCK | $W_P99 ms | restart → first request $gap (probes at +$probe ms); b3 tries while 503: $before; after: $(grep -c ' 200 /$' "$WORK/b3/access.log" || true); retries $(metric_sum 'torii_upstream_retries_total') |"
    stop_all
}

scenario_weights() {
    local policy a b total
    for policy in round_robin random least_request; do
        P1=$(free_port) P2=$(free_port)
        start_nginx b1 "$P1" ok
        start_nginx b2 "$P2" ok
        start_torii "weights-$policy" "$policy" "{ url = \"http://127.0.0.1:$P1\", weight = 3 }, { url = \"http://127.0.0.1:$P2\", weight = 1 }" ""
        run_wrk "weights-$policy" "$WEIGHTS_DURATION"
        a=$(endpoint_requests "$P1")
        b=$(endpoint_requests "$P2")
        total=$((a + b))
        row "| weights 3:1 | $policy | $W_REQS | $W_RPS | $W_NON2XX | $W_SOCK | $W_P99 ms | weight 3: $a, weight 1: $b; share of weight 3 $(awk -v a="$a" -v t="$total" 'BEGIN { printf "%.2f %%", 100 * a / t }') (expected 75 %) |"
        stop_all
    done
}

scenario_hung() {
    local od
    for od in off on; do
        three_ok
        start_py b3 "$P3" hung
        local extra
        extra=$(printf 'per_try_timeout = "200ms"\n')
        [[ $od == on ]] && extra+=$(printf '\n\n[routes.outlier_detection]\nconsecutive_gateway_failure = 5\n')
        start_torii "hung-$od" round_robin "\"http://127.0.0.1:$P1\", \"http://127.0.0.1:$P2\", \"http://127.0.0.1:$P3\"" "$extra"
        run_wrk "hung-$od"
        row "| hung | b3 never answers, per_try_timeout 200 ms, outlier detection $od | $W_REQS | $W_RPS | $W_NON2XX | $W_SOCK | $W_P99 ms | p50 $W_P50 ms, max $W_MAX ms; b3 tries $(endpoint_requests "$P3"); retries $(metric_sum 'torii_upstream_retries_total') |"
        stop_all
    done
}

scenario_lb() {
    local policy a b c
    for policy in round_robin least_request; do
        three_ok
        start_py b3 "$P3" slow
        start_torii "lb-$policy" "$policy" "\"http://127.0.0.1:$P1\", \"http://127.0.0.1:$P2\", \"http://127.0.0.1:$P3\"" ""
        run_wrk "lb-$policy"
        a=$(endpoint_requests "$P1")
        b=$(endpoint_requests "$P2")
        c=$(endpoint_requests "$P3")
        row "| slow backend (${SLOW_MS} ms) | $policy | $W_REQS | $W_RPS | $W_NON2XX | $W_SOCK | $W_P99 ms | p50 $W_P50 ms; slow backend's share $(awk -v a="$a" -v b="$b" -v c="$c" 'BEGIN { printf "%.1f %%", 100 * c / (a + b + c) }') ($c of $((a + b + c))) |"
        stop_all
    done
}

log "torii $("$TORII" --version 2>/dev/null || echo '?'), $("$NGINX" -v 2>&1), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), load: $(cut -d' ' -f1-3 /proc/loadavg)"
for s in "${SCENARIOS[@]}"; do
    case $s in
        kill | 503 | recover | weights | hung | lb) "scenario_$s" ;;
        *) die "unknown scenario $s (kill, 503, recover, weights, hung, lb)" ;;
    esac
done

{
    echo "| scenario | condition | requests | req/s | non-2xx | socket errors | p99 | upstream side |"
    echo "|---|---|---:|---:|---:|---:|---:|---|"
    printf '%s\n' "${RESULTS[@]}"
} | tee "$OUT"
