#!/usr/bin/env bash
# Load test of the server middleware over real HTTP on 127.0.0.1: the same handler with
# WorkloadAuthLayer (WIT + WPT) on /auth/hello and without it on /open/hello, driven by wrk
# with pre-generated proofs (each WPT used once). Prints requests/s for both and the ratio.
#
#   scripts/loadtest.sh                       # 1 run: -t2 -c16 -d10s
#   RUNS=2 DURATION=10s CONNECTIONS=16 THREADS=2 COUNT=500000 scripts/loadtest.sh
#
# Each run starts a fresh server (which writes COUNT new WPTs), runs wrk against
# /auth/hello, then against /open/hello with the same settings and the same request
# headers, and stops the server. A run is flagged invalid (and the script exits 1) if wrk
# ran out of WPTs, or if any /auth request got a non-2xx status or a socket error (wrk's
# count), or if the server answered any 401 or other non-2xx on /auth during the wrk run
# (the server's own count, from GET /stats before and after).
# wrk and the server share the machine's cores; all traffic stays on 127.0.0.1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-16}"
THREADS="${THREADS:-2}"
COUNT="${COUNT:-500000}"
RUNS="${RUNS:-1}"
WORK="${WORK:-/tmp/lanyard-loadtest}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

if ! command -v wrk >/dev/null 2>&1; then
    echo "== installing wrk"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get install -y wrk >/dev/null 2>&1 || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y wrk >/dev/null; }
fi
command -v curl >/dev/null 2>&1 || { echo "curl is needed" >&2; exit 1; }

echo "== building the target (release)"
(cd "$ROOT" && cargo build --release -p lanyard-tower --example loadtest_target)
BIN="$CARGO_TARGET_DIR/release/examples/loadtest_target"
mkdir -p "$WORK"

SERVER_PID=""
stop_server() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID"
        wait "$SERVER_PID" || true
    fi
    SERVER_PID=""
}
trap stop_server EXIT

field() { # field <name> <RESULT line>
    sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" <<<"$2"
}

server_counts() { # server_counts <addr> <auth|open>: "2xx 401 other" as the server counted them
    curl -s "http://$1/stats" | sed -n "s/.*\"$2\":{\"2xx\":\([0-9]*\),\"401\":\([0-9]*\),\"other\":\([0-9]*\)}.*/\1 \2 \3/p"
}

status=0
for run in $(seq 1 "$RUNS"); do
    echo "== run $run/$RUNS: starting the server (generating $COUNT WPTs)"
    LOG="$WORK/server-$run.log"
    "$BIN" --headers "$WORK/headers.txt" --count "$COUNT" --port 0 >"$LOG" 2>&1 &
    SERVER_PID=$!
    ADDR=""
    for _ in $(seq 1 600); do
        ADDR="$(sed -n 's/^listening on //p' "$LOG")"
        [ -n "$ADDR" ] && break
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$LOG" >&2; exit 1; }
        sleep 0.2
    done
    [ -n "$ADDR" ] || { echo "the server did not start" >&2; cat "$LOG" >&2; exit 1; }
    cat "$LOG"
    # Sanity: /open answers, /auth refuses a request without credentials (not counted by
    # wrk; the server's own counts below include it).
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$ADDR/open/hello")" = 200 ]
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$ADDR/auth/hello")" = 401 ]

    declare -A R=() S=()
    for route in auth open; do
        echo "== run $run: wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency http://$ADDR/$route/hello"
        OUT="$WORK/wrk-$run-$route.txt"
        read -r ok0 unauth0 other0 <<<"$(server_counts "$ADDR" "$route")"
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency \
            -s "$ROOT/scripts/loadtest.lua" "http://$ADDR/$route/hello" \
            -- "$WORK/headers.txt" "$route" "$THREADS" | tee "$OUT"
        R[$route]="$(grep '^RESULT' "$OUT")"
        read -r ok1 unauth1 other1 <<<"$(server_counts "$ADDR" "$route")"
        S[$route]="$((ok1 - ok0)) $((unauth1 - unauth0)) $((other1 - other0))"
        echo "server-side responses on /$route during this wrk run (2xx 401 other): ${S[$route]}"
    done
    stop_server
    tail -n 1 "$LOG"

    a="${R[auth]}"
    o="${R[open]}"
    problems=()
    [ "$(field exhausted "$a")" = 0 ] || problems+=("wrk ran out of WPTs: raise COUNT")
    read -r _ auth_401 auth_other <<<"${S[auth]}"
    if [ "$(field non2xx "$a")" != 0 ] || [ "$(field socket_errors "$a")" != 0 ] \
        || [ "$auth_401" != 0 ] || [ "$auth_other" != 0 ]; then
        problems+=("failed /auth requests")
    fi
    valid=yes
    [ "${#problems[@]}" = 0 ] || valid="NO ($(IFS=';'; echo "${problems[*]}" | sed 's/;/; /g'))"
    [ "${#problems[@]}" = 0 ] || status=1
    ratio="$(awk -v a="$(field rps "$a")" -v o="$(field rps "$o")" 'BEGIN { printf "%.3f", a / o }')"
    echo
    echo "== run $run summary"
    printf '%-6s %12s %10s %9s %9s %8s %13s %18s\n' route "requests/s" requests "p50 µs" "p99 µs" non2xx \
        socket_errors "server 2xx/401/other"
    for route in auth open; do
        r="${R[$route]}"
        printf '%-6s %12s %10s %9s %9s %8s %13s %18s\n' "$route" "$(field rps "$r")" "$(field requests "$r")" \
            "$(field p50_us "$r")" "$(field p99_us "$r")" "$(field non2xx "$r")" "$(field socket_errors "$r")" \
            "$(tr ' ' / <<<"${S[$route]}")"
    done
    echo "auth/open throughput ratio: $ratio   WPTs used: $(field used "$a") of $COUNT   valid: $valid"
    echo
    unset R S
done
exit "$status"
