#!/usr/bin/env python3
"""What holds a process's heap, by allocation site, from a heap profile in pprof's format
(longlink's `prof heap` or `GET /debug/pprof/heap`), without Go's pprof: Python's standard
library and binutils' addr2line.

usage: python3 scripts/heap-top.py BINARY heap.pb.gz [N] [DEPTH]

Prints the bytes in use (as the profile estimates them) and the N (30) largest sites: each
the first DEPTH (4) frames of the allocating stack outside the allocator, the standard
library and the async runtime's plumbing, innermost first. Give the very binary that ran
(its line tables are what name the frames).
"""
import gzip
import subprocess
import sys
from collections import defaultdict


def varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7


def fields(buf):
    """(field number, wire type, value) of one protobuf message; value is an int or bytes."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(buf, i)
        elif wt == 2:
            n, i = varint(buf, i)
            v, i = buf[i : i + n], i + n
        elif wt == 1:
            v, i = int.from_bytes(buf[i : i + 8], "little"), i + 8
        elif wt == 5:
            v, i = int.from_bytes(buf[i : i + 4], "little"), i + 4
        else:
            raise ValueError(f"wire type {wt}")
        yield num, wt, v


def ints(wt, v):
    """A repeated integer field's values: packed (bytes) or one."""
    if wt != 2:
        return [v]
    out, i = [], 0
    while i < len(v):
        x, i = varint(v, i)
        out.append(x)
    return out


def parse(data):
    samples, mappings, locations, strings, types = [], [], {}, [], []
    for num, wt, v in fields(data):
        if num == 1:
            types.append([x for _, _, x in fields(v)])
        elif num == 2:
            locs, vals = [], []
            for n2, w2, v2 in fields(v):
                if n2 == 1:
                    locs += ints(w2, v2)
                elif n2 == 2:
                    vals += ints(w2, v2)
            samples.append((locs, vals))
        elif num == 3:
            m = {n2: v2 for n2, _, v2 in fields(v)}
            mappings.append(m)
        elif num == 4:
            loc = {n2: v2 for n2, _, v2 in fields(v)}
            locations[loc.get(1)] = (loc.get(2, 0), loc.get(3, 0))
        elif num == 6:
            strings.append(v.decode(errors="replace"))
    types = [(strings[t[0]] if t else "", strings[t[1]] if len(t) > 1 else "") for t in types]
    return samples, mappings, locations, strings, types


def symbolize(binary, addrs):
    """Address in the binary (as jemalloc_pprof writes them: relative to where it is
    loaded) -> list of frame names (inlined frames included, innermost first)."""
    out = subprocess.run(
        ["addr2line", "-f", "-C", "-i", "-a", "-e", binary],
        input="\n".join(hex(a - 1) for a in addrs),
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    names, current, i = {}, None, 0
    order = iter(addrs)
    while i < len(out):
        line = out[i]
        if line.startswith("0x"):
            current = next(order)
            names[current] = []
            i += 1
            continue
        names[current].append(line.split("::h")[0] if "::h" in line else line)
        i += 2  # function name, then file:line
    return names


BORING = (
    "alloc::", "core::", "std::", "_rjem", "tikv_jemalloc", "je_", "__rust", "<alloc::",
    "<core::", "<std::", "<<alloc::", "<<core::", "<<std::", "hashbrown::", "<hashbrown::", "bytes::", "<bytes::", "??",
    "prof_", "imalloc", "malloc", "calloc", "realloc", "arena_", "tcache_", "<T as ",
)


def main():
    binary, path = sys.argv[1], sys.argv[2]
    top = int(sys.argv[3]) if len(sys.argv) > 3 else 30
    depth = int(sys.argv[4]) if len(sys.argv) > 4 else 4
    samples, mappings, locations, strings, types = parse(gzip.open(path).read())
    # Only the binary's own frames are named (not libc's and the like).
    name = binary.rsplit("/", 1)[-1]
    exe = {m.get(1) for m in mappings if strings[m.get(5, 0)].rsplit("/", 1)[-1] == name}
    offs = {lid: (a if mid in exe else None) for lid, (mid, a) in locations.items()}
    names = symbolize(binary, sorted({o for o in offs.values() if o is not None}))
    vi = next((i for i, t in enumerate(types) if "space" in t[0] or "bytes" in t[1]), len(types) - 1)
    by_site, total = defaultdict(int), 0
    for locs, vals in samples:
        v = vals[vi] if vi < len(vals) else 0
        total += v
        frames = []
        for lid in locs:
            o = offs.get(lid)
            frames += names.get(o, ["??"]) if o is not None else ["??"]
        kept = [f for f in frames if not f.startswith(BORING)]
        by_site[" < ".join(kept[:depth]) or "(allocator only)"] += v
    print(f"sample types {types}; in use: {total / 2**20:.1f} MiB over {len(samples)} stacks")
    for site, v in sorted(by_site.items(), key=lambda kv: -kv[1])[:top]:
        print(f"{v / 2**20:8.2f} MiB  {100 * v / max(total, 1):5.1f}%  {site}")


if __name__ == "__main__":
    main()
