#!/usr/bin/env bash
# The other token-endpoint load tests of docs/benchmarks.md (issue 12, "Also record"):
# `lanyard server` (SQLite, zero-config shape, release build), every request with a fresh
# pre-signed ES256 private_key_jwt assertion, driven by crates/lanyard/examples/oauth_load.rs
# (one thread, HTTP/1.1 keep-alive, loopback):
#   - DPoP-bound issuance: client_credentials with a pre-signed ES256 DPoP proof carrying
#     the server's nonce (RFC 9449; the server requires nonces by default), answered with
#     a DPoP-bound ES256 at+jwt (`cnf.jkt`): two verifications and one signature;
#   - introspection (RFC 7662) of an ES256 access token by an authenticated client: two
#     verifications, no signature.
# Then the signature ceiling of the machine in the same run (es256_ceiling).
#
# Usage: bench/oauth-load/variants.sh [CONNECTIONS...]   (default: 32)
# Env: D (seconds per run, default 10), N (requests prepared per run, default 120000).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
connections=("${@:-32}")
export D="${D:-10}" N="${N:-120000}"
WORK=$(mktemp -d /tmp/lanyard-variants-load.XXXXXX)
echo "work directory: $WORK" >&2

[ -d "$here/node_modules/jose" ] || npm ci --prefix "$here" --no-audit --no-fund --loglevel=error
(cd "$root" && cargo build --release -q -p lanyard --bin lanyard --example oauth_load && cargo build --release -q -p lanyard-crypto --example es256_ceiling)
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
"$lanyard" client create bench-client --socket "$WORK/admin.sock" --jwks keys/client.pub.jwk.json \
  --scope read --scope write --audience https://api.example.test --access-token-ttl 300 >/dev/null
token=$("$lanyard" oauth token --issuer "$issuer" --client-id bench-client --key keys/client.jwk.json --scope read --raw)
common=(--as "$issuer" --seconds "$D" --assertions "$N" --key keys/client.jwk.json)
for c in "${connections[@]}"; do
  "$load" "${common[@]}" --connections "$c" --dpop es256 | sed 's/^{/{"request":"client_credentials, DPoP-bound",/'
  "$load" "${common[@]}" --connections "$c" --endpoint introspection --param "token=$token" \
    | sed 's/^{/{"request":"introspection",/'
done
"$root/target/release/examples/es256_ceiling" 2 10 | sed 's/^{/{"request":"ceiling (ES256 verify+sign, 2 threads)",/'
