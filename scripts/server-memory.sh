#!/usr/bin/env bash
# Resident memory of `lanyard server`: idle, and after 1,000 registration entries.
#
# Builds `lanyard` in release mode, starts `lanyard server` on a fresh temporary data
# directory (public endpoints on 127.0.0.1, port picked by the OS), waits until /readyz
# answers 200, lets it idle for 5 s and reads VmRSS from /proc/<pid>/status; then creates
# 1,000 entries in one batch (`lanyard entry create --file`), waits 1 s and reads VmRSS
# again (and VmHWM, the peak); finally stops the server with SIGINT. Goal: idle RSS under
# 40 MiB (40,960 kB).
#
# Usage: scripts/server-memory.sh        (honours CARGO_TARGET_DIR; Linux only)
#        LANYARD_MEMORY_SKIP_BUILD=1 scripts/server-memory.sh   to reuse the last build
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

goal_kb=$((40 * 1024))
entries=1000
idle_seconds=5

if [[ -z "${LANYARD_MEMORY_SKIP_BUILD:-}" ]]; then
    cargo build --release --locked -p lanyard --bin lanyard >&2
fi
target=${CARGO_TARGET_DIR:-$root/target}
bin="$target/release/lanyard"
[[ -x "$bin" ]] || { echo "no binary at $bin" >&2; exit 1; }

work=$(mktemp -d)
pid=""
cleanup() {
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# Reads one field (in kB) of /proc/<pid>/status.
status_kb() {
    awk -v k="$1:" '$1 == k { print $2 }' "/proc/$pid/status"
}

# kB → MiB with one decimal.
mib() {
    awk -v kb="$1" 'BEGIN { printf "%.1f", kb / 1024 }'
}

# `GET <url>` → HTTP status code (000 when nothing answers).
http_status() {
    curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" || true
}

cd "$work"
LANYARD_PUBLIC_ADDRESS=127.0.0.1:0 LANYARD_AGENT_ADDRESS=127.0.0.1:0 LANYARD_LOG=warn LANYARD_DATA_DIR="$work/lanyard-data" \
    "$bin" server >"$work/banner.txt" 2>"$work/server.log" &
pid=$!

# The banner names the public endpoint once the server listens.
url=""
for _ in $(seq 1 300); do
    url=$(awk '$1 == "public" && $2 == "endpoint" { print $3 }' "$work/banner.txt")
    [[ -n "$url" ]] && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/server.log" >&2; echo "server exited" >&2; exit 1; }
    sleep 0.1
done
[[ -n "$url" ]] || { echo "no banner after 30 s" >&2; exit 1; }
for _ in $(seq 1 100); do
    [[ $(http_status "$url/readyz") == 200 ]] && break
    sleep 0.1
done
[[ $(http_status "$url/readyz") == 200 ]] || { echo "$url/readyz never became ready" >&2; exit 1; }

sleep "$idle_seconds"
idle_kb=$(status_kb VmRSS)
threads=$(awk '$1 == "Threads:" { print $2 }' "/proc/$pid/status")

# One batch of entries (all or nothing), like `lanyard entry create --file`.
awk -v n="$entries" 'BEGIN {
    printf "["
    for (i = 0; i < n; i++) {
        printf "%s{\"spiffe_id\":\"spiffe://example.org/mem/w%d\",\"parent_id\":\"spiffe://example.org/agent/n%d\",", (i ? "," : ""), i, i % 10
        printf "\"selectors\":[{\"type\":\"unix\",\"value\":\"uid:%d\"},{\"type\":\"unix\",\"value\":\"path:/usr/bin/w%d\"}]}", 1000 + i, i
    }
    printf "]\n"
}' >"$work/entries.json"
export LANYARD_ADMIN_SOCKET="$work/lanyard-data/admin.sock"
"$bin" entry create --file "$work/entries.json" >/dev/null
stored=$("$bin" entry list | grep -c '"revision"')
[[ "$stored" -eq "$entries" ]] || { echo "expected $entries entries, the server lists $stored" >&2; exit 1; }
sleep 1
loaded_kb=$(status_kb VmRSS)
peak_kb=$(status_kb VmHWM)

kill -INT "$pid"
status=0
wait "$pid" || status=$?
pid=""

verdict=$([[ "$idle_kb" -lt "$goal_kb" ]] && echo PASS || echo FAIL)
printf 'lanyard server RSS (%s, %s threads)\n' "$bin" "$threads"
printf '  idle after %ss:                %6d kB (%5s MiB)   goal < %d kB: %s\n' \
    "$idle_seconds" "$idle_kb" "$(mib "$idle_kb")" "$goal_kb" "$verdict"
printf '  after %d entries (one batch): %6d kB (%5s MiB)\n' \
    "$entries" "$loaded_kb" "$(mib "$loaded_kb")"
printf '  peak (VmHWM):                  %6d kB (%5s MiB)\n' "$peak_kb" "$(mib "$peak_kb")"
printf '  stopped with SIGINT: exit status %d\n' "$status"
[[ "$status" -eq 0 ]]
