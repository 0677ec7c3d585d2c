#!/usr/bin/env bash
# Installs the independent implementations the interop tests drive: Node's `jose` and
# `openid-client` (npm); Python's `Authlib` (PyPI, OAuth client_credentials);
# Python's `joserfc`, `pyjwt`, `http-message-signatures`, py-spiffe (`spiffe`) and
# python-cwt (`cwt`, with `cbor2`) (PyPI), pinned in tests/interop/; and the system `curl`
# (7.88+, Debian package), the mutual-TLS OAuth client of workload_interop. The Rust
# `spiffe` crate's driver (tests/interop/rust-spiffe) is built by its test itself, from its
# committed Cargo.lock.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "installing nodejs and npm (Debian packages)"
  apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi
if ! command -v curl >/dev/null; then
  echo "installing curl (Debian package)"
  apt-get update -qq && apt-get install -y -qq curl >/dev/null
fi
if ! command -v python3 >/dev/null; then
  apt-get update -qq && apt-get install -y -qq python3 python3-venv >/dev/null
fi

if [ ! -d tests/interop/node/node_modules/jose ] || [ ! -d tests/interop/node/node_modules/openid-client ]; then
  npm ci --prefix tests/interop/node --no-audit --no-fund --loglevel=error
fi
if [ ! -x tests/interop/.venv/bin/python ]; then
  python3 -m venv tests/interop/.venv || { apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null && python3 -m venv tests/interop/.venv; }
fi
if ! tests/interop/.venv/bin/python -c 'import joserfc, jwt, http_message_signatures, spiffe, cwt, cbor2, authlib, requests' 2>/dev/null; then
  tests/interop/.venv/bin/pip install --quiet --disable-pip-version-check -r tests/interop/python/requirements.txt
fi
