#!/usr/bin/env python3
"""Import circles between the source files of each crate.

A file `a.rs` imports `b.rs` when it names a path into `b` (`use crate::b::…`,
`crate::b::f()`, `super::b`, `use crate::{b, …}`); `mod` declarations are not
imports. Prints each circle (a strongly connected component of two or more
files) and exits 1 when there is one. `V=1` prints every edge.
Usage: scripts/import-cycles.py [CRATE_DIR ...]   (default: every crate)
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRATES = ["client", "gui", "registry", "proto", "e2e", "bench", "installer"]
IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def modules(src):
    """module path tuple -> file, for every .rs file under src/."""
    mods = {}
    for dirpath, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            full = os.path.join(dirpath, f)
            rel = os.path.relpath(full, src)[:-3].split(os.sep)
            if rel[-1] == "mod":
                rel = rel[:-1]
            if rel in (["lib"], ["main"]):
                rel = []
            elif rel[:1] == ["bin"]:
                continue
            mods.setdefault(tuple(rel), full)
    return mods


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(line.split("//")[0] for line in text.splitlines())


def expand_groups(text):
    """`crate::a::{b, c::d}` -> `crate::a::b crate::a::c::d` (one level)."""
    def repl(m):
        head, body = m.group(1), m.group(2)
        parts = [p.strip() for p in body.split(",") if p.strip()]
        return " ".join(f"{head}::{p.split(' as ')[0].strip()}" for p in parts)

    for _ in range(3):
        text = re.sub(r"((?:crate|super|self)(?:::" + IDENT + r")*)::\{([^{}]*)\}", repl, text)
    return text


def resolve(mods, here, path):
    """The module file a path (list of names, absolute) lands in."""
    for n in range(len(path), -1, -1):
        if tuple(path[:n]) in mods:
            return tuple(path[:n])
    return None


def edges_of(mods, mod, file):
    text = expand_groups(strip_comments(open(file, encoding="utf-8").read()))
    text = re.sub(r"^\s*(pub(\([^)]*\))?\s+)?mod\s+" + IDENT + r"\s*;", "", text, flags=re.M)
    out = set()
    for m in re.finditer(r"\b((?:crate|super|self)(?:::(?:super|" + IDENT + r"))+)", text):
        segs = m.group(1).split("::")
        base = list(mod)
        if segs[0] == "crate":
            base, segs = [], segs[1:]
        elif segs[0] == "self":
            base, segs = list(mod), segs[1:]
        while segs and segs[0] == "super":
            base = base[:-1]
            segs = segs[1:]
        target = resolve(mods, mod, base + segs)
        if target is not None and target != mod:
            out.add(target)
    return out


def cycles(crate_dir):
    src = os.path.join(crate_dir, "src")
    if not os.path.isdir(src):
        return []
    mods = modules(src)
    graph = {m: edges_of(mods, m, f) for m, f in mods.items()}
    # the crate root only declares and re-exports; every other file counts,
    # a parent module's use of its own children included
    graph[()] = set()
    if os.environ.get("V"):
        for m, ts in sorted(graph.items()):
            for t in sorted(ts):
                print(f"{mods[m]} -> {mods[t]}")
    index, low, stack, on, found = {}, {}, [], set(), []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(os.path.relpath(mods[c], ROOT) for c in comp))

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            strong(v)
    return found


def main():
    dirs = sys.argv[1:] or [os.path.join(ROOT, c) for c in CRATES]
    bad = 0
    for d in dirs:
        for comp in cycles(d):
            bad += 1
            print("circle: " + " <-> ".join(comp))
    print(f"{bad} import circle(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
