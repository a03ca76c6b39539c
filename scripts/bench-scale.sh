#!/usr/bin/env bash
# The cluster at scale (BENCHMARKS.md, "The cluster at scale"): one NATS, five gates (more if
# CONNS needs them: a process here may open at most 20,000 files) and one chat node; load
# from several `longlink-bench hold` processes, each from its own loopback source address
# (127.0.0.2, 127.0.0.3, ...), each connection logged in and watching one of ROOMS rooms, and
# all of them in the big room (the API's broadcast to everyone). Prints one table.
#
#   cargo build --release -p longlink-chat -p longlink-bench
#   CONNS=100000 bash scripts/bench-scale.sh        # the issue's size
#   CONNS=5000 BIN=target/debug bash scripts/bench-scale.sh
#
# Settings (environment): CONNS (100000), ROOMS (100), ROUNDS (20 broadcasts), PUSHES (2000
# single pushes per transport), BATCH (1000 uids per batch), BATCHES (10 per transport),
# SINGLE (connections of the one-process baseline: CONNS/5, at most 19,000), GATES (5, or
# enough for CONNS), BIN (target/release), SRC_BASE (2: the loads send from 127.0.0.2 on),
# PORT_BASE (25000). For memory: SETTLE (seconds between the last login
# and reading memory: 2), MEM_ONLY=1 (stop after the memory rows), QUIET_WAIT (before the
# broadcasts, at most this many seconds for the cluster's CPU to fall under 5% of a core:
# 60; 0 = broadcast at once), HEAP=<dir> (the chat node,
# gate 1 and the one process sample their heap from start-up; their profiles are saved there
# for scripts/heap-top.py; HEAP_SAMPLE: one allocation sampled per 2^HEAP_SAMPLE bytes, 19).
# Needs .venv/bin/nats-server (scripts/test.sh
# installs it) or LONGLINK_NATS_SERVER. Loopback only; every process it starts is stopped on
# exit; files go to a temp dir.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
B=${BIN:-$ROOT/target/release}
case $B in /*) ;; *) B=$ROOT/$B ;; esac
NATS=${LONGLINK_NATS_SERVER:-$ROOT/.venv/bin/nats-server}
CONNS=${CONNS:-100000}
ROOMS=${ROOMS:-100}
ROUNDS=${ROUNDS:-20}
PUSHES=${PUSHES:-2000}
BATCH=${BATCH:-1000}
BATCHES=${BATCHES:-10}
PER_PROC=19000 # connections per process (gate or load), under the 20,000 open-file cap
NEED=$(((CONNS + PER_PROC - 1) / PER_PROC))
GATES=${GATES:-$((NEED > 5 ? NEED : 5))}
SINGLE=${SINGLE:-$((CONNS / 5 < PER_PROC ? CONNS / 5 : PER_PROC))}
KEY=bench-scale-key
BASE=${PORT_BASE:-25000}
SRC=${SRC_BASE:-2} # the first load's source address: 127.0.0.<SRC>
export RUST_LOG=warn
if [ -n "${HEAP:-}" ]; then
  mkdir -p "$HEAP"
  HEAP=$(cd "$HEAP" && pwd)
  export _RJEM_MALLOC_CONF=prof_active:true,lg_prof_sample:${HEAP_SAMPLE:-19}
fi

ulimit -n "$(ulimit -Hn)" || { echo "cannot raise the open-file limit" >&2; exit 1; }
[ -x "$NATS" ] || { echo "no nats-server at $NATS (bash scripts/test.sh installs it)" >&2; exit 1; }
for bin in longlink-chat longlink-bench; do
  [ -x "$B/$bin" ] || { echo "no $B/$bin: cargo build --release -p longlink-chat -p longlink-bench" >&2; exit 1; }
done

# The resume storm (issue 26), a step on a cluster of its own: STORM=20000 runs it instead of
# the table (20,000 resumable sessions over five gates cut at one instant, resuming on random
# gates: time until all are resumed, messages lost); scripts/bench_storm.py prints its rows.
if [ -n "${STORM:-}" ]; then
  exec python3 "$ROOT/scripts/bench_storm.py" storm --sessions "$STORM" --bin "$B" --nats "$NATS"
fi

WORK=$(mktemp -d)
PIDS=()
cleanup() { # SIGTERM, then SIGKILL for whatever has not stopped 15 s later
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for _ in $(seq 150); do
    alive=0
    for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
start() { # name, command...: runs it in the background, its pid in $WORK/<name>.pid
  local name=$1; shift
  "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  PIDS+=($!)
  echo $! >"$WORK/$name.pid"
}
node_toml() { # file, tcp port ("" = none), admin port, node type ("" = one process)
  {
    echo "[gate]"
    if [ -n "$2" ]; then echo "tcp_addr = \"127.0.0.1:$2\""; else echo 'tcp_addr = ""'; fi
    echo 'ws_addr = ""'
    echo "max_conn_num = $((PER_PROC + 500))"
    echo "[admin]"
    echo "addr = \"127.0.0.1:$3\""
    echo "api_key = \"$KEY\""
    if [ -n "$4" ]; then
      echo "[cluster]"
      echo "nats_url = \"nats://127.0.0.1:$BASE\""
      echo "node_type = \"$4\""
      echo "node_id = \"$(basename "$1" .toml)\""
    fi
  } >"$1"
}

start nats "$NATS" -a 127.0.0.1 -p "$BASE" -js -sd "$WORK/js" -m $((BASE + 200)) --profile $((BASE + 201))
sleep 0.5
node_toml "$WORK/chat.toml" "" $((BASE + 100)) chat
start chat "$B/longlink-chat" --config "$WORK/chat.toml"
sleep 0.5
GATE_ADDRS=""
for g in $(seq 1 "$GATES"); do
  node_toml "$WORK/gate$g.toml" $((BASE + g)) $((BASE + 100 + g)) gate
  start "gate$g" "$B/longlink-chat" --config "$WORK/gate$g.toml"
  GATE_ADDRS="$GATE_ADDRS${GATE_ADDRS:+,}127.0.0.1:$((BASE + g))"
done
node_toml "$WORK/single.toml" $((BASE + 99)) $((BASE + 199)) ""
start single "$B/longlink-chat" --config "$WORK/single.toml"
sleep 1.5

# The load: at least five processes, one per source address, PER_PROC connections each at most.
PER_LOAD=$(((CONNS + 4) / 5 < PER_PROC ? (CONNS + 4) / 5 : PER_PROC))
LOADS=$(((CONNS + PER_LOAD - 1) / PER_LOAD))
first=1
for l in $(seq 1 "$LOADS"); do
  n=$((CONNS - first + 1 < PER_LOAD ? CONNS - first + 1 : PER_LOAD))
  start "load$l" "$B/longlink-bench" --quiet hold --gates "$GATE_ADDRS" --source "127.0.0.$((l + SRC - 1))" \
    --first-uid "$first" --conns "$n" --rooms "$ROOMS" --hold 3600 --status "$WORK/load$l.json"
  first=$((first + n))
done
if [ "$SINGLE" -gt 0 ]; then
  start loadsingle "$B/longlink-bench" --quiet hold --gates "127.0.0.1:$((BASE + 99))" \
    --source "127.0.0.$((LOADS + SRC))" --first-uid 1 --conns "$SINGLE" --rooms "$ROOMS" --hold 3600 \
    --status "$WORK/loadsingle.json"
fi

WORK=$WORK CONNS=$CONNS GATES=$GATES LOADS=$LOADS SINGLE=$SINGLE ROUNDS=$ROUNDS PUSHES=$PUSHES \
  BATCH=$BATCH BATCHES=$BATCHES KEY=$KEY BASE=$BASE SETTLE=${SETTLE:-2} MEM_ONLY=${MEM_ONLY:-} QUIET_WAIT=${QUIET_WAIT:-60} \
  HEAP=${HEAP:-} python3 "$ROOT/scripts/bench_scale.py"
