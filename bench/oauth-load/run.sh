#!/usr/bin/env bash
# The token-endpoint load test of docs/benchmarks.md ("OAuth authorization server"):
# Lanyard's `lanyard server` (SQLite, its zero-config default) and panva oidc-provider 9.x,
# each serving client_credentials with an ES256 private_key_jwt assertion and answering an
# ES256 at+jwt, driven in turn by the same generator at each connection count; then the
# signature ceiling of this machine (es256_ceiling: one ES256 verify + one ES256 sign per
# pair, on 2 threads). The generator pre-signs its assertions: GEN=rust (the default) is
# crates/lanyard/examples/oauth_load.rs, one thread writing HTTP/1.1 directly and looking at
# its connections every TICK_US microseconds (default 500; 0: woken by each answer); GEN=autocannon
# is load.mjs (Node autocannon), which needs about a core of its own on this 2-core machine.
# Each line also gives the server's CPU during the run (server_cores, and
# server_cpu_us_per_request), read from /proc.
#
# Usage: bench/oauth-load/run.sh [CONNECTIONS...]   (default: 32 64)
# Env: D (seconds per run, default 15; the Rust generator first loads each server for a
#      second it does not count), N (assertions per run, default 260000),
#      GEN (rust or autocannon), TICK_US (the Rust generator's tick, default 500).
# Prints one JSON line per run and leaves the logs in $WORK (printed first).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
connections=("${@:-32 64}")
# shellcheck disable=SC2206
connections=(${connections[*]})
export D="${D:-15}" N="${N:-260000}" GEN="${GEN:-rust}"
WORK=$(mktemp -d /tmp/lanyard-oauth-load.XXXXXX)
echo "work directory: $WORK" >&2

[ -d "$here/node_modules/oidc-provider" ] || npm ci --prefix "$here" --no-audit --no-fund --loglevel=error
(cd "$root" && cargo build --release -q -p lanyard --bin lanyard --example oauth_load && cargo build --release -q -p lanyard-crypto --example es256_ceiling)
lanyard="$root/target/release/lanyard"

cd "$WORK"
OUT=keys node "$here/keys.mjs"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

wait_for() { for _ in $(seq 1 100); do curl -fs -o /dev/null "$1" && return 0; sleep 0.2; done; echo "no answer from $1" >&2; return 1; }

# Lanyard: its zero-config start in a fresh data directory, the client registered through
# the admin socket with the same public key and the same scope and audience as the peer.
# shellcheck source=bench/oauth-load/lanyard-server.sh
. "$here/lanyard-server.sh"
start_lanyard_server
pids+=("$lanyard_pid")
"$lanyard" client create bench-client --socket "$WORK/admin.sock" --jwks keys/client.pub.jwk.json \
  --scope read --scope write --audience https://api.example.test --access-token-ttl 300 >/dev/null

PORT=3000 KEYS=keys node "$here/peer-as.mjs" >"$WORK/peer.log" 2>&1 &
pids+=($!)
wait_for http://127.0.0.1:3000/.well-known/oauth-authorization-server

load() { # AS_URL CONNECTIONS
  if [ "$GEN" = autocannon ]; then
    AS="$1" C="$2" KEYS=keys node "$here/load.mjs"
  else
    "$root/target/release/examples/oauth_load" --as "$1" --connections "$2" --seconds "$D" \
      --assertions "$N" --key keys/client.jwk.json --tick-us "${TICK_US:-500}"
  fi
}
# The server's CPU time during a run (utime + stime from /proc, in clock ticks): divided
# by the loaded seconds (the warm-up second and D; the server idles while the generator
# signs its assertions first), the cores the server used, and per request its CPU cost.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
measure() { # NAME PID AS_URL CONNECTIONS
  local before after
  before=$(cpu_ticks "$2")
  line=$(load "$3" "$4")
  after=$(cpu_ticks "$2")
  # autocannon has no warm-up second.
  local loaded=$((D + 1)); [ "$GEN" = autocannon ] && loaded=$D
  NAME="$1" TICKS=$((after - before)) HZ=$(getconf CLK_TCK) LOADED=$loaded LINE="$line" python3 -c '
import json, os
r = {"server": os.environ["NAME"], **json.loads(os.environ["LINE"])}
cores = int(os.environ["TICKS"]) / int(os.environ["HZ"]) / int(os.environ["LOADED"])
r["server_cores"] = round(cores, 2)
if r["requests_per_second"]:
    r["server_cpu_us_per_request"] = round(cores / r["requests_per_second"] * 1e6, 1)
print(json.dumps(r))'
}
for c in "${connections[@]}"; do
  measure lanyard "${pids[0]}" http://127.0.0.1:18080 "$c"
  measure oidc-provider "${pids[1]}" http://127.0.0.1:3000 "$c"
done
"$root/target/release/examples/es256_ceiling" 2 10 | sed 's/^{/{"server":"ceiling (ES256 verify+sign, 2 threads)",/'
echo "memory: lanyard server RSS $(ps -o rss= -p "${pids[0]}") KiB" >&2
