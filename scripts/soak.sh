#!/usr/bin/env bash
# Soak test (not part of CI): churns connections against the chat server for DURATION seconds
# (default 600) with WORKERS clients (default 200), each connecting, logging in, watching a
# room, talking, and dropping without a goodbye (every other time with a reset), over and
# over; samples the server's memory and open descriptors, and prints the result as JSON.
# Loopback only; everything it starts, it stops.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-600}"
WORKERS="${WORKERS:-200}"
PORT_TCP="${PORT_TCP:-13563}"
PORT_WS="${PORT_WS:-13653}"

cargo build --release --locked -p longlink-chat -p longlink-bench
config=$(mktemp --suffix=.toml)
log=$(mktemp --suffix=.log)
cat > "$config" <<TOML
[gate]
tcp_addr = "127.0.0.1:$PORT_TCP"
ws_addr = "127.0.0.1:$PORT_WS"
TOML
./target/release/longlink-chat --config "$config" 2>"$log" &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null; rm -f "$config"' EXIT
for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT_TCP") 2>/dev/null && break
    sleep 0.1
done
./target/release/longlink-bench soak --addr "127.0.0.1:$PORT_TCP" --workers "$WORKERS" \
    --duration "$DURATION" --pid "$server"
echo "server log: $log" >&2
