#!/usr/bin/env bash
# Runs every test: unit tests, the conformance vectors, the CLI tests, the doc examples,
# and the interop tests against Node's jose and Python's joserfc and pyjwt.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-interop.sh
LANYARD_INTEROP=1 cargo test --workspace
