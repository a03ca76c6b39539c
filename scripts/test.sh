#!/usr/bin/env bash
# Runs every check and test of longlink on a fresh Debian machine with the Rust toolchain:
# formatting, clippy, and the whole test suite (unit, property, black-box over real sockets,
# and a third-party Python WebSocket client). Installs what the tests need by itself.
set -euo pipefail
cd "$(dirname "$0")/.."

# Python's `websockets` package, in a virtual environment, for the interoperability test.
VENV="${LONGLINK_TEST_VENV:-$PWD/.venv}"
if ! "$VENV/bin/python" -c "import websockets" 2>/dev/null; then
    if ! python3 -m venv "$VENV" 2>/dev/null; then
        echo "installing python3-venv" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
        python3 -m venv "$VENV"
    fi
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "websockets==17.4"
fi
export CHAT_TEST_PYTHON="$VENV/bin/python"

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
