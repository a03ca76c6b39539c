#!/usr/bin/env bash
# The cost of session resume, side by side in the same minutes: longlink-chat with
# `resume_window = 0` (off), with it on and leaf-style clients (the feature's cost to clients
# that never use it), and with it on and every client resumable (`longlink-bench --resume`:
# LL_SessionStart, LL_Ack every 32 messages). Prints one table (medians of interleaved
# rounds). Not part of the test command.
#
#   bash scripts/bench-resume.sh            # ROUNDS=3 by default; BENCH_NO_BUILD=1 skips the build
#
# Server on core 0, load on core 1 (taskset). Loopback only; ports 13563/13653 (refuses to
# start if taken). Workloads: idle 10,000 TCP connections (RSS growth / conns), echo at 100
# and 1,000 connections (5 s after 1 s warm-up), fanout 1,000 watchers x 30 messages (server
# CPU per delivery), and `reconnect` (a session dropped with an answer unread, then resumed:
# time from the new socket's connect to the replayed answer; resume on only).
set -euo pipefail
cd "$(dirname "$0")/.."
# A run that fails half-way stops the server it started.
trap '[ -n "${PID:-}" ] && kill -TERM "$PID" 2>/dev/null; true' EXIT

ROUNDS="${ROUNDS:-3}"
if [ -z "${BENCH_NO_BUILD:-}" ]; then
    cargo build --release -p longlink-chat -p longlink-bench >&2
fi
BIN="${CARGO_TARGET_DIR:-$PWD/target}/release"
OUT="$(mktemp -d)/results.jsonl"
ADDR=127.0.0.1:13563
source scripts/bench-lib.sh

server() { # WINDOW: starts longlink-chat with that resume_window, its pid in $PID
    start_chat "$BIN" LONGLINK_GATE__RESUME_WINDOW="$1"
}

run() { # NAME WINDOW FLAGS...: every workload against one server build and mode
    local name="$1" window="$2" b="$BIN/longlink-bench" before line
    shift 2
    server "$window"
    taskset -c 1 "$b" --quiet idle "$@" --addr $ADDR --conns 10000 --hold 1 --pid "$PID" | record "$name" idle
    stop "$PID"
    server "$window"
    for conns in 100 1000; do
        taskset -c 1 "$b" --quiet echo "$@" --addr $ADDR --conns $conns --duration 5 --warmup 1 | record "$name" "echo$conns"
    done
    before=$(cpu_ms "$PID")
    line=$(taskset -c 1 "$b" --quiet fanout "$@" --addr $ADDR --watchers 1000 --rounds 30)
    echo "$line" | record "$name" fanout "$(python3 -c "print($(cpu_ms "$PID") - $before)")"
    if [ "$window" != 0 ]; then
        taskset -c 1 "$b" --quiet reconnect --addr $ADDR --iterations 300 | record "$name" reconnect
    fi
    stop "$PID"
}

for round in $(seq "$ROUNDS"); do
    echo "round $round/$ROUNDS" >&2
    run off 0
    run on-plain 30
    run on-resumable 30 --resume
done

python3 - "$OUT" "$ROUNDS" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(build, work, key):
    v = [r[key] for r in rows if r["build"] == build and r["work"] == work and r.get(key) is not None]
    return statistics.median(v) if v else None
def fmt(v, unit):
    if v is None: return "-"
    return {"B": f"{v:,.0f} B", "k/s": f"{v/1000:.1f}k", "ms": f"{v/1000:.2f} ms", "us": f"{v:.2f} µs"}[unit]
def value(build, work, key):
    if key == "cpu_per_delivery":
        v = med(build, work, "cpu_ms")
        return None if v is None else v * 1000 / (1000 * 30)
    return med(build, work, key)
builds = ["off", "on-plain", "on-resumable"]
print(f"medians of {sys.argv[2]} interleaved rounds")
print("| workload | figure | resume off | on, leaf clients | on, resumable clients | resumable / off |")
print("|---|---|---|---|---|---|")
lines = [("idle 10k", "bytes per conn", "idle", "bytes_per_conn", "B"),
         ("echo 100", "round trips/s", "echo100", "rtt_per_sec", "k/s"),
         ("echo 100", "p50", "echo100", "p50_us", "ms"),
         ("echo 100", "p99", "echo100", "p99_us", "ms"),
         ("echo 1000", "round trips/s", "echo1000", "rtt_per_sec", "k/s"),
         ("echo 1000", "p50", "echo1000", "p50_us", "ms"),
         ("echo 1000", "p99", "echo1000", "p99_us", "ms"),
         ("fanout 1000", "all delivered p50", "fanout", "p50_us", "ms"),
         ("fanout 1000", "all delivered p99", "fanout", "p99_us", "ms"),
         ("fanout 1000", "server CPU per delivery", "fanout", "cpu_per_delivery", "us"),
         ("reconnect", "connect to first replayed p50", "reconnect", "p50_us", "ms"),
         ("reconnect", "connect to first replayed p99", "reconnect", "p99_us", "ms")]
for label, fig, work, key, unit in lines:
    vals = [value(b, work, key) for b in builds]
    ratio = f"{vals[2]/vals[0]:.2f}" if vals[0] and vals[2] is not None else "-"
    print("| " + " | ".join([label, fig] + [fmt(v, unit) for v in vals] + [ratio]) + " |")
EOF
