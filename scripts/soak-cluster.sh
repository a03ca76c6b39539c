#!/usr/bin/env bash
# The cluster fault soak (not part of CI; its short version is examples/chat/tests/soak.rs, in
# the test command). Builds the release binaries and runs longlink-soak (tools/soak) once per
# encoding: one NATS, three gates and two chat nodes of longlink-chat, CLIENTS resumable
# clients (TCP and WebSocket in turn) chatting in ROOMS rooms and privately through cutting
# proxies, PHASE_SECS seconds of chat per phase, the phases in PHASES: baseline (nothing),
# cuts (random cuts), gates (every gate replaced in turn: the new one started, then the old
# one stopped), chats (every chat node the same way), nats (NATS killed, back after
# NATS_OUTAGE seconds). Prints a Markdown table per encoding; exits 1 if a phase in ASSERT
# ("all", or a comma list) broke a guarantee. Any other longlink-soak flag can follow, e.g.
# `--cuts-throughout` or `--gate-settings 'drain_spread = 1'`.
#
#   CLIENTS=300 PHASE_SECS=30 bash scripts/soak-cluster.sh
#   CLIENTS=40 PHASE_SECS=5 ENCODINGS=json PHASES=baseline,gates bash scripts/soak-cluster.sh
#
# Loopback only. The soak kills every node it started when it ends, is interrupted, or dies
# (they get SIGKILL with it); this script passes SIGINT and SIGTERM on to it.
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS="${CLIENTS:-300}"
ROOMS="${ROOMS:-10}"
RATE="${RATE:-0.5}"
PHASE_SECS="${PHASE_SECS:-30}"
PHASES="${PHASES:-baseline,cuts,gates,chats,nats}"
NATS_OUTAGE="${NATS_OUTAGE:-3}"
ENCODINGS="${ENCODINGS:-json protobuf}"
ASSERT="${ASSERT:-}"
SEED="${SEED:-1}"
NATS="${LONGLINK_NATS_SERVER:-$PWD/.venv/bin/nats-server}"
BIN="${CARGO_TARGET_DIR:-target}/release"

[ -x "$NATS" ] || { echo "no nats-server at $NATS (bash scripts/test.sh installs it)" >&2; exit 2; }
cargo build --release --locked -p longlink-chat -p longlink-soak

pid=
trap '[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; [ -n "$pid" ] && wait "$pid" 2>/dev/null' EXIT
trap 'exit 130' INT TERM
status=0
for encoding in $ENCODINGS; do
    echo "== $encoding: $CLIENTS clients, $PHASE_SECS s per phase ($PHASES), $(nproc) cores" >&2
    args=(--chat-bin "$BIN/longlink-chat" --nats-bin "$NATS" --encoding "$encoding"
          --clients "$CLIENTS" --rooms "$ROOMS" --rate "$RATE" --phase-secs "$PHASE_SECS"
          --phases "$PHASES" --nats-outage "$NATS_OUTAGE" --seed "$SEED")
    [ -n "$ASSERT" ] && args+=(--assert "$ASSERT")
    "$BIN/longlink-soak" "${args[@]}" "$@" &
    pid=$!
    wait "$pid" || status=$?
    pid=
done
exit "$status"
