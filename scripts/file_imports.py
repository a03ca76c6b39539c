"""The file-level half of scripts/check-layers.py: which file of a crate imports which, and the
import cycles between them.

A crate is read from its `lib.rs`: `mod x;` declarations give its files, `mod x { … }` blocks
its inline modules. In each file, every path that starts at `crate`, `super`, `self`, a child
module or a name the module imported is followed to the file that defines its item: through
modules first, then through `use` bindings and globs (re-exports), to the module whose code
defines the name. A path to an outside crate makes no edge; nor does a file's use of itself or
of its parent module (a child implements what its parent declares).
"""
import pathlib
import re

WORD = r"[A-Za-z_][A-Za-z0-9_]*"
RAW_STRING = re.compile(r"(?<![A-Za-z0-9_])[bc]?r(#*)\"")
PLAIN_STRING = re.compile(r"(?<![A-Za-z0-9_])[bc]?\"")
CHAR = re.compile(r"'(?:\\u\{[0-9a-fA-F]{1,6}\}|\\x[0-9a-fA-F]{2}|\\.|[^\\'\n])'")
MOD_DECL = re.compile(rf"\bmod\s+(?:r#)?({WORD})\s*([;{{])")
USE_ITEM = re.compile(r"(?<![A-Za-z0-9_$])use\s")
DEFINITION = re.compile(
    rf"\b(?:fn|struct|enum|trait|type|const|static|union|macro_rules!)\s+(?=(?:r#)?({WORD}))"
)
PATH = re.compile(rf"(?<![A-Za-z0-9_:.$'])(\$?{WORD})((?:\s*::\s*{WORD})+)")


def blank(s: str) -> str:
    return re.sub(r"[^\n]", " ", s)


def strip(text: str) -> str:
    """The code with comments and string and char literals blanked; offsets and lines kept."""
    out, i, n = [], 0, len(text)
    while i < n:
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
        elif m := RAW_STRING.match(text, i):
            end = text.find('"' + m.group(1), m.end())
            j = n if end < 0 else end + 1 + len(m.group(1))
        elif m := PLAIN_STRING.match(text, i):
            j = m.end()
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j += 1
        elif m := CHAR.match(text, i):
            j = m.end()
        else:
            out.append(text[i])
            i += 1
            continue
        out.append(blank(text[i:j]))
        i = j
    return "".join(out)


