"""Resumable sessions in a cluster at scale (BENCHMARKS.md): the drain of issue 22 and the
resume storm of issue 26. Starts its own processes (one NATS, one chat node, the gates, and
`longlink-bench storm` loads, each from its own loopback addresses), stops every one of them
on exit, stays on loopback, and prints one table and one JSON line.

  drain: a gate holding SESSIONS resumable sessions is stopped (SIGTERM): it tells each
         client `LL_Move`, spread over `drain_spread`; every session resumes on one of the
         other gates. Time until all are handed over, the rate the others absorb, the gates'
         CPU per session, and what the rooms' streams lost.
  storm: SESSIONS resumable sessions spread over the gates are cut at one instant (every
         socket reset) and reconnect to random gates: time until all are resumed, and what
         the streams lost.

  cargo build --release -p longlink-chat -p longlink-bench
  python3 scripts/bench_storm.py drain --sessions 10000
  python3 scripts/bench_storm.py storm --sessions 20000     # or STORM=20000 bash scripts/bench-scale.sh

While it runs, every session watches one of the rooms and each room's sender says `s0`,
`s1`, ... RATE times a second; a session counts every one exactly once and in order. Messages
lost = numbers skipped + numbers said and never received once the streams stop.
"""

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

TICK = os.sysconf("SC_CLK_TCK")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PER_LOAD = 10000  # sessions per load process (one socket each), under the 20,000-file cap
PER_SOURCE = 40  # sessions per source address: under the gates' max_waiting_per_ip (64)


