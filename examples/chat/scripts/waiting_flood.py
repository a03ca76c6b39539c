"""One address leaves resumable sessions waiting on longlink-chat, with no login: connect,
LL_SessionStart, ten heartbeats whose replies are never acknowledged, reset (RST); ROUNDS times.
Prints the server's RSS (read from /proc/PID/status) every 1,000 rounds.

    python3 examples/chat/scripts/waiting_flood.py HOST TCP_PORT SERVER_PID ROUNDS
"""
import json, socket, struct, sys, time

host, port, pid, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

def rss_mb():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024

def frame(obj):
    b = json.dumps(obj).encode()
    return struct.pack(">H", len(b)) + b

def read_frame(s, buf):
    while True:
        if len(buf) >= 2:
            n = struct.unpack(">H", buf[:2])[0]
            if len(buf) >= 2 + n:
                return buf[2:2 + n], buf[2 + n:]
        chunk = s.recv(65536)
        if not chunk:
            raise EOFError
        buf += chunk

print("rss before", rss_mb(), "MB")
for i in range(rounds):
    s = socket.create_connection((host, port))
    s.sendall(frame({"LL_SessionStart": {}}))
    buf = b""
    _, buf = read_frame(s, buf)
    s.sendall(b"".join(frame({"C2S_UserHeartBeat": {"ptime": 1}}) for _ in range(10)))
    for _ in range(10):
        _, buf = read_frame(s, buf)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    if (i + 1) % 1000 == 0:
        time.sleep(0.5)
        print(f"after {i + 1}: rss {rss_mb()} MB")
