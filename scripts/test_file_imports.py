#!/usr/bin/env python3
"""Tests of the file-level import check (scripts/file_imports.py) on small crates written to a
temporary folder. Run with `python3 scripts/test_file_imports.py`; scripts/test.sh runs it.
"""
import pathlib
import sys
import tempfile
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from file_imports import Crate, cycles  # noqa: E402


def crate(files: dict[str, str]) -> Crate:
    """A crate at crates/t/src with the given files (path -> text)."""
    root = pathlib.Path(tempfile.mkdtemp())
    src = root / "crates" / "t" / "src"
    for path, text in files.items():
        (src / path).parent.mkdir(parents=True, exist_ok=True)
        (src / path).write_text(text)
    return Crate(src)


def edges(c: Crate) -> set[tuple[str, str]]:
    name = lambda f: str(f.relative_to(c.src))
    return {(name(a), name(b)) for a, b, _, _ in c.edges()}


class FileImports(unittest.TestCase):
    def test_grouped_use_and_an_inline_path_through_a_reexport_close_a_circle(self):
        c = crate({
            "lib.rs": "mod x;\nmod y;\npub use x::X;\n",
            "x.rs": "use crate::{y::{self, Y}};\npub struct X;\n",
            "y.rs": "pub struct Y;\nfn k() { let _ = crate::X; }\n",
        })
        self.assertEqual(edges(c), {("lib.rs", "x.rs"), ("x.rs", "y.rs"), ("y.rs", "x.rs")})
        [found] = cycles(c)
        self.assertIn("import cycle between 2 files: crates/t/src/x.rs, crates/t/src/y.rs", found[0])
        self.assertIn("    crates/t/src/y.rs:2 -> crates/t/src/x.rs (crate::X)", found)

    def test_a_child_using_its_parent_does_not_count_but_siblings_do(self):
        c = crate({
            "lib.rs": "mod m;\n",
            "m/mod.rs": "mod a;\nmod b;\npub(crate) struct P;\nfn f() { a::g(); }\n",
            "m/a.rs": "use super::P;\nuse super::b::H;\npub(crate) fn g() { let _ = crate::m::P; }\n",
            "m/b.rs": "pub(crate) struct H;\nfn h() { super::a::g() }\n",
        })
        self.assertEqual(edges(c), {("m/mod.rs", "m/a.rs"), ("m/a.rs", "m/b.rs"), ("m/b.rs", "m/a.rs")})
        self.assertEqual(len(cycles(c)), 1)

    def test_comments_strings_chars_and_other_crates_make_no_edge(self):
        c = crate({
            "lib.rs": "mod p;\nmod q;\n",
            "p.rs": "pub(crate) fn f() { super::q::g() }\n#[cfg(test)]\nmod tests { use super::*; }\n",
            "q.rs": "/* crate::p::f() */\n// crate::p::f()\npub(crate) fn g() {\n"
            "    let _ = (r#\"crate::p::f\"#, \"crate::p\", '{', std::fmt::Error);\n}\n",
        })
        self.assertEqual(edges(c), {("p.rs", "q.rs")})
        self.assertEqual(cycles(c), [])

    def test_self_paths_and_inline_modules_resolve(self):
        c = crate({
            "lib.rs": "mod p;\nmod q;\n",
            "p.rs": "mod inner { pub(crate) fn f() { super::super::q::g() } }\n"
            "fn f() { self::inner::f() }\n",
            "q.rs": "pub(crate) fn g() {}\nfn h() { crate::p::f2() }\n",
        })
        self.assertEqual(edges(c), {("p.rs", "q.rs"), ("q.rs", "p.rs")})


if __name__ == "__main__":
    unittest.main()
