#!/usr/bin/env bash
# Enforces the dependency rules of docs/architecture.md: lanyard-core pulls in no crypto
# backend, async runtime, HTTP, gRPC or database crate; no crate links ring or openssl;
# lanyard-tower never depends on the server or the agent.
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
# lanyard-tower is what services link: it never pulls in the server or the agent, with or
# without its optional features.
tower=$(cargo tree -p lanyard-tower --all-features -e normal,build --prefix none --format '{p}' | awk '{print $1}' | sort -u)
for banned in lanyard-server lanyard-agent; do
  if grep -qx "$banned" <<<"$tower"; then
    echo "lanyard-tower must not depend on $banned"; status=1
  fi
done
[ $status -eq 0 ] && echo "dependency rules: ok"
exit $status
