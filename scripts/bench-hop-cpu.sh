#!/usr/bin/env bash
# The cluster hop's CPU per round trip, per process (BENCHMARKS.md, "Issue 26, part 1: where
# the CPU goes"): the same load as bench-cluster.sh (C2S_UpdateWatchRoom after login, servers
# on core 0, load on core 1), one process vs gate -> chat node -> gate over NATS. For each
# run: CPU time (all threads' /proc/<pid>/task/*/schedstat run time) of nats-server, the chat
# node and the gate per round trip, and NATS messages per round trip; with PERF=1 a
# `perf record` of each server process as well (files under $OUT, default a temp dir removed at
# the end: give OUT to keep them).
# Build first: cargo build --release -p longlink-chat -p longlink-bench
# usage: BIN=<dir with longlink-chat> [LOADBIN=<dir with longlink-bench>] [CONNS="1 100 1000"]
#        [DUR=10] [ROUNDS=1] [PERF=0] [OUT=dir] bash scripts/bench-hop-cpu.sh
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${BIN:?}; LB=${LOADBIN:-$B}
NATS=${LONGLINK_NATS_SERVER:-$ROOT/.venv/bin/nats-server}
DUR=${DUR:-10}; ROUNDS=${ROUNDS:-1}; CONNS=${CONNS:-"1 100 1000"}; PERF=${PERF:-0}
export RUST_LOG=warn
WORK=$(mktemp -d); OUT=${OUT:-$WORK/perf}; mkdir -p "$OUT"
cleanup() { kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
cd "$WORK"
common='[admin]
addr = ""
[chat]
max_msgs_per_sec = 0'
printf '[gate]\ntcp_addr = "127.0.0.1:23573"\nws_addr = ""\n%s\n' "$common" > local.toml
printf '[gate]\ntcp_addr = "127.0.0.1:23574"\nws_addr = ""\n%s\n[cluster]\nnats_url = "nats://127.0.0.1:24232"\nnode_type = "gate"\n' "$common" > gate.toml
printf '[gate]\ntcp_addr = ""\nws_addr = ""\n%s\n[cluster]\nnats_url = "nats://127.0.0.1:24232"\nnode_type = "chat"\n' "$common" > chat.toml
taskset -c 0 $NATS -a 127.0.0.1 -p 24232 -m 28232 -js -sd js >/dev/null 2>&1 & NATS_PID=$!
sleep 0.5
taskset -c 0 $B/longlink-chat --config local.toml >/dev/null 2>&1 & LOCAL_PID=$!
taskset -c 0 $B/longlink-chat --config chat.toml >/dev/null 2>&1 & CHAT_PID=$!
sleep 0.5
taskset -c 0 $B/longlink-chat --config gate.toml >/dev/null 2>&1 & GATE_PID=$!
sleep 1
nats_in() { python3 -c "import json,urllib.request; print(json.load(urllib.request.urlopen('http://127.0.0.1:28232/varz'))['in_msgs'])"; }
ns() { cat /proc/$1/task/*/schedstat | awk "{s+=\$1} END {printf \"%.0f\\n\", s}"; }
echo "round conns where rtt_per_sec p50_us p99_us load1 cpu_us_per_rtt:total nats chat gate|local"
for round in $(seq $ROUNDS); do
 for conns in $CONNS; do
  for port in 23573 23574; do
   if [ $port = 23573 ]; then pids="$LOCAL_PID"; where=local; else pids="$NATS_PID $CHAT_PID $GATE_PID"; where=cluster; fi
   m0=$(nats_in); b=(); for p in $pids; do b+=($(ns $p)); done
   if [ "$PERF" = 1 ]; then
     for p in $pids; do perf record ${PERFOPTS:--F 1999} -o $OUT/perf.$where.$conns.$p.data -p $p -- sleep ${PERFDUR:-$DUR} >/dev/null 2>&1 & done
   fi
   out=$(taskset -c 1 $LB/longlink-bench --quiet echo --addr 127.0.0.1:$port --message watch --conns $conns --duration $DUR --warmup 1 2>/dev/null)
   a=(); for p in $pids; do a+=($(ns $p)); done; m1=$(nats_in)
   wait_perf=$(jobs -p | grep -v -e $NATS_PID -e $LOCAL_PID -e $CHAT_PID -e $GATE_PID); [ -n "$wait_perf" ] && wait $wait_perf 2>/dev/null
   load=$(cut -d' ' -f1 /proc/loadavg)
   d=""; for i in "${!a[@]}"; do d="$d $((a[i]-b[i]))"; done
   echo "$out" | python3 -c "
import json,sys
v=json.loads(sys.stdin.read()); t=v['rtt_per_sec']*($DUR+1)
d=[int(x) for x in '$d'.split()]
per=[x/1e3/t for x in d]
print($round,$conns,'$where',v['rtt_per_sec'],v['p50_us'],v['p99_us'],$load,'msgs/rtt=%.3f'%(($m1-$m0)/t),'%.2f'%sum(per),' '.join('%.2f'%x for x in per))"
  done
 done
done
