#!/usr/bin/env bash
# Measures `lanyard agent` against a real `lanyard server` (release builds, loopback):
#   1. entry sync: time for a restarted agent to receive N entries (default 10,000) and to
#      hold an X.509-SVID for each;
#   2. idle RSS of the agent with 1,000 local entries (goal < 20 MiB);
#   3. FetchJWTSVID from a warm cache: throughput and p50/p99 with 1, 4 and 16 concurrent
#      clients (goal: p99 < 1 ms, >= 10,000 fetches/s);
#   3b. the same with a new audience per request: every JWT-SVID is minted by the server
#      through the agent API (gRPC over mTLS), i.e. server minting throughput end to end;
#   4. `lanyard entry create` -> the workload's open FetchX509SVID stream carrying the new
#      SVID, 50 rounds (goal < 1 s).
# The load generator is crates/lanyard-agent/examples/workload_load.rs.
#
# Usage: scripts/agent-bench.sh [entries]   (honours CARGO_TARGET_DIR; Linux only)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
big=${1:-10000}

cargo build --release --locked -p lanyard --bin lanyard -p lanyard-agent --example workload_load >&2
target=${CARGO_TARGET_DIR:-$root/target}
bin="$target/release/lanyard"
load="$target/release/examples/workload_load"

work=$(mktemp -d)
server_pid=""
agent_pid=""
cleanup() {
    for p in $agent_pid $server_pid; do
        kill -INT "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

field() { # field <file> <awk program>
    for _ in $(seq 1 300); do
        v=$(awk "$2" "$1" 2>/dev/null || true)
        [[ -n "$v" ]] && { echo "$v"; return; }
        sleep 0.1
    done
    echo "timed out reading $1" >&2
    exit 1
}
status_json() { curl -s --max-time 2 "$health/status"; }
json_num() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
rss_kb() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$agent_pid/status"; }
entries_json() { # entries_json <count> <first index> <parent>
    awk -v n="$1" -v first="$2" -v parent="$3" 'BEGIN {
        printf "["
        for (i = first; i < first + n; i++) {
            printf "%s{\"spiffe_id\":\"spiffe://example.org/bench/w%d\",\"parent_id\":\"%s\",", (i > first ? "," : ""), i, parent
            printf "\"selectors\":[{\"type\":\"unix\",\"value\":\"uid:%d\"}]}", 100000 + i
        }
        printf "]\n"
    }'
}
wait_for_svids() { # wait_for_svids <count>: prints seconds until the agent holds <count> SVIDs
    local start now n
    start=$(date +%s.%N)
    for _ in $(seq 1 1200); do
        n=$(status_json | json_num x509_svids)
        if [[ -n "$n" && "$n" -ge "$1" ]]; then
            now=$(date +%s.%N)
            awk -v a="$start" -v b="$now" 'BEGIN { printf "%.2f", b - a }'
            return
        fi
        sleep 0.05
    done
    echo "agent never held $1 SVIDs" >&2
    exit 1
}

cd "$work"
LANYARD_PUBLIC_ADDRESS=127.0.0.1:0 LANYARD_AGENT_ADDRESS=127.0.0.1:0 LANYARD_LOG=warn LANYARD_DATA_DIR="$work/server" \
    "$bin" server >"$work/server.txt" 2>"$work/server.log" &
server_pid=$!
url=$(field "$work/server.txt" '$1 == "public" && $2 == "endpoint" { print $3 }')
agent_cmd=$(field "$work/server.txt" '$1 == "lanyard" && $2 == "agent" { $1 = ""; $2 = ""; print }')
export LANYARD_ADMIN_SOCKET="$work/server/admin.sock"
curl -s "$url/bundle" >bundle.json

start_agent() {
    # shellcheck disable=SC2086
    LANYARD_AGENT_LOG=warn "$bin" agent $agent_cmd --data-dir "$work/agent" --socket "$work/public/api.sock" \
        --health-address 127.0.0.1:0 >"$work/agent.txt" 2>>"$work/agent.log" &
    agent_pid=$!
    health=$(field "$work/agent.txt" '$1 == "health" { sub("/readyz", "", $2); print $2 }')
    agent_id=$(field "$work/agent.txt" '$1 == "agent" && $2 == "ID" { print $3 }')
}
start_agent
uid=$(id -u)
"$bin" entry create --spiffe-id spiffe://example.org/bench/client --parent-id "$agent_id" \
    --selector "unix:uid:$uid" >/dev/null

echo "== 1,000 entries: idle memory"
entries_json 999 0 "$agent_id" >e1.json
"$bin" entry create --file e1.json >/dev/null
t=$(wait_for_svids 1000)
sleep 5
echo "agent holds 1,000 SVIDs ${t}s after the batch; idle RSS $(rss_kb) kB"

echo "== FetchJWTSVID (warm cache)"
for c in 1 4 16; do "$load" jwt "$work/public/api.sock" bench "$c" 5; done
echo "== FetchJWTSVID, a new audience each time (minted by the server through the agent API)"
for c in 1 4; do "$load" jwt-mint "$work/public/api.sock" "$c" 5; done

echo "== entry create -> open FetchX509SVID stream"
"$load" propagation "$work/public/api.sock" "$bin" "$LANYARD_ADMIN_SOCKET" "$agent_id" "unix:uid:$uid" 50

echo "== $big entries: a restarted agent receives them and mints an SVID for each"
# In batches of 1,000 (the admin API limits request bodies).
left=$((big - 1050)); next=1000
while [[ "$left" -gt 0 ]]; do
    n=$((left < 1000 ? left : 1000))
    entries_json "$n" "$next" "$agent_id" >e2.json
    "$bin" entry create --file e2.json >/dev/null
    left=$((left - n)); next=$((next + n))
done
kill -INT "$agent_pid"; wait "$agent_pid" || true
agent_cmd=$(echo "$agent_cmd" | sed "s/--join-token [^ ]*//")
start_agent
t=$(wait_for_svids "$big")
sleep 2
echo "restarted agent: $(status_json | json_num entries) entries, $big SVIDs held ${t}s after start; RSS $(rss_kb) kB"
