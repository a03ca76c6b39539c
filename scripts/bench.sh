#!/usr/bin/env bash
# Benchmarks longlink-chat against a bare tokio server, side by side in the same minutes, and
# prints one table (medians of interleaved rounds). Not part of the test command.
#
#   bash scripts/bench.sh                      # this tree: longlink vs bare
#   bash scripts/bench.sh --against DIR        # and another build's binaries (DIR holds
#                                              # longlink-chat and longlink-bench), e.g. the
#                                              # release dir of an older commit: before/after
#   ROUNDS=5 bash scripts/bench.sh             # more rounds (default 3)
#   LOADGEN_FLAGS= bash scripts/bench.sh       # flags for every longlink-bench client run
#                                              # (default --current-thread; empty: tokio's
#                                              # multi-thread runtime)
#
# Server on core 0, load on core 1 (taskset). Loopback only. Workloads:
#   idle     10,000 TCP connections, each answered one heartbeat: server RSS growth / conns;
#            the same, each also logged in and watching room 1; and 10,000 over WebSocket
#   echo     heartbeat ping-pong (bare: 32-byte raw frames), 100 and 1,000 connections, 5 s
#            after a 1 s warm-up: round trips/s, p50, p99, max, the server's CPU per round
#            trip and the load generator's own CPU use (100%: it is the limit); over TCP in
#            JSON, WebSocket in JSON and TCP in protobuf (bare: raw TCP, raw WebSocket)
#   fanout   1,000 watchers of one room, 30 messages, and 5,000 watchers, 50 messages: time
#            until all have each (p50, p99) and the server's CPU time per delivery; bare:
#            `longlink-bench bare-fanout` (tokio's chat example shape); deliveries/s is the
#            watchers over the all-delivered p50
set -euo pipefail
cd "$(dirname "$0")/.."
# A run that fails half-way stops the server it started.
trap '[ -n "${PID:-}" ] && kill -TERM "$PID" 2>/dev/null; true' EXIT

ROUNDS="${ROUNDS:-3}"
# The load generator on tokio's current-thread runtime by default: on its one core the
# multi-thread runtime is unfair and hides the server's own fairness (BENCHMARKS.md).
read -r -a LG <<< "${LOADGEN_FLAGS---current-thread}"
AGAINST=""
while [ $# -gt 0 ]; do
    case "$1" in
        --against) AGAINST="$2"; shift 2 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

if [ -z "${BENCH_NO_BUILD:-}" ]; then
    cargo build --release -p longlink-chat -p longlink-bench >&2
fi
HERE="${CARGO_TARGET_DIR:-$PWD/target}/release"
OUT="$(mktemp -d)/results.jsonl"
source scripts/bench-lib.sh

fanout() { # NAME PID ADDR: the two fan-out workloads against ADDR, served by PID
    local b="$HERE/longlink-bench" before line
    for spec in "1000 30" "5000 50"; do
        set -- "$1" "$2" "$3" $spec
        before=$(cpu_ms "$2")
        line=$(taskset -c 1 "$b" --quiet "${LG[@]}" fanout --addr "$3" --watchers "$4" --rounds "$5")
        echo "$line" | record "$1" "fanout$4" "$(python3 -c "print($(cpu_ms "$2") - $before)")"
    done
}

server() { # DIR [ENCODING]: starts longlink-chat from DIR, its pid in $PID
    start_chat "$1" LONGLINK_GATE__ENCODING="${2:-json}"
}

echo_run() { # NAME WORK PID ARGS...: one echo measurement, with the server's CPU time
    local name="$1" work="$2" pid="$3" before line
    shift 3
    before=$(cpu_ms "$pid")
    line=$(taskset -c 1 "$HERE/longlink-bench" --quiet "${LG[@]}" echo "$@" --duration 5 --warmup 1)
    echo "$line" | record "$name" "$work" "$(python3 -c "print($(cpu_ms "$pid") - $before)")"
}

run_longlink() { # NAME DIR
    local name="$1" dir="$2" b="$HERE/longlink-bench"
    local idle
    for idle in "idle --addr 127.0.0.1:13563" "idle_watch --addr 127.0.0.1:13563 --watch" \
                "idle_ws --addr 127.0.0.1:13653 --transport ws"; do
        set -- $idle
        server "$dir"
        taskset -c 1 "$b" --quiet "${LG[@]}" idle --conns 10000 --hold 1 --pid "$PID" "${@:2}" | record "$name" "$1"
        stop "$PID"
    done
    server "$dir"
    for conns in 100 1000; do
        echo_run "$name" "echo$conns" "$PID" --addr 127.0.0.1:13563 --conns $conns
        echo_run "$name" "ws$conns" "$PID" --transport ws --addr 127.0.0.1:13653 --conns $conns
    done
    fanout "$name" "$PID" 127.0.0.1:13563
    stop "$PID"
    server "$dir" protobuf
    for conns in 100 1000; do
        echo_run "$name" "pb$conns" "$PID" --encoding protobuf --addr 127.0.0.1:13563 --conns $conns
    done
    stop "$PID"
}

