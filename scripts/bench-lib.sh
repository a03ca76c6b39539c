# Shared by the benchmark scripts (sourced, not run): recording a measurement, a process's CPU
# time, and starting and stopping longlink-chat on core 0 at 127.0.0.1:13563 (WebSocket 13653).
# Expects OUT (the results file) to be set before `record` is used.

# The fan-out's sender says far more than [chat] max_msgs_per_sec (20 a second): no limit.
PORTS=(LONGLINK_ADMIN__ADDR=127.0.0.1:0 LONGLINK_GATE__TCP_ADDR=127.0.0.1:13563
       LONGLINK_GATE__WS_ADDR=127.0.0.1:13653 LONGLINK_GATE__MAX_CONN_NUM=10100
       LONGLINK_CHAT__MAX_MSGS_PER_SEC=0)

# tag the JSON line of one measurement with its build and workload (and the server's CPU
# milliseconds, when given)
record() { python3 -c 'import json,sys; r=json.loads(sys.stdin.readline()); r["build"]=sys.argv[1]; r["work"]=sys.argv[2]; r["cpu_ms"]=float(sys.argv[3]) if len(sys.argv)>3 else None; print(json.dumps(r))' "$@" >> "$OUT"; }

# CPU time (user + system) of process $1 so far, in milliseconds
cpu_ms() { awk -v tck="$(getconf CLK_TCK)" '{print ($14 + $15) * 1000 / tck}' "/proc/$1/stat"; }

start_chat() { # DIR [VAR=VALUE...]: longlink-chat from DIR on core 0 with those settings; pid in $PID
    local dir="$1"
    shift
    if (exec 3<>/dev/tcp/127.0.0.1/13563) 2>/dev/null; then
        echo "something already listens on 127.0.0.1:13563: stop it first" >&2
        exit 1
    fi
    env "${PORTS[@]}" "$@" taskset -c 0 "$dir/longlink-chat" >/dev/null 2>&1 &
    PID=$!
    for _ in $(seq 50); do
        (exec 3<>/dev/tcp/127.0.0.1/13563) 2>/dev/null && return
        sleep 0.1
    done
    echo "longlink-chat from $dir did not start" >&2
    exit 1
}

stop() { # PID: stops it and waits until it has exited (and freed its ports)
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
