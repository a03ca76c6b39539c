"""The measuring half of scripts/bench-scale.sh (which starts the processes and stops them):
reads the `longlink-bench hold` status files and /proc, drives the server API over HTTP and
over NATS (a minimal NATS client of its own: Python's standard library only), and prints the
table. Run by bench-scale.sh, with its settings in the environment."""

import http.client
import json
import os
import random
import socket
import sys
import time

import bench_scale_mem as bsm

E = os.environ
WORK, KEY, BASE = E["WORK"], E["KEY"], int(E["BASE"])
CONNS, GATES, LOADS, SINGLE = (int(E[k]) for k in ("CONNS", "GATES", "LOADS", "SINGLE"))
ROUNDS, PUSHES, BATCH, BATCHES = (int(E[k]) for k in ("ROUNDS", "PUSHES", "BATCH", "BATCHES"))
SETTLE = float(E.get("SETTLE") or 2)
MEM_ONLY = bool(E.get("MEM_ONLY"))
QUIET_WAIT = float(E.get("QUIET_WAIT") or 60)
HEAP = E.get("HEAP") or ""
TICK = os.sysconf("SC_CLK_TCK")
CLUSTER = ["nats", "chat"] + [f"gate{g}" for g in range(1, GATES + 1)]
LOAD_FILES = [f"load{n}" for n in range(1, LOADS + 1)]


def pid(name):
    with open(f"{WORK}/{name}.pid") as f:
        return int(f.read())


