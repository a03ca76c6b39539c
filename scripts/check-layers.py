#!/usr/bin/env python3
"""Checks that imports go one way: between the modules of the `longlink` library, and between
the files inside every crate of crates/.

Modules: every top-level module of crates/longlink/src (a file `x.rs` or a folder `x/`) has a
place in LAYERS, lowest first. A module may name (`crate::name`, in any code that is not a
comment) only modules below it; a name of a module above it, or an import cycle between
modules, makes this script fail with the offending lines.

Files: in each crates/*/src, every path a file names (`use crate::…`, `use super::…`,
`use self::…`, grouped `use crate::{a::b, c}` forms, a child module's name, and the same paths
written inline without `use`, e.g. `crate::gate::x::f()`) is followed to the file that defines
the item, through re-exports (`pub use`). An import cycle between files fails the check with
the circle's files and the lines that close it. A child module's use of its own parent (through
`super::` or a full path) does not count: it implements what the parent declares. A cycle
through siblings or further does.

Run it with `python3 scripts/check-layers.py`; the test command (scripts/test.sh) runs it too.
"""
import pathlib
import re
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from file_imports import Crate, cycles as file_cycles  # noqa: E402

# Lowest first. Modules on one line are one layer: they may not import each other.
LAYERS = [
    ["config", "metrics", "shutdown"],  # leaves
    ["log"],                            # [log] and the subscriber binaries install
    ["timer"],                          # timer tables and cron, for modules
    ["module"],                         # actors: task, state, mailbox, calls
    ["codec"],                          # one gate's message codec (on longlink-wire)
    ["agent"],                          # one connection as the application sees it
    ["processor"],                      # registration and routes; dispatch
    ["gate"],                           # listeners, admission, handshakes, connection task
    ["cluster"],                        # NATS: forwarding, directory, remote agents
    ["session"],                        # uids and groups
    ["admin"],                          # metrics endpoint and console
    ["app"],                            # runs it all
]

ROOT = pathlib.Path(__file__).resolve().parent.parent
SRC = ROOT / "crates" / "longlink" / "src"
RANK = {m: i for i, layer in enumerate(LAYERS) for m in layer}


def top_module(path: pathlib.Path) -> str | None:
    rel = path.relative_to(SRC)
    if rel.parts == ("lib.rs",):
        return None  # the root re-exports; it may name anything
    return rel.parts[0].removesuffix(".rs")


def code_lines(text: str):
    """(line number, code) with comments removed (line comments, doc comments, block comments)."""
    in_block = False
    for n, line in enumerate(text.splitlines(), 1):
        out = ""
        i = 0
        while i < len(line):
            if in_block:
                end = line.find("*/", i)
                if end < 0:
                    i = len(line)
                else:
                    in_block, i = False, end + 2
            elif line.startswith("/*", i):
                in_block, i = True, i + 2
            elif line.startswith("//", i):
                break
            elif line[i] == '"':
                # skip string literals (they may hold "crate::" in messages)
                j = i + 1
                while j < len(line) and line[j] != '"':
                    j += 2 if line[j] == "\\" else 1
                out += '""'
                i = j + 1
            else:
                out += line[i]
                i += 1
        yield n, out


def names_used(code: str) -> set[str]:
    """Top-level modules named by `crate::x` paths, including `use crate::{x::A, y}` groups."""
    found = set(re.findall(r"\bcrate::([a-z_][a-z0-9_]*)", code))
    for group in re.findall(r"\bcrate::\{([^}]*)\}?", code):
        found.update(re.findall(r"(?:^|,)\s*([a-z_][a-z0-9_]*)", group))
    return found


def main() -> int:
    problems = []
    edges: dict[str, set[str]] = {}
    for path in sorted(SRC.rglob("*.rs")):
        me = top_module(path)
        if me is None:
            continue
        if me not in RANK:
            problems.append(f"{path.relative_to(SRC)}: module `{me}` has no place in LAYERS")
            continue
        text = path.read_text()
        # A `use crate::{` group may span lines: join the group first.
        joined = re.sub(r"crate::\{[^}]*\}", lambda m: m.group(0).replace("\n", " "), text)
        for n, code in code_lines(joined):
            for other in names_used(code):
                if other == me or other not in RANK:
                    continue
                edges.setdefault(me, set()).add(other)
                if RANK[other] >= RANK[me]:
                    problems.append(
                        f"{path.relative_to(SRC)}:{n}: `{me}` names `{other}`, which is not below it: {code.strip()}"
                    )
    # Cycles (also reported by the rank check, but say which loop).
    seen, stack, cycles = set(), [], []

    def visit(m):
        if m in stack:
            cycles.append(stack[stack.index(m):] + [m])
            return
        if m in seen:
            return
        seen.add(m)
        stack.append(m)
        for o in sorted(edges.get(m, ())):
            visit(o)
        stack.pop()

    for m in sorted(edges):
        visit(m)
    for c in cycles:
        problems.append("import cycle: " + " -> ".join(c))
    files = 0
    for lib in sorted(ROOT.glob("crates/*/src/lib.rs")):
        crate = Crate(lib.parent)
        files += len(crate.module_of)
        for lines in file_cycles(crate):
            problems.append("\n".join(lines))
    if problems:
        print("layer check failed:", file=sys.stderr)
        for p in problems:
            print("  " + p, file=sys.stderr)
        return 1
    order = " -> ".join("/".join(layer) for layer in LAYERS)
    print(f"layers ok: {sum(1 for _ in SRC.rglob('*.rs'))} files, imports go one way ({order})")
    print(f"files ok: {files} files in crates/*/src, no import cycle between files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
