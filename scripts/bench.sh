#!/usr/bin/env bash
# Benchmarks longlink-chat against a bare tokio server, side by side in the same minutes, and
# prints one table (medians of interleaved rounds). Not part of the test command.
#
#   bash scripts/bench.sh                      # this tree: longlink vs bare
#   bash scripts/bench.sh --against DIR        # and another build's binaries (DIR holds
#                                              # longlink-chat and longlink-bench), e.g. the
#                                              # release dir of an older commit: before/after
#   ROUNDS=5 bash scripts/bench.sh             # more rounds (default 3)
#
# Server on core 0, load on core 1 (taskset). Loopback only. Workloads:
#   idle     10,000 TCP connections, each answered one heartbeat: server RSS growth / conns
#   echo     heartbeat ping-pong (bare: 32-byte raw frames), 100 and 1,000 TCP connections,
#            5 s after a 1 s warm-up: round trips/s, p50, p99, max
#   fanout   1,000 watchers of one room, 30 messages, and 5,000 watchers, 50 messages: time
#            until all have each (p50, p99) and the server's CPU time per delivery; bare:
#            `longlink-bench bare-fanout` (tokio's chat example shape)
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS="${ROUNDS:-3}"
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
PORTS=(LONGLINK_ADMIN__ADDR=127.0.0.1:0 LONGLINK_GATE__TCP_ADDR=127.0.0.1:13563
       LONGLINK_GATE__WS_ADDR=127.0.0.1:13653 LONGLINK_GATE__MAX_CONN_NUM=10100)

# tag the JSON line of one measurement with its build and workload (and the server's CPU
# milliseconds, when given)
record() { python3 -c 'import json,sys; r=json.loads(sys.stdin.readline()); r["build"]=sys.argv[1]; r["work"]=sys.argv[2]; r["cpu_ms"]=float(sys.argv[3]) if len(sys.argv)>3 else None; print(json.dumps(r))' "$@" >> "$OUT"; }

# CPU time (user + system) of process $1 so far, in milliseconds
cpu_ms() { awk -v tck="$(getconf CLK_TCK)" '{print ($14 + $15) * 1000 / tck}' "/proc/$1/stat"; }

fanout() { # NAME PID ADDR: the two fan-out workloads against ADDR, served by PID
    local b="$HERE/longlink-bench" before line
    for spec in "1000 30" "5000 50"; do
        set -- "$1" "$2" "$3" $spec
        before=$(cpu_ms "$2")
        line=$(taskset -c 1 "$b" --quiet fanout --addr "$3" --watchers "$4" --rounds "$5")
        echo "$line" | record "$1" "fanout$4" "$(python3 -c "print($(cpu_ms "$2") - $before)")"
    done
}

server() { # DIR: starts longlink-chat from DIR on core 0, its pid in $PID
    if (exec 3<>/dev/tcp/127.0.0.1/13563) 2>/dev/null; then
        echo "something already listens on 127.0.0.1:13563: stop it first" >&2
        exit 1
    fi
    env "${PORTS[@]}" taskset -c 0 "$1/longlink-chat" >/dev/null 2>&1 &
    PID=$!
    for _ in $(seq 50); do
        (exec 3<>/dev/tcp/127.0.0.1/13563) 2>/dev/null && return
        sleep 0.1
    done
    echo "longlink-chat from $1 did not start" >&2
    exit 1
}

stop() { # PID: stops it and waits until it has exited (and freed its ports)
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

run_longlink() { # NAME DIR
    local name="$1" dir="$2" b="$HERE/longlink-bench"
    server "$dir"
    taskset -c 1 "$b" --quiet idle --addr 127.0.0.1:13563 --conns 10000 --hold 1 --pid "$PID" | record "$name" idle
    stop "$PID"
    server "$dir"
    for conns in 100 1000; do
        taskset -c 1 "$b" --quiet echo --addr 127.0.0.1:13563 --conns $conns --duration 5 --warmup 1 | record "$name" "echo$conns"
    done
    fanout "$name" "$PID" 127.0.0.1:13563
    stop "$PID"
}

run_bare() {
    local b="$HERE/longlink-bench" pid
    taskset -c 0 "$b" --quiet bare-echo --addr 127.0.0.1:14000 --duration 60 >/dev/null 2>&1 &
    pid=$!
    sleep 0.5
    for conns in 100 1000; do
        taskset -c 1 "$b" --quiet echo --raw --addr 127.0.0.1:14000 --conns $conns --duration 5 --warmup 1 | record bare "echo$conns"
    done
    kill -INT "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
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
    return {"B": f"{v:,.0f} B", "k/s": f"{v/1000:.1f}k", "ms": f"{v/1000:.2f} ms", "us": f"{v:.2f} µs"}[unit]
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
lines = [("idle 10k", "bytes per conn", "idle", "bytes_per_conn", "B", False),
         ("echo 100", "round trips/s", "echo100", "rtt_per_sec", "k/s", True),
         ("echo 100", "p50", "echo100", "p50_us", "ms", True),
         ("echo 100", "p99", "echo100", "p99_us", "ms", True),
         ("echo 1000", "round trips/s", "echo1000", "rtt_per_sec", "k/s", True),
         ("echo 1000", "p50", "echo1000", "p50_us", "ms", True),
         ("echo 1000", "p99", "echo1000", "p99_us", "ms", True),
         ("echo 1000", "max", "echo1000", "max_us", "ms", True),
         ("fanout 1000", "all delivered p50", "fanout1000", "p50_us", "ms", True),
         ("fanout 1000", "all delivered p99", "fanout1000", "p99_us", "ms", True),
         ("fanout 1000", "server CPU per delivery", "fanout1000", (1000, 30), "us", True),
         ("fanout 5000", "all delivered p50", "fanout5000", "p50_us", "ms", True),
         ("fanout 5000", "all delivered p99", "fanout5000", "p99_us", "ms", True),
         ("fanout 5000", "server CPU per delivery", "fanout5000", (5000, 50), "us", True)]
def value(build, work, key):
    return per_delivery(build, work, *key) if isinstance(key, tuple) else med(build, work, key)
for label, fig, work, key, unit, has_bare in lines:
    vals = [value(b, work, key) for b in builds]
    bare = value("bare", work, key) if has_bare else None
    cells = [label, fig] + [fmt(v, unit) for v in vals] + [fmt(bare, unit), ratio(vals[0], bare)]
    if against:
        cells.append(ratio(vals[0], vals[1]))
    print("| " + " | ".join(cells) + " |")
EOF
