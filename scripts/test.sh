#!/usr/bin/env bash
# Runs every check and test of intake, installing what they need when it is missing.
# This is the README's test command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

install_debian_packages() {
  local missing=()
  for pair in "$@"; do
    local command=${pair%%:*} package=${pair##*:}
    command -v "$command" >/dev/null 2>&1 || missing+=("$package")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing ${missing[*]} from Debian's packages"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
  fi
}

command -v cargo >/dev/null 2>&1 || { echo "cargo is required (https://rustup.rs)"; exit 1; }
# gcc builds the few C parts of dependencies; the integration tests start their own
# redis-server and nats-server processes (never shared ones on 6379 or 4222); the
# sink fault tests mount a small tmpfs (mount, as root); the client tests drive
# Debian's Chromium, Segment's Python SDK and Segment's Node SDK.
install_debian_packages cc:gcc redis-server:redis-server nats-server:nats-server chromium:chromium node:nodejs npm:npm python3:python3

# The client SDKs and schemathesis, pinned, installed inside the repo (target/ and
# node_modules are ignored by git; nothing is cached outside the checkout).
CLIENTS=target/clients
if ! "$CLIENTS/venv/bin/python" -c 'import segment.analytics, schemathesis' >/dev/null 2>&1; then
  echo "== installing Segment's Python SDK and schemathesis into $CLIENTS/venv"
  python3 -m venv "$CLIENTS/venv"
  "$CLIENTS/venv/bin/pip" install --quiet --cache-dir "$CLIENTS/pip-cache" -r tests/clients/requirements.txt
fi
echo "== installing the Node clients (npm ci, tests/clients)"
(cd tests/clients && npm ci --silent --no-audit --no-fund --cache "../../$CLIENTS/npm-cache")
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt 2>/dev/null || true

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -D warnings (also compiles the benches)"
cargo clippy --locked --all-targets -- -D warnings
echo "== cargo test (unit and integration tests)"
cargo test --locked
