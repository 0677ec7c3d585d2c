#!/usr/bin/env bash
# Enforces the dependency rules of docs/architecture.md: lanyard-core pulls in no crypto
# backend, async runtime, HTTP, gRPC or database crate; no crate links ring or openssl;
# only lanyard-crypto names aws-lc-rs (the crypto boundary); library code takes the crypto
# provider it is given; lanyard-tower never depends
# on the server or the agent; docs/architecture.md matches the tree (scripts/architecture.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
core=$(cargo tree -p lanyard-core -e normal --prefix none --format '{p}' | awk '{print $1}' | sort -u)
for banned in aws-lc-rs aws-lc-sys ring openssl-sys tokio hyper reqwest tonic sqlx; do
  if grep -qx "$banned" <<<"$core"; then
    echo "lanyard-core must not depend on $banned"; status=1
  fi
done
all=$(cargo tree --workspace -e normal,build --prefix none --format '{p}' | awk '{print $1}' | sort -u)
for banned in ring openssl-sys boring-sys; do
  if grep -qx "$banned" <<<"$all"; then
    echo "the workspace must not link $banned (one crypto backend: aws-lc-rs)"; status=1
  fi
done
# The crypto boundary: lanyard-crypto is the only workspace crate with aws-lc-rs as a direct
# dependency (of any kind) and the only one whose sources name `aws_lc_rs`. What rustls,
# rcgen, rustls-webpki and x509-parser pull in transitively (configured for aws-lc-rs in
# the workspace manifest) is allowed; TLS code gets its provider from
# `lanyard_crypto::rustls_provider()`.
direct=$(cargo metadata --format-version 1 --no-deps | python3 -c '
import json, sys
for package in json.load(sys.stdin)["packages"]:
    if package["name"] != "lanyard-crypto" and any(d["name"] == "aws-lc-rs" for d in package["dependencies"]):
        print(package["name"])
')
for crate in $direct; do
  echo "$crate must not depend on aws-lc-rs directly (use the lanyard-crypto provider)"; status=1
done
named=$(grep -rl --include='*.rs' 'aws_lc_rs' crates | grep -v '^crates/lanyard-crypto/' || true)
for file in $named; do
  echo "$file names aws_lc_rs; only lanyard-crypto may (use the CryptoProvider or lanyard_crypto::rustls_provider())"; status=1
done
# Library code takes the provider it is given: outside tests, the global
# `lanyard_crypto::provider()` is called only by composition roots (the CLI, the server's
# start-up and configuration checks, lanyard-testing) and by lanyard-tower's one
# documented default.
allowed='^crates/(lanyard/|lanyard-testing/|lanyard-crypto/|lanyard-server/src/(server|config)\.rs|lanyard-tower/src/lib\.rs)'
for file in $(grep -rl --include='*.rs' 'lanyard_crypto::provider()' crates | grep '/src/' | grep -Ev "$allowed" || true); do
  # Uses after the file's `#[cfg(test)]` module and in doc comments are fine.
  if awk '/^#\[cfg\(test\)\]/ { exit } /^[[:space:]]*\/\/[\/!]/ { next } /lanyard_crypto::provider\(\)/ { found = 1 } END { exit !found }' "$file"; then
    echo "$file calls lanyard_crypto::provider(); library code takes the provider it is given"; status=1
  fi
done
# lanyard-tower is what services link: it never pulls in the server or the agent, with or
# without its optional features.
tower=$(cargo tree -p lanyard-tower --all-features -e normal,build --prefix none --format '{p}' | awk '{print $1}' | sort -u)
for banned in lanyard-server lanyard-agent; do
  if grep -qx "$banned" <<<"$tower"; then
    echo "lanyard-tower must not depend on $banned"; status=1
  fi
done
# docs/architecture.md: its dependency section, crate table and module tables match the tree.
scripts/architecture.sh --check || status=1
[ $status -eq 0 ] && echo "dependency rules: ok"
exit $status
