#!/usr/bin/env bash
# The SVID client-authentication load tests of docs/benchmarks.md (issue 12, "Also record
# jwt-spiffe and mutual-TLS client authentication"): `lanyard server` (SQLite, zero-config
# shape, release build) and a real `lanyard agent` attested with a join token; one
# registration entry gives this user's processes a SPIFFE ID, and one OAuth client is
# registered for that ID (its default methods: spiffe_jwt and spiffe_x509). crates/lanyard/examples/oauth_load.rs
# (one thread, HTTP/1.1 keep-alive, loopback) then runs client_credentials:
#   - jwt-spiffe: the agent's JWT-SVID for the issuer as the client assertion, the same on
#     every request (agents reuse JWT-SVIDs): one verification with the trust bundle and
#     one signature per request, no jti recorded;
#   - mutual TLS (spiffe_x509: tls_client_auth with the X.509-SVID): the certificate is verified once per
#     connection by the TLS handshake; per request one signature and the token bound to
#     the certificate (cnf.x5t#S256). The TLS record work is on every request.
# Then the signature ceiling of the machine in the same run (es256_ceiling).
#
# Usage: bench/oauth-load/svid-auth.sh [CONNECTIONS...]   (default: 32)
# Env: D (seconds per run, default 10), N (requests prepared per run, default 150000).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
connections=("${@:-32}")
export D="${D:-10}" N="${N:-150000}"
WORK=$(mktemp -d /tmp/lanyard-svid-load.XXXXXX)
chmod 755 "$WORK" # the agent's socket directory must be reachable
echo "work directory: $WORK" >&2

(cd "$root" && cargo build --release -q -p lanyard --bin lanyard --example oauth_load && cargo build --release -q -p lanyard-crypto --example es256_ceiling)
lanyard="$root/target/release/lanyard"
load="$root/target/release/examples/oauth_load"

cd "$WORK"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
# shellcheck source=bench/oauth-load/lanyard-server.sh
. "$here/lanyard-server.sh"
start_lanyard_server
pids+=("$lanyard_pid")
issuer=http://127.0.0.1:18080
td=example.org
admin=(--socket "$WORK/admin.sock")

# The agent, attested with a one-time join token (its ID is derived from the token).
token=$("$lanyard" token join "${admin[@]}")
agent_id="spiffe://$td/lanyard/agent/join_token/$(printf %s "$token" | sha256sum | cut -c1-16)"
curl -fs "$issuer/bundle" >bundle.json
"$lanyard" agent --join-token "$token" --trust-bundle bundle.json --server 127.0.0.1:18081 \
  --trust-domain "$td" --socket "$WORK/agent/api.sock" --data-dir "$WORK/agent-data" \
  --health-address 127.0.0.1:18082 >"$WORK/agent.log" 2>&1 &
pids+=($!)
export SPIFFE_ENDPOINT_SOCKET="unix://$WORK/agent/api.sock"

workload="spiffe://$td/bench-client"
"$lanyard" entry create "${admin[@]}" --spiffe-id "$workload" --parent-id "$agent_id" \
  --selector "unix:uid:$(id -u)" >/dev/null
"$lanyard" client create bench-client "${admin[@]}" --spiffe-id "$workload" \
  --scope read --scope write --audience https://api.example.test --access-token-ttl 300 >/dev/null
# Wait until the agent serves the workload its SVID.
for _ in $(seq 1 100); do
  "$lanyard" workload fetch x509 >/dev/null 2>&1 && break
  sleep 0.2
done
"$lanyard" workload fetch x509 >/dev/null

common=(--as "$issuer" --seconds "$D" --assertions "$N")
for c in "${connections[@]}"; do
  "$load" "${common[@]}" --connections "$c" --auth jwt-svid | sed 's/^{/{"request":"client_credentials, jwt-spiffe",/'
  "$load" "${common[@]}" --connections "$c" --auth x509-svid | sed 's/^{/{"request":"client_credentials, mutual TLS",/'
done
"$root/target/release/examples/es256_ceiling" 2 10 | sed 's/^{/{"request":"ceiling (ES256 verify+sign, 2 threads)",/'