run_bare() {
    local b="$HERE/longlink-bench" pid wpid
    taskset -c 0 "$b" --quiet bare-echo --addr 127.0.0.1:14000 --duration 300 >/dev/null 2>&1 &
    pid=$!
    taskset -c 0 "$b" --quiet bare-echo --transport ws --addr 127.0.0.1:14001 --duration 300 >/dev/null 2>&1 &
    wpid=$!
    sleep 0.5
    for conns in 100 1000; do
        echo_run bare "echo$conns" "$pid" --raw --addr 127.0.0.1:14000 --conns $conns
        # The same raw TCP echo is the baseline of the protobuf rows.
        echo_run bare "ws$conns" "$wpid" --raw --transport ws --addr 127.0.0.1:14001 --conns $conns
    done
    kill -INT "$pid" "$wpid" 2>/dev/null || true
    wait "$pid" "$wpid" 2>/dev/null || true
    taskset -c 0 "$b" --quiet bare-fanout --addr 127.0.0.1:14002 --duration 300 >/dev/null 2>&1 &
    pid=$!
    sleep 0.5
    fanout bare "$pid" 127.0.0.1:14002
    kill -INT "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

for round in $(seq "$ROUNDS"); do
    echo "round $round/$ROUNDS" >&2
    run_longlink longlink "$HERE"
    [ -n "$AGAINST" ] && run_longlink against "$AGAINST"
    run_bare
done

python3 - "$OUT" "$AGAINST" "$ROUNDS" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
against = sys.argv[2]
def med(build, work, key):
    v = [r[key] for r in rows if r["build"] == build and r["work"] == work and r.get(key) is not None]
    return statistics.median(v) if v else None
def fmt(v, unit):
    if v is None: return "-"
    return {"B": f"{v:,.0f} B", "k/s": f"{v/1000:.1f}k", "ms": f"{v/1000:.2f} ms", "us": f"{v:.2f} µs", "%": f"{v:.0f}%"}[unit]
def per_delivery(build, work, n, rounds):
    v = med(build, work, "cpu_ms")
    return None if v is None else v * 1000 / (n * rounds)
def ratio(a, b):
    return f"{a/b:.2f}" if a is not None and b else "-"
builds = ["longlink"] + (["against"] if against else [])
names = {"longlink": "this tree", "against": "--against"}
print(f"medians of {sys.argv[3]} interleaved rounds" + (f"; --against {against}" if against else ""))
head = ["workload", "figure"] + [names[b] for b in builds] + ["bare", "this / bare"] + (["this / against"] if against else [])
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
def echo_rows(label, work, bare_work):
    return [(label, "round trips/s", work, "rtt_per_sec", "k/s", bare_work),
            (label, "p50", work, "p50_us", "ms", bare_work),
            (label, "p99", work, "p99_us", "ms", bare_work),
            (label, "max", work, "max_us", "ms", bare_work),
            (label, "server CPU per round trip", work, "cpu_per_rtt", "us", bare_work),
            (label, "load generator CPU", work, "client_cpu_pct", "%", bare_work)]
lines = [("idle 10k tcp", "bytes per conn", "idle", "bytes_per_conn", "B", None),
         ("idle 10k tcp, logged in, watching", "bytes per conn", "idle_watch", "bytes_per_conn", "B", None),
         ("idle 10k ws", "bytes per conn", "idle_ws", "bytes_per_conn", "B", None)]
for conns in (100, 1000):
    lines += echo_rows(f"echo tcp json {conns}", f"echo{conns}", f"echo{conns}")
    lines += echo_rows(f"echo ws json {conns}", f"ws{conns}", f"ws{conns}")
    lines += echo_rows(f"echo tcp protobuf {conns}", f"pb{conns}", f"echo{conns}")
for n, r in ((1000, 30), (5000, 50)):
    lines += [(f"fanout {n}", "all delivered p50", f"fanout{n}", "p50_us", "ms", f"fanout{n}"),
              (f"fanout {n}", "all delivered p99", f"fanout{n}", "p99_us", "ms", f"fanout{n}"),
              (f"fanout {n}", "deliveries/s", f"fanout{n}", ("rate", n), "k/s", f"fanout{n}"),
              (f"fanout {n}", "server CPU per delivery", f"fanout{n}", (n, r), "us", f"fanout{n}"),
              (f"fanout {n}", "load generator CPU", f"fanout{n}", "client_cpu_pct", "%", f"fanout{n}")]
def value(build, work, key):
    if isinstance(key, tuple) and key[0] == "rate":
        p50 = med(build, work, "p50_us")
        return None if not p50 else key[1] * 1e6 / p50
    if isinstance(key, tuple):
        return per_delivery(build, work, *key)
    if key == "cpu_per_rtt":
        cpu, rtts = med(build, work, "cpu_ms"), med(build, work, "round_trips")
        dur = med(build, work, "duration_s")
        # The server's CPU over the whole run (warm-up included) per round trip measured,
        # scaled by the measured share of the run.
        return None if not (cpu and rtts and dur) else cpu * 1000 / rtts * dur / (dur + 1)
    return med(build, work, key)
for label, fig, work, key, unit, bare_work in lines:
    vals = [value(b, work, key) for b in builds]
    bare = value("bare", bare_work, key) if bare_work else None
    cells = [label, fig] + [fmt(v, unit) for v in vals] + [fmt(bare, unit), ratio(vals[0], bare)]
    if against:
        cells.append(ratio(vals[0], vals[1]))
    print("| " + " | ".join(cells) + " |")
EOF
