#!/usr/bin/env python3
"""nats-server's memory and CPU for the cluster's directory alone (BENCHMARKS.md, issue 26):
a JetStream key-value bucket configured as longlink's, N keys `uid.<n>` written once (as a
gate writes them at login: the value "<conn> <at> <gate> <incarnation>", a compare-and-set
header), then watched at rest: nats-server's anonymous memory, Go heap in use and CPU every
EVERY seconds for WATCH seconds. Python's standard library only.

`--layout max-age` is the bucket as longlink made it before: entries expire after the
bucket's `max_age` (directory_ttl) unless they say `Nats-TTL: never`. `--layout lasting` is
the bucket with no `max_age`: entries last unless they carry a time-to-live.

usage: python3 scripts/bench_dir_mem.py [--keys 100000] [--layout max-age|lasting]
           [--storage file|memory] [--ttl 30] [--watch 120] [--every 10]
           [--nats .venv/bin/nats-server]
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
        self.sock.sendall(b'CONNECT {"verbose":false,"pedantic":false,"headers":true}\r\nSUB _INBOX.d.* 1\r\nPING\r\n')
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
        """Publishes (subject, headers, body) triples with at most `window` unanswered."""
        with self.lock:
            base = self.acks
        buf = []
        for n, (subject, hdr, body) in enumerate(items):
            buf.append(b"HPUB %s _INBOX.d.1 %d %d\r\n%s%s\r\n" % (subject.encode(), len(hdr), len(hdr) + len(body), hdr, body))
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


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks


def layout(a):
    """The bucket's stream config and one entry's headers, for `--layout`."""
    config = {
        "name": f"KV_{a.bucket}", "subjects": [f"$KV.{a.bucket}.>"], "max_msgs_per_subject": 1,
        "storage": a.storage, "discard": "new", "allow_rollup_hdrs": True, "deny_delete": True,
        "allow_direct": True, "num_replicas": 1, "max_msgs": -1, "max_bytes": -1, "max_consumers": -1,
        "max_msg_size": -1, "retention": "limits", "duplicate_window": int(min(a.ttl, 120) * 1e9),
        "allow_msg_ttl": True, "subject_delete_marker_ttl": int(a.ttl * 1e9),
    }
    if a.layout == "max-age":
        # Entries expire after the bucket's max_age unless they say `never`.
        config["max_age"] = int(a.ttl * 1e9)
        return config, b"NATS/1.0\r\nNats-TTL: never\r\nNats-Expected-Last-Subject-Sequence: 0\r\n\r\n"
    # No max_age: entries last unless they carry a time-to-live (the alive keys do).
    return config, b"NATS/1.0\r\nNats-Expected-Last-Subject-Sequence: 0\r\n\r\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=100000)
    ap.add_argument("--layout", choices=["max-age", "lasting"], default="lasting")
    ap.add_argument("--storage", default="file")
    ap.add_argument("--ttl", type=float, default=30)
    ap.add_argument("--watch", type=int, default=120)
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--bucket", default="longlink_sessions")
    ap.add_argument("--nats", default=os.environ.get("LONGLINK_NATS_SERVER", ".venv/bin/nats-server"))
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="dirmem-")
    port, mon, prof = free_port(), free_port(), free_port()
    server = subprocess.Popen([a.nats, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", work, "-m", str(mon), "--profile", str(prof)], stderr=subprocess.DEVNULL)
    try:
        time.sleep(1)
        c = Conn(port)
        config, hdr = layout(a)
        answer = c.request(f"$JS.API.STREAM.CREATE.KV_{a.bucket}", json.dumps(config).encode())
        assert b'"error"' not in answer, answer
        time.sleep(1)
        rss0, anon0, heap0 = mem(server.pid, prof)
        at = int(time.time() * 1e6)
        c.puts([(f"$KV.{a.bucket}.uid.{n}", hdr, f"{n * 7 + 1} {at} gate{n % 5 + 1} {7_523_190_412_345_678_901 + n}".encode()) for n in range(1, a.keys + 1)])
        samples = []
        ticks, t = cpu_ticks(server.pid), time.time()
        for s in range(a.every, a.watch + 1, a.every):
            time.sleep(a.every)
            rss, anon, heap = mem(server.pid, prof)
            now_ticks, now = cpu_ticks(server.pid), time.time()
            cpu = (now_ticks - ticks) / os.sysconf("SC_CLK_TCK") / (now - t)
            ticks, t = now_ticks, now
            samples.append({"s": s, "anon_mib": round(anon / 2**20, 1), "heap_mib": round(heap / 2**20, 1), "cpu_pct": round(cpu * 100, 1)})
            print(json.dumps(samples[-1]), flush=True)
        st = bsm.nats_monitor(mon)["streams"]
        k = max(a.keys, 1)
        print(json.dumps({
            "keys": a.keys, "layout": a.layout, "storage": a.storage, "errors": c.errors, "stream": st,
            "anon_mib_before": round(anon0 / 2**20, 1), "heap_mib_before": round(heap0 / 2**20, 1),
            "per_key_bytes_at_end": {"anon": round((anon - anon0) / k), "go_heap": round((heap - heap0) / k)},
            "mean_cpu_pct_after_first_minute": round(sum(x["cpu_pct"] for x in samples if x["s"] > 60) / max(1, sum(1 for x in samples if x["s"] > 60)), 2),
        }))
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
