#!/usr/bin/env bash
# The token-exchange load test of docs/benchmarks.md (issue 13): `lanyard server` (SQLite,
# zero-config shape) serving, over HTTP/1.1 keep-alive on loopback,
#   - RFC 8693 delegation: an ES256 access token as the subject, an ES256 access token of
#     another client as the actor, answered with an ES256 access token carrying `act`;
#   - Txn-Token requests (draft-ietf-oauth-transaction-tokens-11) for the same subject;
#   - JWT-bearer redemption (RFC 7523 §2.1) of identity-chaining authorization grants
#     (draft-ietf-oauth-identity-chaining-17), as the foreign server: the generator signs
#     the grants as a home server whose JWK Set a static file server on 127.0.0.1:18090
#     publishes (the grant's verification and single use are what this server does; the
#     home server's issuance is measured by the exchange runs), answered with an ES256
#     access token;
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
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
# The home server of identity chaining: its JWK Set (the peer-as key) as a static file.
home=http://127.0.0.1:18090
mkdir -p home && node -e 'const fs=require("fs");fs.writeFileSync("home/jwks.json",JSON.stringify({keys:[JSON.parse(fs.readFileSync("keys/peer-as.pub.jwk.json"))]}))'
python3 -m http.server 18090 --bind 127.0.0.1 --directory home >"$WORK/home.log" 2>&1 &
pids+=($!)
cat >"$WORK/server-extra.toml" <<TOML

[[oauth.chaining_home_servers]]
issuer = "$home"
jwks_uri = "$home/jwks.json"
TOML
# shellcheck source=bench/oauth-load/lanyard-server.sh
. "$here/lanyard-server.sh"
start_lanyard_server
pids+=("$lanyard_pid")
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
"$lanyard" client create redeemer "${socket[@]}" "${jwks[@]}" --scope read --audience https://api.example.test \
  --grant-type urn:ietf:params:oauth:grant-type:jwt-bearer >/dev/null
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
  "$load" --as "$issuer" --connections "$c" --seconds "$D" --assertions "$N" --key keys/client.jwk.json \
    --client-id redeemer --grant-type urn:ietf:params:oauth:grant-type:jwt-bearer \
    --grant-key keys/peer-as.jwk.json --grant-issuer "$home" \
    | sed 's/^{/{"request":"JWT-bearer redemption (identity chaining)",/'
done