class Cluster:
    def __init__(self, args):
        self.args = args
        self.work = tempfile.mkdtemp(prefix="bench-storm-")
        self.procs = {}
        self.base = args.port_base

    def start(self, name, argv):
        out = open(f"{self.work}/{name}.err", "wb")
        self.procs[name] = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=out, stdin=subprocess.DEVNULL)

    def stop_all(self):
        for p in self.procs.values():
            if p.returncode is None:
                p.kill()
        for p in self.procs.values():
            if p.returncode is None:
                try:
                    p.wait(timeout=10)
                except (subprocess.TimeoutExpired, ChildProcessError):
                    pass
        if self.args.keep:
            print(f"bench-storm: the processes' logs and files are in {self.work}", file=sys.stderr)
        else:
            shutil.rmtree(self.work, ignore_errors=True)

    def gate_port(self, g):
        return self.base + g

    def node_toml(self, name, tcp_port, admin_port, node_type):
        a = self.args
        lines = ["[gate]", f'tcp_addr = "127.0.0.1:{tcp_port}"' if tcp_port else 'tcp_addr = ""', 'ws_addr = ""',
                 "max_conn_num = 19500", f"resume_window = {a.window}", f"drain_spread = {a.spread}",
                 "drain_timeout = 30", "[admin]", f'addr = "127.0.0.1:{admin_port}"', "[cluster]",
                 f'nats_url = "nats://127.0.0.1:{self.base}"', f'node_type = "{node_type}"', f'node_id = "{name}"']
        path = f"{self.work}/{name}.toml"
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def up(self, gates):
        a = self.args
        self.start("nats", [a.nats, "-a", "127.0.0.1", "-p", str(self.base), "-js", "-sd", f"{self.work}/js"])
        wait_port(self.base)
        chat = [f"{a.bin}/longlink-chat", "--config", self.node_toml("chat", None, self.base + 100, "chat")]
        self.start("chat", chat)
        wait_port(self.base + 100)
        for g in range(1, gates + 1):
            toml = self.node_toml(f"gate{g}", self.gate_port(g), self.base + 100 + g, "gate")
            self.start(f"gate{g}", [f"{a.bin}/longlink-chat", "--config", toml])
        for g in range(1, gates + 1):
            wait_port(self.gate_port(g))

    def load(self, l, sessions, first_uid, gates, resume_to, stream_gate):
        a = self.args
        addr = lambda g: f"127.0.0.1:{self.gate_port(g)}"
        argv = [f"{a.bin}/longlink-bench", "--quiet", "storm", "--gates", ",".join(map(addr, gates)),
                "--resume-to", ",".join(map(addr, resume_to)), "--stream-gate", addr(stream_gate),
                "--sessions", str(sessions), "--source", f"127.{20 + l}.0.1",
                "--sources", str(max(1, -(-sessions // PER_SOURCE))), "--first-uid", str(first_uid),
                "--rooms", str(a.rooms), "--first-room", str(1 + (l - 1) * a.rooms), "--rate", str(a.rate),
                "--window", str(a.window), "--hold", "3600", "--status", f"{self.work}/load{l}.json"]
        self.start(f"load{l}", argv)

    def alive(self, names):
        for n in names:
            p = self.procs[n]
            if p.poll() is not None:
                err = open(f"{self.work}/{n}.err", errors="replace").read()[-2000:]
                sys.exit(f"bench-storm: {n} exited ({p.returncode}): {err}")

    def status(self, name):
        for _ in range(50):
            try:
                with open(f"{self.work}/{name}.json") as f:
                    return json.load(f)
            except (OSError, ValueError):
                time.sleep(0.02)
        return None

    def statuses(self, names):
        return [s for s in (self.status(n) for n in names) if s]

    def cpu(self, name):
        with open(f"/proc/{self.procs[name].pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    def reap_cpu(self, name, limit):
        """Waits for `name` to exit (at most `limit` s): its CPU seconds over its life."""
        p, deadline = self.procs[name], time.time() + limit
        while time.time() < deadline:
            pid, status, usage = os.wait4(p.pid, os.WNOHANG)
            if pid:
                p.returncode = os.waitstatus_to_exitcode(status)
                return usage.ru_utime + usage.ru_stime
            time.sleep(0.05)
        return None


def wait_port(port, limit=30):
    deadline = time.time() + limit
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"bench-storm: nothing listens on 127.0.0.1:{port}")


def total(st, key):
    return sum(s[key] for s in st)


def wait_ready(c, loads, sessions, cluster_names):
    deadline = time.time() + 120 + sessions / 100
    while time.time() < deadline:
        c.alive(loads + cluster_names)
        st = c.statuses(loads)
        if len(st) == len(loads) and total(st, "ready") + total(st, "failed") >= sessions and all(s["stream_ns"] for s in st):
            return st
        time.sleep(0.2)
    sys.exit(f"bench-storm: the sessions did not all open: {c.statuses(loads)}")


def peak_rate(samples, window=0.5):
    """The highest count per second over any `window` seconds of (time, count) samples."""
    best, j = 0.0, 0
    for i in range(len(samples)):
        while samples[i][0] - samples[j][0] > window:
            j += 1
        if samples[i][0] > samples[j][0]:
            best = max(best, (samples[i][1] - samples[j][1]) / (samples[i][0] - samples[j][0]))
    return best


def settle_streams(c, loads):
    """Stops the streams, waits until every session has had every number said (15 s at
    most); the final statuses."""
    for l in loads:
        c.procs[l].send_signal(signal.SIGUSR2)
    time.sleep(0.5)
    deadline = time.time() + 15
    while time.time() < deadline:
        st = c.statuses(loads)
        if all(s["stopped_ns"] for s in st) and total(st, "behind") == 0:
            break
        time.sleep(0.2)
    return c.statuses(loads)


def baseline(c, names, secs=3.0):
    """The cluster's CPU use per second while the streams flow and nothing moves."""
    before, t = sum(c.cpu(n) for n in names), time.time()
    time.sleep(secs)
    return (sum(c.cpu(n) for n in names) - before) / (time.time() - t)


def stream_rows(st):
    lost = total(st, "gaps") + total(st, "behind")
    rows = [("stream messages said / received by the sessions", f"{total(st, 'stream_sent')} / {total(st, 'stream_received')}"),
            ("messages lost (must be 0) / duplicated (must be 0)", f"{lost} / {total(st, 'dups')}"),
            ("sessions lost (must be 0); resumes refused \"retry\"; failed reconnects; other drops",
             f"{total(st, 'lost_sessions')}; {total(st, 'retries')}; {total(st, 'reconnect_errors')}; {total(st, 'drops')}")]
    errors = [s["first_error"] for s in st if s["first_error"]]
    if total(st, "sender_errors"):
        rows.append(("stream messages the chat refused (not a resume's loss)", str(total(st, "sender_errors"))))
    if errors:
        rows.append(("first error", errors[0][:200]))
    return rows, lost


def drain(args, c):
    gates = args.gates
    c.up(gates)
    cluster = ["nats", "chat"] + [f"gate{g}" for g in range(1, gates + 1)]
    nloads = args.loads or -(-args.sessions // PER_LOAD)
    loads, first = [], 1
    for l in range(1, nloads + 1):
        n = args.sessions // nloads + (1 if l <= args.sessions % nloads else 0)
        c.load(l, n, first, [1], list(range(2, gates + 1)), gates)
        loads.append(f"load{l}")
        first += n + args.rooms
    st = wait_ready(c, loads, args.sessions, cluster)
    ready = total(st, "ready")
    base = baseline(c, cluster)
    cpu0 = {n: c.cpu(n) for n in cluster}
    t0 = time.time_ns()
    c.procs["gate1"].send_signal(signal.SIGTERM)
    samples, deadline = [], time.time() + args.spread + 60
    while time.time() < deadline:
        c.alive(loads)
        st = c.statuses(loads)
        samples.append((time.time(), total(st, "moved")))
        if total(st, "moved") + total(st, "lost_sessions") >= ready:
            break
        time.sleep(0.05)
    t_end = time.time()
    others = sum(c.cpu(n) for n in cluster if n != "gate1") - sum(cpu0[n] for n in cluster if n != "gate1")
    gate1 = c.reap_cpu("gate1", 40)
    t_exit = time.time()
    st = c.statuses(loads)
    moved = total(st, "moved")
    first_move = min(s["first_move_ns"] for s in st if s["first_move_ns"]) if moved else t0
    last = max(s["last_moved_ns"] for s in st)
    span = (last - t0) / 1e9
    gate1_used = (gate1 - cpu0["gate1"]) if gate1 is not None else float("nan")
    used = others + gate1_used
    net = used - base * (t_end - t0 / 1e9)
    rows = [(f"sessions on the stopped gate (of {args.sessions}; {gates - 1} other gates take them)", f"{ready} ({total(st, 'failed')} failed to open)"),
            ("LL_Move heard by", f"{total(st, 'moves_told')}, the first {(first_move - t0) / 1e6:.0f} ms after the SIGTERM"),
            ("all handed over (resumed on another gate) after the SIGTERM", f"{span:.2f} s ({moved} moved; drain_spread {args.spread} s)"),
            ("the stopped gate exited after the SIGTERM", f"{t_exit - t0 / 1e9:.2f} s" if gate1 is not None else "not within 40 s"),
            ("reconnect rate the other gates absorb: mean over the drain / peak over 0.5 s", f"{moved / max(span, 1e-9):,.0f}/s / {peak_rate(samples):,.0f}/s"),
            ("CPU of the cluster (NATS, chat node, gates) over the drain", f"{used:.2f} s (the stopped gate {gate1_used:.2f} s); streams' share at the rate before: {base * (t_end - t0 / 1e9):.2f} s"),
            ("  per session handed over: all / less the streams' share", f"{used / max(moved, 1) * 1e6:,.0f} µs / {net / max(moved, 1) * 1e6:,.0f} µs")]
    st = settle_streams(c, loads)
    more, lost = stream_rows(st)
    return rows + more, {"mode": "drain", "sessions": ready, "moved": moved, "all_moved_s": round(span, 3),
                         "mean_rate": round(moved / max(span, 1e-9)), "peak_rate": round(peak_rate(samples)),
                         "cpu_s": round(used, 3), "cpu_us_per_session": round(used / max(moved, 1) * 1e6),
                         "net_cpu_us_per_session": round(net / max(moved, 1) * 1e6), "lost": lost,
                         "dups": total(st, "dups"), "lost_sessions": total(st, "lost_sessions")}


def storm(args, c):
    gates = args.gates
    c.up(gates)
    cluster = ["nats", "chat"] + [f"gate{g}" for g in range(1, gates + 1)]
    nloads = args.loads or -(-args.sessions // PER_LOAD)
    loads, first, every = [], 1, list(range(1, gates + 1))
    for l in range(1, nloads + 1):
        n = args.sessions // nloads + (1 if l <= args.sessions % nloads else 0)
        c.load(l, n, first, every, every, (l - 1) % gates + 1)
        loads.append(f"load{l}")
        first += n + args.rooms
    st = wait_ready(c, loads, args.sessions, cluster)
    ready = total(st, "ready")
    base = baseline(c, cluster)
    cpu0 = sum(c.cpu(n) for n in cluster)
    t0 = time.time_ns()
    for l in loads:
        c.procs[l].send_signal(signal.SIGUSR1)
    samples, deadline = [], time.time() + args.window + 60
    while time.time() < deadline:
        c.alive(loads + cluster)
        st = c.statuses(loads)
        samples.append((time.time(), total(st, "resumed")))
        cut = total(st, "cut")
        if cut >= ready - total(st, "lost_sessions") and total(st, "resumed") + total(st, "lost_sessions") >= cut:
            break
        time.sleep(0.05)
    t_end = time.time()
    used = sum(c.cpu(n) for n in cluster) - cpu0
    net = used - base * (t_end - t0 / 1e9)
    st = c.statuses(loads)
    resumed = total(st, "resumed")
    cut_at = min(s["cut_ns"] for s in st if s["cut_ns"])
    span = (max(s["last_resumed_ns"] for s in st) - cut_at) / 1e9
    rows = [(f"sessions over {gates} gates, cut at one instant", f"{total(st, 'cut')} of {ready} ({total(st, 'failed')} failed to open; SIGUSR1 to {nloads} loads within {(cut_at - t0) / 1e6:.1f} ms)"),
            ("all resumed on random gates after the cut", f"{span:.2f} s ({resumed} resumed)"),
            ("resume rate: mean / peak over 0.5 s", f"{resumed / max(span, 1e-9):,.0f}/s / {peak_rate(samples):,.0f}/s"),
            ("CPU of the cluster (NATS, chat node, gates) until then", f"{used:.2f} s; per session {used / max(resumed, 1) * 1e6:,.0f} µs, less the streams' share {net / max(resumed, 1) * 1e6:,.0f} µs")]
    st = settle_streams(c, loads)
    more, lost = stream_rows(st)
    return rows + more, {"mode": "storm", "sessions": ready, "resumed": resumed, "all_resumed_s": round(span, 3),
                         "mean_rate": round(resumed / max(span, 1e-9)), "peak_rate": round(peak_rate(samples)),
                         "cpu_s": round(used, 3), "lost": lost, "dups": total(st, "dups"),
                         "lost_sessions": total(st, "lost_sessions")}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["drain", "storm"])
    ap.add_argument("--sessions", type=int, default=None, help="drain: 10000; storm: 20000")
    ap.add_argument("--gates", type=int, default=None, help="drain: 3; storm: 5")
    ap.add_argument("--loads", type=int, default=0, help=f"load processes (default: one per {PER_LOAD} sessions)")
    ap.add_argument("--rooms", type=int, default=10, help="rooms per load process, each with its stream")
    ap.add_argument("--rate", type=float, default=2.0, help="stream messages a second per room")
    ap.add_argument("--spread", type=int, default=5, help="the gates' drain_spread, s")
    ap.add_argument("--window", type=int, default=30, help="the gates' resume_window, s")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, configs, statuses)")
    ap.add_argument("--bin", default=f"{ROOT}/target/release")
    ap.add_argument("--nats", default=os.environ.get("LONGLINK_NATS_SERVER", f"{ROOT}/.venv/bin/nats-server"))
    ap.add_argument("--port-base", type=int, default=int(os.environ.get("PORT_BASE", "27000")))
    args = ap.parse_args()
    args.sessions = args.sessions or (10000 if args.mode == "drain" else 20000)
    args.gates = args.gates or (3 if args.mode == "drain" else 5)
    for b in (f"{args.bin}/longlink-chat", f"{args.bin}/longlink-bench", args.nats):
        if not os.access(b, os.X_OK):
            sys.exit(f"bench-storm: no {b} (cargo build --release -p longlink-chat -p longlink-bench; scripts/test.sh installs nats-server)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    os.environ.setdefault("RUST_LOG", "warn")
    c = Cluster(args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        rows, result = (drain if args.mode == "drain" else storm)(args, c)
    finally:
        c.stop_all()
    width = max(len(a) for a, _ in rows)
    print(f"| {'what'.ljust(width)} | measured |")
    print(f"|{'-' * (width + 2)}|---|")
    for a, b in rows:
        print(f"| {a.ljust(width)} | {b} |")
    print(json.dumps(result))


main()