def matching_brace(code: str, open_at: int) -> int:
    depth = 0
    for j in range(open_at, len(code)):
        if code[j] == "{":
            depth += 1
        elif code[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return len(code)


def use_tree(text: str) -> list[tuple[list[str], str]]:
    """The paths of one `use` tree (without `use` and `;`), each with the name it binds
    (`*` for a glob)."""
    toks = re.findall(r"::|[{},*]|\$?[A-Za-z_][A-Za-z0-9_]*", text)
    pos = 0

    def tree(prefix: list[str]) -> list[tuple[list[str], str]]:
        nonlocal pos
        path = list(prefix)
        while pos < len(toks):
            t = toks[pos]
            if t == "::":
                pos += 1
            elif t == "{":
                pos += 1
                found = []
                while pos < len(toks) and toks[pos] != "}":
                    found += tree(path)
                    if pos < len(toks) and toks[pos] == ",":
                        pos += 1
                pos += 1
                return found
            elif t == "*":
                pos += 1
                return [(path, "*")]
            elif t == "as" and pos + 1 < len(toks):
                pos += 2
                return [(path[:-1] if path[-1] == "self" else path, toks[pos - 1])]
            elif t in (",", "}"):
                break
            else:
                path.append(t)
                pos += 1
        if path and path[-1] == "self":
            path = path[:-1]
        return [(path, path[-1])] if path else []

    return tree([])


class Crate:
    """One crate's modules, the file of each, and what each module imports and defines."""

    def __init__(self, src: pathlib.Path):
        self.src = src
        self.file_of: dict[tuple, pathlib.Path] = {}  # module -> file (inline: its file's)
        self.module_of: dict[pathlib.Path, tuple] = {}  # file -> its (file) module
        self.code: dict[pathlib.Path, str] = {}
        self.spans: dict[pathlib.Path, list[tuple[int, int, tuple]]] = {}  # inline modules
        self.bindings: dict[tuple, dict[str, list[str]]] = {}
        self.globs: dict[tuple, list[list[str]]] = {}
        self.defines: dict[tuple, set[str]] = {}
        self.uses: dict[pathlib.Path, list[tuple[int, tuple, list[str]]]] = {}
        self.add_file(src / "lib.rs", ())

    def add_file(self, path: pathlib.Path, module: tuple):
        code = strip(path.read_text())
        self.code[path], self.module_of[path], self.file_of[module] = code, module, path
        self.spans[path] = []
        for m in MOD_DECL.finditer(code):
            child = self.module_at(path, m.start()) + (m.group(1),)
            if m.group(2) == "{":
                end = matching_brace(code, m.end() - 1)
                self.spans[path].append((m.end(), end, child))
                self.file_of[child] = path
            else:
                base = self.src.joinpath(*child)
                file = base.with_suffix(".rs")
                self.add_file(file if file.exists() else base / "mod.rs", child)
        for module in {module} | {s[2] for s in self.spans[path]}:
            self.defines[module] = set()
        for m in DEFINITION.finditer(code):
            self.defines[self.module_at(path, m.start())].add(m.group(1))
        self.uses[path] = []
        for m in USE_ITEM.finditer(code):
            end = code.find(";", m.end())
            ctx = self.module_at(path, m.start())
            for segs, name in use_tree(code[m.end() : end]):
                self.uses[path].append((m.start(), ctx, segs))
                if name == "*":
                    self.globs.setdefault(ctx, []).append(segs)
                else:
                    self.bindings.setdefault(ctx, {})[name] = segs
            code = code[: m.start()] + blank(code[m.start() : end]) + code[end:]
        for m in PATH.finditer(code):
            segs = [m.group(1)] + re.findall(WORD, m.group(2))
            self.uses[path].append((m.start(), self.module_at(path, m.start()), segs))

    def module_at(self, path: pathlib.Path, pos: int) -> tuple:
        inner = [s for s in self.spans.get(path, []) if s[0] <= pos <= s[1]]
        return max(inner, key=lambda s: s[0])[2] if inner else self.module_of[path]

    def absolute(self, ctx: tuple, segs: list[str], seen: frozenset) -> list[str] | None:
        """`segs`, as written in module `ctx`, from the crate root; None for another crate."""
        first, rest = segs[0], segs[1:]
        if first in ("crate", "$crate"):
            return rest
        if first in ("self", "super"):
            base = ctx
            while rest and first == "super":
                base, first, rest = base[:-1], rest[0], rest[1:]
            if first == "super":
                base = base[:-1]
            elif first != "self":
                rest = [first] + rest
            return list(base) + rest
        if ctx + (first,) in self.file_of:
            return list(ctx) + segs
        bound = self.bindings.get(ctx, {}).get(first)
        if bound is not None and (ctx, first) not in seen:
            base = self.absolute(ctx, bound, seen | {(ctx, first)})
            return None if base is None else base + rest
        return None

    def defining_file(self, segs: list[str], seen: frozenset = frozenset()):
        """The file whose code defines what the absolute path names (None: not found)."""
        module = ()
        for i, seg in enumerate(segs):
            if module + (seg,) in self.file_of:
                module += (seg,)
                continue
            if seg in self.defines.get(module, ()):
                return self.file_of[module]
            key = (module, seg)
            if key in seen:
                return None
            bound = self.bindings.get(module, {}).get(seg)
            if bound is not None:
                target = self.absolute(module, bound, seen)
                return None if target is None else self.defining_file(target + segs[i + 1 :], seen | {key})
            for glob in self.globs.get(module, []):
                target = self.absolute(module, glob, seen)
                if target is not None:
                    found = self.defining_file(target + segs[i:], seen | {key})
                    if found is not None:
                        return found
            return self.file_of[module]
        return self.file_of[module]

    def edges(self):
        """(from file, to file, line, the path as written), one per path that counts."""
        for path, uses in self.uses.items():
            module = self.module_of[path]
            parent = self.file_of.get(module[:-1]) if module else None
            for pos, ctx, segs in uses:
                target = self.absolute(ctx, segs, frozenset())
                file = None if target is None else self.defining_file(target)
                if file is not None and file not in (path, parent):
                    line = self.code[path].count("\n", 0, pos) + 1
                    yield path, file, line, "::".join(segs)


def cycles(crate: Crate) -> list[list[str]]:
    """Each group of files that import each other in a circle: its files, then the lines that
    tie them, as messages."""
    graph: dict[pathlib.Path, dict[pathlib.Path, tuple[int, str]]] = {}
    for a, b, line, what in crate.edges():
        graph.setdefault(a, {}).setdefault(b, (line, what))
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def connect(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, {})):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    root = crate.src.parent.parent.parent
    name = lambda f: str(f.relative_to(root))
    out = []
    for group in groups:
        lines = [f"import cycle between {len(group)} files: " + ", ".join(name(f) for f in group)]
        for a in group:
            for b, (line, what) in sorted(graph.get(a, {}).items()):
                if b in group:
                    lines.append(f"    {name(a)}:{line} -> {name(b)} ({what})")
        out.append(lines)
    return out
