#!/usr/bin/env bash
# Symbol by symbol, what one route's profile costs more than another's: reads two outputs of
# profile-route.sh (run with a large TOP, e.g. TOP=400, so that every symbol is listed), turns
# each symbol's share into µs per request (share × that run's proxy CPU per request) and prints
# the kernel's total in each, then the symbols whose cost changed most.
#
#   OUT=/tmp/plain.txt TOP=400 loadtest/scripts/profile-route.sh plain
#   OUT=/tmp/v2.txt TOP=400 loadtest/scripts/profile-route.sh v2-info
#   loadtest/scripts/profile-diff.sh /tmp/plain.txt /tmp/v2.txt          # KERNEL=0: every symbol
#
# Environment: N=30 rows; KERNEL=1 keeps kernel symbols only ([k]).
set -euo pipefail
[[ $# -eq 2 ]] || { echo "usage: $0 BEFORE.txt AFTER.txt" >&2; exit 2; }
N=${N:-30}
KERNEL=${KERNEL:-1}
awk -v n="$N" -v konly="$KERNEL" '
    FNR == 1 { file++; match($0, /proxy CPU [0-9.]+/); us = substr($0, RSTART + 10, RLENGTH - 10) + 0; top = 0; next }
    /^## top/ { top = 1; next }
    top && /^ *[0-9.]+%/ {
        pct = $1; sub(/%/, "", pct)
        sym = $0; sub(/^ *[0-9.]+% +/, "", sym)
        if (konly && sym !~ /\[k\]/) next
        cost[file, sym] += pct * us / 100; seen[sym] = 1
        if (sym ~ /\[k\]/) kernel[file] += pct * us / 100
    }
    END {
        printf "kernel µs/request: %.2f -> %.2f\n", kernel[1], kernel[2]
        for (s in seen) printf "%+.3f %.3f %.3f %s\n", cost[2, s] - cost[1, s], cost[1, s], cost[2, s], s
    }
' "$1" "$2" | { read -r head; echo "$head"; echo "change before after symbol"; sort -gr | head -n "$N"; }
