#!/usr/bin/env python3
"""RSS of longlink-chat around the console's `cpuprof start` / `cpuprof stop`, twice.

usage: python3 scripts/cpuprof-rss.py target/release/longlink-chat [SECONDS_AFTER_STOP]

Starts the binary on free loopback ports with the console on, and prints its RSS (from
/proc/<pid>/status: total, anonymous, file-backed) before and after each start and stop, and
SECONDS_AFTER_STOP (default 12) after each stop, when the allocator's decay has run.
"""
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

binary = sys.argv[1]
settle = float(sys.argv[2]) if len(sys.argv) > 2 else 12.0
work = tempfile.mkdtemp(prefix="cpuprof-rss-")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


console = free_port()
config = os.path.join(work, "chat.toml")
with open(config, "w") as f:
    f.write(
        f"""[gate]
tcp_addr = "127.0.0.1:{free_port()}"
ws_addr = "127.0.0.1:{free_port()}"
[admin]
addr = "127.0.0.1:0"
console_addr = "127.0.0.1:{console}"
profile_dir = "{work}"
"""
    )
server = subprocess.Popen(
    [binary, "--config", config], stderr=open(os.path.join(work, "stderr"), "w")
)


def rss():
    status = open(f"/proc/{server.pid}/status").read()
    mb = lambda key: int(re.search(key + r":\s+(\d+)", status).group(1)) // 1024
    return f"{mb('VmRSS')} MB (anon {mb('RssAnon')}, file {mb('RssFile')})"


def run(command):
    s = socket.create_connection(("127.0.0.1", console))
    s.settimeout(60)
    s.sendall((command + "\nquit\n").encode())
    out = b""
    while chunk := s.recv(65536):
        out += chunk
    return out.decode(errors="replace").strip().replace("\n", " | ")


try:
    time.sleep(1.5)
    print(f"started: {rss()}")
    for n in (1, 2):
        print(f"profile {n}: before start {rss()}")
        print("   ", run("cpuprof start"))
        print(f"profile {n}: after start {rss()}")
        time.sleep(2)
        print("   ", run("cpuprof stop"))
        print(f"profile {n}: after stop {rss()}")
        time.sleep(settle)
        print(f"profile {n}: {settle:g} s after stop {rss()}")
finally:
    server.terminate()
    server.wait()
