"""Where a process's resident bytes go, for scripts/bench_scale.py: the proportional set size
(a page shared by several processes, like the pages of one binary mapped by seven of them,
counts once in a sum of PSS and seven times in a sum of RSS), and for nats-server what its
monitoring and Go heap profile say (JetStream's store, the heap by function). Python's
standard library only."""

import http.client
import json
import math
import re


def smaps_rollup(pid):
    """Rss, Pss, Pss_Anon, Pss_File of /proc/<pid>/smaps_rollup, in bytes."""
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("Rss", "Pss", "Pss_Anon", "Pss_File", "Pss_Shmem"):
                out[key] = int(rest.split()[0]) * 1024
    return out


def _get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    c.close()
    return body


def nats_monitor(port):
    """nats-server's own view (`-m`): its Go heap in use, and JetStream's streams (messages,
    bytes on disk)."""
    varz = json.loads(_get(port, "/varz"))
    jsz = json.loads(_get(port, "/jsz?streams=true"))
    streams = []
    for account in jsz.get("account_details") or []:
        for s in account.get("stream_detail") or []:
            st = s.get("state", {})
            streams.append((s["name"], st.get("messages", 0), st.get("bytes", 0), st.get("num_subjects", 0), st.get("num_deleted", 0)))
    return {"mem": varz.get("mem", 0), "streams": streams, "subscriptions": varz.get("subscriptions", 0)}


_RECORD = re.compile(rb"^\s*(\d+): (\d+) \[\s*\d+: \d+\] @")
_FRAME = re.compile(rb"^#\s+0x[0-9a-f]+\s+(\S+)")


def go_heap_top(port, n=8, skip=("runtime.", "sync.", "bytes.", "strings.", "reflect.", "encoding/")):
    """nats-server's Go heap in use by the innermost function outside the Go runtime and the
    standard library (`--profile`, /debug/pprof/heap?debug=1): the `n` largest, as
    (function, bytes), and the total in use."""
    text = _get(port, "/debug/pprof/heap?debug=1")
    rate = int(re.search(rb"@ heap/(\d+)", text).group(1))
    by_fn, total, current = {}, 0, None
    for line in text.splitlines():
        m = _RECORD.match(line)
        if m:
            # Sampled: scaled up as pprof does (one sample per `rate` bytes on average).
            objects, size = int(m.group(1)), int(m.group(2))
            current = size / (1 - math.exp(-(size / objects) / rate)) if objects and size else 0
            total += current
            continue
        f = _FRAME.match(line)
        if f and current is not None:
            name = f.group(1).decode(errors="replace")
            if not name.startswith(skip):
                by_fn[name] = by_fn.get(name, 0) + current
                current = None
        elif not line.strip():
            current = None
    top = sorted(by_fn.items(), key=lambda kv: -kv[1])[:n]
    return top, total