def proc_mem(name):
    """VmRSS, RssAnon, RssFile (+ shmem) in bytes."""
    out = {}
    with open(f"/proc/{pid(name)}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                out[key] = int(rest.split()[0]) * 1024
    return out


def cpu_secs(names):
    total = 0
    for n in names:
        with open(f"/proc/{pid(n)}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / TICK


def status(name):
    for _ in range(50):
        try:
            with open(f"{WORK}/{name}.json") as f:
                return json.load(f)
        except (OSError, ValueError):
            time.sleep(0.02)
    return None


def statuses(names):
    return [s for s in (status(n) for n in names) if s]


def alive(names):
    for n in names:
        if not os.path.exists(f"/proc/{pid(n)}"):
            err = open(f"{WORK}/{n}.err").read()[-2000:]
            sys.exit(f"bench-scale: {n} exited: {err}")


def wait_logins(names, total, limit):
    deadline = time.time() + limit
    while time.time() < deadline:
        alive(names + CLUSTER + ["single"])
        st = statuses(names)
        if len(st) == len(names) and sum(s["logged_in"] + s["failed"] for s in st) >= total:
            return st
        time.sleep(0.2)
    return statuses(names)


def api_http(port, path, body):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("POST", path, json.dumps(body), {"Authorization": f"Bearer {KEY}"})
    r = c.getresponse()
    answer = json.loads(r.read())
    c.close()
    return answer


def message(text):
    return {"S2C_Message": {"room_id": 0, "from_uid": 0, "to_uid": 0, "text": text, "ts": 0}}


def broadcasts(port, names, members):
    """ROUNDS broadcasts to everyone through `port`'s API, one after another; each one's time
    until every member has it (ms), and the servers' CPU seconds over all of them."""
    times = []
    for r in range(ROUNDS):
        t0 = time.time_ns()
        api_http(port, "/api/v1/broadcast", {"message": message(f"b{r}")})
        deadline = time.time() + 60
        while True:
            st = statuses(names)
            got = sum(s["rounds"][r][0] for s in st)
            if got >= members or time.time() > deadline:
                break
            time.sleep(0.02)
        last = max(s["rounds"][r][1] for s in st)
        times.append(((last - t0) / 1e6, got))
    return times


def pct(values, q):
    v = sorted(values)
    return v[max(0, min(len(v) - 1, int(q * len(v) + 0.999999) - 1))]


class Nats:
    """Requests over a raw NATS connection, many in flight."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.f = self.sock.makefile("rb")
        self.f.readline()  # INFO
        self.sock.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\nSUB _INBOX.bs.* 1\r\nPING\r\n')
        while self.f.readline().strip() != b"PONG":
            pass

    def requests(self, subject, bodies, window=64):
        answers, sent, i = [], 0, 0
        while len(answers) < len(bodies):
            while sent < len(bodies) and sent - len(answers) < window:
                data = json.dumps(bodies[sent]).encode()
                self.sock.sendall(b"PUB %s _INBOX.bs.%d %d\r\n%s\r\n" % (subject.encode(), sent, len(data), data))
                sent += 1
            line = self.f.readline()
            if line.startswith(b"PING"):
                self.sock.sendall(b"PONG\r\n")
            elif line.startswith(b"MSG"):
                size = int(line.split()[-1])
                answers.append(json.loads(self.f.read(size + 2)[:size]))
            i += 1
        return answers


def pushes_rate(send, count):
    """Runs `send` (returns how many pushes the API took) and waits until the loads have
    received them: pushes per second, end to end."""
    before = sum(s["pushes"] for s in statuses(LOAD_FILES))
    t0 = time.time()
    took = send()
    deadline = time.time() + 60
    while True:
        got = sum(s["pushes"] for s in statuses(LOAD_FILES)) - before
        if got >= took or time.time() > deadline:
            break
        time.sleep(0.02)
    return got / (time.time() - t0), got, count


def kib(b):
    return f"{b / 1024:.2f} KiB"


def memory_detail(logged):
    """Rows: the summed proportional set size (shared pages once), and what nats-server
    holds (JetStream's directory, its Go heap by function)."""
    rows = [pss_row(logged, "PSS per connection, summed (a page shared by processes counted once)")]
    rows.extend(nats_rows())
    return rows


def pss_row(logged, what):
    """A row: the proportional set size summed over the cluster, per connection."""
    pss = {n: bsm.smaps_rollup(pid(n)) for n in CLUSTER}
    total = sum(p["Pss"] for p in pss.values())
    anon = sum(p["Pss_Anon"] for p in pss.values())
    per = ", ".join(f"{n} {p['Pss_Anon'] / 2**20:.1f}" for n, p in pss.items())
    return (what, f"{kib(total / max(logged, 1))} (anon {kib(anon / max(logged, 1))}, file {kib((total - anon) / max(logged, 1))}; anon MiB: {per})")


def nats_rows():
    """Rows: what nats-server holds (JetStream's directory, its Go heap by function)."""
    rows = []
    try:
        mon = bsm.nats_monitor(BASE + 200)
        for name, msgs, size, subjects, deleted in mon["streams"]:
            rows.append((f"  nats: stream {name}", f"{msgs} messages, {size / 2**20:.1f} MiB, {subjects} subjects, {deleted} deleted"))
        top, heap = bsm.go_heap_top(BASE + 201)
        rows.append(("  nats: Go heap in use (sampled), largest by function", f"{heap / 2**20:.1f} MiB: " + ", ".join(f"{fn.rsplit('/', 1)[-1]} {b / 2**20:.1f}" for fn, b in top[:6])))
    except (OSError, ValueError, AttributeError, KeyError) as e:
        rows.append(("  nats: monitoring", f"not read: {e}"))
    return rows


def idle_cpu(secs=10):
    """A row: the cluster's CPU while nothing is asked of it (timers, what the logins left
    to do), as a share of one core; and that share."""
    cpu0, t0 = cpu_secs(CLUSTER), time.time()
    per = {n: cpu_secs([n]) for n in CLUSTER}
    time.sleep(secs)
    span = time.time() - t0
    per = {n: (cpu_secs([n]) - c) / span for n, c in per.items()}
    busiest = ", ".join(f"{n} {v * 100:.0f}%" for n, v in sorted(per.items(), key=lambda kv: -kv[1])[:3])
    share = (cpu_secs(CLUSTER) - cpu0) / span
    return (f"cluster CPU while idle ({secs} s, nothing asked)", f"{share * 100:.0f}% of a core ({busiest})"), share


def until_quiet(limit=QUIET_WAIT, below=0.05, window=2.0):
    """Waits until the cluster's CPU over `window` seconds is under `below` of a core (what
    the login storm left, nats-server's collection after it, room counts still going out,
    is done), at most `limit` seconds; gives the seconds waited."""
    t0 = time.time()
    while time.time() - t0 < limit:
        c0, w0 = cpu_secs(CLUSTER), time.time()
        time.sleep(window)
        if (cpu_secs(CLUSTER) - c0) / (time.time() - w0) < below:
            break
    return time.time() - t0


def main():
    rows = []
    st = wait_logins(LOAD_FILES, CONNS, 120 + CONNS / 200)
    logged = sum(s["logged_in"] for s in st)
    failed = sum(s["failed"] for s in st)
    span = (max(s["last_login_ns"] for s in st) - min(s["started_ns"] for s in st)) / 1e9
    rows.append(("connections logged in and watching (one of 100 rooms, and everyone's room)", f"{logged} of {CONNS} ({failed} failed) on {GATES} gates"))
    rows.append(("connects + logins per second (all loads)", f"{logged / max(span, 1e-9):,.0f}/s ({span:.1f} s)"))
    rows.append(("load average (1, 5, 15 min) after the logins", " ".join(open("/proc/loadavg").read().split()[:3])))
    errors = [s["first_error"] for s in st if s["first_error"]]
    if errors:
        rows.append(("first failure", errors[0][:160]))
    if SINGLE:
        wait_logins(["loadsingle"], SINGLE, 120 + SINGLE / 200)
    time.sleep(SETTLE)

    mem = {n: proc_mem(n) for n in CLUSTER}
    total = sum(m["VmRSS"] for m in mem.values())
    rows.append(("RSS per connection, summed over NATS + chat node + gates", kib(total / max(logged, 1))))
    for n in CLUSTER:
        m = mem[n]
        conns = max(logged if n in ("nats", "chat") else logged / GATES, 1)
        whose = "of the cluster" if n in ("nats", "chat") else "it holds"
        rows.append((f"  {n}: RSS = anon + file", f"{m['VmRSS'] / 2**20:.1f} MiB = {m['RssAnon'] / 2**20:.1f} + {m['RssFile'] / 2**20:.1f}; per connection {whose}: {kib(m['VmRSS'] / conns)}, anon {kib(m['RssAnon'] / conns)}"))
    anon = sum(m["RssAnon"] for m in mem.values())
    rows.insert(-len(CLUSTER), ("  of which anonymous (heap, stacks; not the binaries' pages)", kib(anon / max(logged, 1))))
    if SINGLE:
        single_st = statuses(["loadsingle"])
        held = max(single_st[0]["logged_in"] if single_st else 0, 1)
        m = proc_mem("single")
        rows.append((f"  one process, {held} connections: RSS = anon + file", f"{m['VmRSS'] / 2**20:.1f} MiB = {m['RssAnon'] / 2**20:.1f} + {m['RssFile'] / 2**20:.1f}; anon per connection {kib(m['RssAnon'] / held)}"))
    rows.extend(memory_detail(logged))
    row, idle = idle_cpu()
    rows.append(row)
    if QUIET_WAIT > 0:
        # The broadcasts' CPU per delivery is measured on a cluster at rest, as the one
        # process's is: not while it still digests the login storm. Its memory then too:
        # what nats-server caches of the directory's blocks and its Go heap's garbage
        # from the storm are gone or going.
        waited = until_quiet()
        row, idle = idle_cpu()
        rows.append((f"  again once the cluster is quiet ({waited:.0f} s later, at most {QUIET_WAIT:.0f})", row[1]))
        rows.append(pss_row(logged, "  PSS per connection, summed, at rest (then)"))
        rows.extend((f"  at rest: {what.strip()}", v) for what, v in nats_rows() if "heap" in what)
    if HEAP:
        rows.append(("heap profiles (scripts/heap-top.py reads them)", heap_profiles()))
    if MEM_ONLY:
        return print_rows(rows)

    cpu0, t0 = cpu_secs(CLUSTER), time.time()
    times = broadcasts(BASE + 100, LOAD_FILES, logged)
    cluster_cpu = cpu_secs(CLUSTER) - cpu0
    busy_span = time.time() - t0
    ms = [t for t, _ in times]
    complete = sum(1 for _, got in times if got >= logged)
    rows.append((f"broadcast to all {logged} (cluster): every member has it, p50 / p99 over {ROUNDS}", f"{pct(ms, 0.5):.0f} / {pct(ms, 0.99):.0f} ms ({complete}/{ROUNDS} reached everyone)"))
    per_cluster = cluster_cpu / max(logged * ROUNDS, 1) * 1e6
    less_idle = max(cluster_cpu - idle * busy_span, 0) / max(logged * ROUNDS, 1) * 1e6
    rows.append(("  server CPU per delivery (NATS + chat + gates); less the idle share over the rounds", f"{per_cluster:.2f} µs; {less_idle:.2f} µs"))
    if SINGLE:
        single_st = statuses(["loadsingle"])
        members = single_st[0]["logged_in"] if single_st else 0
        cpu0 = cpu_secs(["single"])
        times = broadcasts(BASE + 199, ["loadsingle"], members)
        single_cpu = cpu_secs(["single"]) - cpu0
        per_single = single_cpu / max(members * ROUNDS, 1) * 1e6
        ms = [t for t, _ in times]
        rows.append((f"  one process, {members} members: p50 / p99; CPU per delivery", f"{pct(ms, 0.5):.0f} / {pct(ms, 0.99):.0f} ms; {per_single:.2f} µs (cluster: {per_cluster / max(per_single, 1e-9):.2f}x; less its idle share: {less_idle / max(per_single, 1e-9):.2f}x)"))

    rng = random.Random(26)
    uids = lambda n: [rng.randint(1, CONNS) for _ in range(n)]
    http_port = BASE + 101

    def http_single():
        c = http.client.HTTPConnection("127.0.0.1", http_port, timeout=60)
        took = 0
        for uid in uids(PUSHES):
            c.request("POST", "/api/v1/push", json.dumps({"uid": uid, "message": message("p")}), {"Authorization": f"Bearer {KEY}"})
            took += json.loads(c.getresponse().read()).get("delivered") is True
        c.close()
        return took

    def http_batch():
        c = http.client.HTTPConnection("127.0.0.1", http_port, timeout=60)
        took = 0
        for _ in range(BATCHES):
            body = {"push": [{"uids": sorted(set(uids(BATCH))), "message": message("p")}]}
            c.request("POST", "/api/v1/batch", json.dumps(body), {"Authorization": f"Bearer {KEY}"})
            took += json.loads(c.getresponse().read()).get("delivered", 0)
        c.close()
        return took

    nats = Nats(BASE)

    def nats_single():
        answers = nats.requests("longlink.api.push", [{"uid": u, "message": message("p")} for u in uids(PUSHES)])
        return sum(a.get("delivered") is True for a in answers)

    def nats_batch():
        bodies = [{"push": [{"uids": sorted(set(uids(BATCH))), "message": message("p")}]} for _ in range(BATCHES)]
        return sum(a.get("delivered", 0) for a in nats.requests("longlink.api.batch", bodies, window=2))

    for label, send, count in (
        ("HTTP, one request per push (one keep-alive connection, in turn)", http_single, PUSHES),
        (f"HTTP, batches of {BATCH} uids", http_batch, BATCHES * BATCH),
        ("NATS, one request per push (64 in flight)", nats_single, PUSHES),
        (f"NATS, batches of {BATCH} uids (2 in flight)", nats_batch, BATCHES * BATCH),
    ):
        rate, got, _ = pushes_rate(send, count)
        rows.append((f"pushes by uid over all gates: {label}", f"{rate:,.0f}/s ({got} received)"))
    rows.append(("resume storm (20,000 sessions cut at once, to random gates)", "a run of its own: STORM=20000 bash scripts/bench-scale.sh, or python3 scripts/bench_storm.py storm"))
    print_rows(rows)


def heap_profiles():
    """Saves the heap profiles of the chat node, gate 1 and the one process (started with
    sampling on) under HEAP; their names."""
    saved = []
    for name, port in (("chat", BASE + 100), ("gate1", BASE + 101), ("single", BASE + 199)):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        c.request("GET", "/debug/pprof/heap", headers={"Authorization": f"Bearer {KEY}"})
        r = c.getresponse()
        body = r.read()
        c.close()
        if r.status != 200:
            saved.append(f"{name}: HTTP {r.status} {body[:80]!r}")
            continue
        path = os.path.join(HEAP, f"{name}.pb.gz")
        with open(path, "wb") as f:
            f.write(body)
        saved.append(path)
    return ", ".join(saved)


def print_rows(rows):
    width = max(len(a) for a, _ in rows)
    print(f"| {'what'.ljust(width)} | measured |")
    print(f"|{'-' * (width + 2)}|---|")
    for a, b in rows:
        print(f"| {a.ljust(width)} | {b} |")


main()
