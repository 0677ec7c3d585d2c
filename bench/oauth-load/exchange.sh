#!/usr/bin/env bash
# The token-exchange load test of docs/benchmarks.md (issue 13): `lanyard server` (SQLite,
# zero-config shape) serving, over HTTP/1.1 keep-alive on loopback,
#   - RFC 8693 delegation: an ES256 access token as the subject, an ES256 access token of
#     another client as the actor, answered with an ES256 access token carrying `act`;
#   - Txn-Token requests (draft-ietf-oauth-transaction-tokens-11) for the same subject;
# each request also authenticating its client with a fresh ES256 private_key_jwt assertion,
# driven by crates/lanyard/examples/oauth_load.rs (pre-signed assertions, one thread).
#
# Usage: bench/oauth-load/exchange.sh [CONNECTIONS...]   (default: 32)
# Env: D (seconds per run, default 10), N (assertions per run, default 150000).
# Prints one JSON line per run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
connections=("${@:-32}")
export D="${D:-10}" N="${N:-150000}"
WORK=$(mktemp -d /tmp/lanyard-exchange-load.XXXXXX)
echo "work directory: $WORK" >&2

[ -d "$here/node_modules/jose" ] || npm ci --prefix "$here" --no-audit --no-fund --loglevel=error
(cd "$root" && cargo build --release -q -p lanyard --bin lanyard --example oauth_load)
lanyard="$root/target/release/lanyard"
load="$root/target/release/examples/oauth_load"

cd "$WORK"
OUT=keys node "$here/keys.mjs"
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; }
trap cleanup EXIT
# shellcheck source=bench/oauth-load/lanyard-server.sh
. "$here/lanyard-server.sh"
start_lanyard_server
pid=$lanyard_pid
issuer=http://127.0.0.1:18080
socket=(--socket "$WORK/admin.sock")
jwks=(--jwks keys/client.pub.jwk.json)
# The user's front end (subject tokens for the agent), another workload (actor tokens),
# and the agent that exchanges them.
"$lanyard" client create portal "${socket[@]}" "${jwks[@]}" --scope read --audience https://agent.example.test >/dev/null
"$lanyard" client create actor "${socket[@]}" "${jwks[@]}" --scope read --audience "$issuer" >/dev/null
"$lanyard" client create bench-client "${socket[@]}" "${jwks[@]}" --scope read \
  --audience https://api.example.test --audience example.org \
  --grant-type urn:ietf:params:oauth:grant-type:token-exchange --exchange-delegate \
  --exchange-subject-type access_token --exchange-actor-type access_token \
  --exchange-subject-audience https://agent.example.test --txn-tokens >/dev/null
subject=$("$lanyard" oauth token --issuer "$issuer" --client-id portal --key keys/client.jwk.json --scope read --raw)
actor=$("$lanyard" oauth token --issuer "$issuer" --client-id actor --key keys/client.jwk.json --scope read --raw)
at=urn:ietf:params:oauth:token-type:access_token
for c in "${connections[@]}"; do
  "$load" --as "$issuer" --connections "$c" --seconds "$D" --assertions "$N" --key keys/client.jwk.json \
    --grant-type urn:ietf:params:oauth:grant-type:token-exchange \
    --param "subject_token=$subject" --param "subject_token_type=$at" \
    --param "actor_token=$actor" --param "actor_token_type=$at" \
    --param audience=https://api.example.test | sed 's/^{/{"request":"exchange (delegation, actor token)",/'
  "$load" --as "$issuer" --connections "$c" --seconds "$D" --assertions "$N" --key keys/client.jwk.json \
    --grant-type urn:ietf:params:oauth:grant-type:token-exchange --expect-typ txntoken+jwt \
    --param "subject_token=$subject" --param "subject_token_type=$at" \
    --param requested_token_type=urn:ietf:params:oauth:token-type:txn_token \
    --param audience=example.org --param 'request_context={"req_ip":"10.0.0.1"}' \
    | sed 's/^{/{"request":"Txn-Token",/'
done
