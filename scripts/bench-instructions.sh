#!/usr/bin/env bash
# User-space instructions per ping-pong round trip, longlink-chat against the bare tokio echo,
# counted by valgrind's callgrind: a figure that does not move with the VM's neighbours (the
# CPU-time figures of bench.sh do, by +-20% here). The kernel's share (send, recv, epoll: most
# of the time) is not counted. Not part of the test command.
#
#   bash scripts/bench-instructions.sh               # this tree
#   DIR=/path/to/release bash scripts/bench-instructions.sh   # another build's longlink-chat
#   ENCODING=protobuf bash scripts/bench-instructions.sh
#
# Each server runs twice under callgrind, with 100 connections pinging for 3 s and for 9 s;
# the difference in instructions over the difference in round trips leaves out start-up and
# connecting. Needs valgrind (Debian's package).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
if [ -z "${BENCH_NO_BUILD:-}" ]; then
    cargo build --release -p longlink-chat -p longlink-bench >&2
fi
HERE="${CARGO_TARGET_DIR:-$PWD/target}/release"
DIR="${DIR:-$HERE}"
ENCODING="${ENCODING:-json}"
OUT="$(mktemp -d)"

run() { # KIND SECONDS: prints "round_trips instructions"
    local kind="$1" secs="$2" addr raw=() pid
    if [ "$kind" = longlink ]; then
        addr=127.0.0.1:13563
        env LONGLINK_ADMIN__ADDR=127.0.0.1:0 LONGLINK_GATE__TCP_ADDR=$addr \
            LONGLINK_GATE__WS_ADDR=127.0.0.1:13653 LONGLINK_GATE__ENCODING="$ENCODING" \
            valgrind --tool=callgrind --callgrind-out-file="$OUT/$kind.$secs" \
            "$DIR/longlink-chat" >/dev/null 2>"$OUT/$kind.$secs.err" &
    else
        addr=127.0.0.1:14000
        raw=(--raw)
        valgrind --tool=callgrind --callgrind-out-file="$OUT/$kind.$secs" \
            "$HERE/longlink-bench" --quiet bare-echo --addr $addr --duration 60 \
            >/dev/null 2>"$OUT/$kind.$secs.err" &
    fi
    pid=$!
    for _ in $(seq 150); do
        (exec 3<>"/dev/tcp/${addr%:*}/${addr#*:}") 2>/dev/null && break
        sleep 0.2
    done
    local rtts
    rtts=$("$HERE/longlink-bench" --quiet --current-thread echo "${raw[@]}" --encoding "$ENCODING" \
        --addr $addr --conns 100 --duration "$secs" 2>/dev/null |
        python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["round_trips"])')
    kill -INT "$pid" 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    echo "$rtts $(awk '/^(summary|totals):/ {print $2; exit}' "$OUT/$kind.$secs")"
}

echo "| server | instructions per round trip ($ENCODING) |"
echo "|---|---|"
for kind in longlink bare; do
    read -r r1 i1 <<< "$(run "$kind" 3)"
    read -r r2 i2 <<< "$(run "$kind" 9)"
    echo "| $kind | $(python3 -c "print(f'{($i2 - $i1) / ($r2 - $r1):,.0f}')") |"
done
