#!/usr/bin/env python3
"""nats-server's memory for the cluster's directory alone (BENCHMARKS.md, issue 26): a
JetStream key-value bucket configured as longlink's (`history` 1, `max_age` directory_ttl),
N keys `uid.<n>` written once and rewritten every third of the time-to-live as the gates
do, with the values a gate writes ("<conn> <at> <gate>"). Prints nats-server's RSS and Go heap
in use before the keys and after ROUNDS rewrites, per key. Python's standard library only.

usage: python3 scripts/bench_dir_mem.py [--keys 40000] [--storage file|memory] [--ttl 30]
           [--rounds 4] [--nats .venv/bin/nats-server]
"""
import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import bench_scale_mem as bsm


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Conn:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.f = self.sock.makefile("rb")
        self.f.readline()
        self.sock.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\nSUB _INBOX.d.* 1\r\nPING\r\n')
        while self.f.readline().strip() != b"PONG":
            pass
        self.acks = 0
        self.errors = 0
        self.lock = threading.Condition()
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        while True:
            line = self.f.readline()
            if not line:
                return
            if line.startswith(b"PING"):
                self.sock.sendall(b"PONG\r\n")
            elif line.startswith(b"MSG"):
                size = int(line.split()[-1])
                body = self.f.read(size + 2)[:size]
                with self.lock:
                    self.acks += 1
                    self.errors += b'"error"' in body
                    self.last = body
                    self.lock.notify_all()

    def request(self, subject, body):
        with self.lock:
            want = self.acks + 1
        self.sock.sendall(b"PUB %s _INBOX.d.0 %d\r\n%s\r\n" % (subject.encode(), len(body), body))
        with self.lock:
            while self.acks < want:
                self.lock.wait(10)
            return self.last

    def puts(self, items, window=512):
        """Publishes (subject, body) pairs with at most `window` unanswered."""
        with self.lock:
            base = self.acks
        buf = []
        for n, (subject, body) in enumerate(items):
            buf.append(b"PUB %s _INBOX.d.1 %d\r\n%s\r\n" % (subject.encode(), len(body), body))
            if len(buf) == 64:
                self.sock.sendall(b"".join(buf))
                buf = []
                with self.lock:
                    while n + 1 - (self.acks - base) > window:
                        self.lock.wait(10)
        self.sock.sendall(b"".join(buf))
        with self.lock:
            while self.acks - base < len(items):
                self.lock.wait(10)


def mem(pid, prof):
    roll = bsm.smaps_rollup(pid)
    _, heap = bsm.go_heap_top(prof)
    return roll["Rss"], roll.get("Pss_Anon", 0), heap


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=40000)
    ap.add_argument("--storage", default="file")
    ap.add_argument("--ttl", type=float, default=30)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--bucket", default="longlink_sessions")
    ap.add_argument("--key", default="uid.{}")
    ap.add_argument("--nats", default=os.environ.get("LONGLINK_NATS_SERVER", ".venv/bin/nats-server"))
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="dirmem-")
    port, mon, prof = free_port(), free_port(), free_port()
    server = subprocess.Popen([a.nats, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", work, "-m", str(mon), "--profile", str(prof)], stderr=subprocess.DEVNULL)
    try:
        time.sleep(1)
        c = Conn(port)
        config = {
            "name": f"KV_{a.bucket}", "subjects": [f"$KV.{a.bucket}.>"], "max_msgs_per_subject": 1,
            "max_age": int(a.ttl * 1e9), "storage": a.storage, "discard": "new", "allow_rollup_hdrs": True,
            "deny_delete": True, "allow_direct": True, "num_replicas": 1, "max_msgs": -1, "max_bytes": -1,
            "max_consumers": -1, "max_msg_size": -1, "retention": "limits",
            "duplicate_window": int(min(a.ttl, 120) * 1e9),
        }
        answer = c.request(f"$JS.API.STREAM.CREATE.KV_{a.bucket}", json.dumps(config).encode())
        assert b'"error"' not in answer, answer
        time.sleep(1)
        rss0, anon0, heap0 = mem(server.pid, prof)
        every = a.ttl / 3
        for r in range(a.rounds + 1):
            t0 = time.time()
            at = int(time.time() * 1e6)
            c.puts([(f"$KV.{a.bucket}." + a.key.format(n), f"{n * 7 + 1} {at} gate{n % 5 + 1}".encode()) for n in range(1, a.keys + 1)])
            took = time.time() - t0
            if r < a.rounds:
                time.sleep(max(0, every - took))
        time.sleep(2)
        rss, anon, heap = mem(server.pid, prof)
        if os.environ.get("TOP"):
            top, _ = bsm.go_heap_top(prof, n=12)
            print([(fn, round(b / 2**20, 1)) for fn, b in top])
        st = bsm.nats_monitor(mon)["streams"]
        k = max(a.keys, 1)
        print(json.dumps({
            "keys": a.keys, "storage": a.storage, "key": a.key, "rounds": a.rounds, "errors": c.errors,
            "stream": st, "rss_mib": [round(rss0 / 2**20, 1), round(rss / 2**20, 1)],
            "anon_mib": [round(anon0 / 2**20, 1), round(anon / 2**20, 1)], "heap_mib": [round(heap0 / 2**20, 1), round(heap / 2**20, 1)],
            "per_key_bytes": {"rss": round((rss - rss0) / k), "anon": round((anon - anon0) / k), "go_heap": round((heap - heap0) / k)},
        }))
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
