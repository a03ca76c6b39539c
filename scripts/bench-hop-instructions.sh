#!/usr/bin/env bash
# The cluster hop's user-space instructions per round trip, per process (BENCHMARKS.md, "Issue
# 26, part 1: fewer hops and copies"): the load of bench-hop-cpu.sh (`C2S_UpdateWatchRoom`
# after login) through gate -> chat node -> gate over NATS, with the gate and the chat node
# under valgrind's callgrind (nats-server runs natively and is not counted). Instructions do
# not move with the machine's other load, as CPU time does; the kernel's share (system calls,
# the loopback TCP path) is not counted, and callgrind's slowness makes batches deeper than at
# full speed (the same for both builds).
#
# Each process runs once; two windows of load (SHORT and LONG seconds, each a fresh set of
# connections) are bracketed by `callgrind_control --zero` and `--dump`: the difference in
# instructions over the difference in round trips leaves out start-up, connecting and login.
# Build first: cargo build --release -p longlink-chat -p longlink-bench
# usage: BIN=<dir with longlink-chat> [LOADBIN=<dir with longlink-bench>] [CONNS=100]
#        [SHORT=4] [LONG=12] [OUT=<dir to keep the callgrind dumps in>] bash scripts/bench-hop-instructions.sh
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=$(cd "${BIN:?}" && pwd); LB=$(cd "${LOADBIN:-$B}" && pwd)
NATS=${LONGLINK_NATS_SERVER:-$ROOT/.venv/bin/nats-server}
CONNS=${CONNS:-100}; SHORT=${SHORT:-4}; LONG=${LONG:-12}
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
export RUST_LOG=warn
WORK=$(mktemp -d)
cleanup() {
  kill $(jobs -p) 2>/dev/null; wait 2>/dev/null
  [ -n "${OUT:-}" ] && mkdir -p "$OUT" && cp "$WORK"/chat.* "$WORK"/gate.* "$OUT"/ 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK"
common='[admin]
addr = ""
[chat]
max_msgs_per_sec = 0'
printf '[gate]\ntcp_addr = "127.0.0.1:23584"\nws_addr = ""\n%s\n[cluster]\nnats_url = "nats://127.0.0.1:24242"\nnode_type = "gate"\n' "$common" > gate.toml
printf '[gate]\ntcp_addr = ""\nws_addr = ""\n%s\n[cluster]\nnats_url = "nats://127.0.0.1:24242"\nnode_type = "chat"\n' "$common" > chat.toml
$NATS -a 127.0.0.1 -p 24242 -js -sd js >/dev/null 2>&1 &
sleep 0.5
vg() { valgrind --tool=callgrind --callgrind-out-file="$WORK/$1.%p" "$B/longlink-chat" --config "$1.toml" >/dev/null 2>"$1.err" & }
vg chat; CHAT_PID=$!
sleep 5
vg gate; GATE_PID=$!
for _ in $(seq 300); do (exec 3<>/dev/tcp/127.0.0.1/23584) 2>/dev/null && break; sleep 0.2; done
# Ready once a connection gets answers through the chat node (the gate connects to NATS and
# finds the chat node after its port opens).
for _ in $(seq 30); do
  "$LB/longlink-bench" --quiet echo --addr 127.0.0.1:23584 --message watch --conns 1 \
    --duration 1 --warmup 0 2>/dev/null | grep -q '"round_trips": *[1-9]' && break
  sleep 1
done
total() { # the instructions of a process's last dump
  local f; f=$(ls -t "$WORK/$1.$2".* | head -1)
  awk '/^(summary|totals):/ {print $2; exit}' "$f"
}
window() { # SECONDS: prints "round_trips chat_instructions gate_instructions"
  callgrind_control --zero $CHAT_PID >/dev/null 2>&1; callgrind_control --zero $GATE_PID >/dev/null 2>&1
  local rtts
  rtts=$("$LB/longlink-bench" --quiet --current-thread echo --addr 127.0.0.1:23584 --message watch \
    --conns "$CONNS" --duration "$1" --warmup 0 2>/dev/null |
    python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["round_trips"])')
  sleep 1
  callgrind_control --dump $CHAT_PID >/dev/null 2>&1; callgrind_control --dump $GATE_PID >/dev/null 2>&1
  sleep 1
  echo "$rtts $(total chat $CHAT_PID) $(total gate $GATE_PID)"
}
read -r r1 c1 g1 <<< "$(window "$SHORT")"
read -r r2 c2 g2 <<< "$(window "$LONG")"
python3 - "$r1" "$c1" "$g1" "$r2" "$c2" "$g2" "$CONNS" <<'EOF'
import sys
r1, c1, g1, r2, c2, g2, conns = map(int, sys.argv[1:])
d = r2 - r1
print(f"conns={conns} round_trips={r1},{r2} instructions_per_rtt: chat={(c2-c1)/d:,.0f} gate={(g2-g1)/d:,.0f} sum={(c2-c1+g2-g1)/d:,.0f}")
EOF
