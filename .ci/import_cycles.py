#!/usr/bin/env python3
"""Finds import cycles in src/: between top-level modules (`crate::a` uses
`crate::b` and back) and between sibling sub-modules of one module
(`ensemble::build` <-> `ensemble::manifest`). A child using its parent's
items (`super::X`) is not a cycle. Test code (`#[cfg(test)] mod ... {` to the
end of a file, and files named `tests*.rs` / `*_tests.rs`) is ignored.
Exit 1 and the edges of each cycle when any exists, except cycles inside a
set listed in the allow file (one comma-separated set of modules a line, `#`
comments): those are known and printed as such.
Usage: .ci/import_cycles.py [--allow FILE] [src]"""
import os
import re
import sys

ARGS = sys.argv[1:]
ALLOW = []
if ARGS[:1] == ["--allow"]:
    with open(ARGS[1], encoding="utf-8") as f:
        for line in f:
            line = line.split("#")[0].strip()
            if line:
                ALLOW.append({tuple(m.strip().split("::")) for m in line.split(",")})
    ARGS = ARGS[2:]
SRC = ARGS[0] if ARGS else os.path.join(os.path.dirname(__file__), "..", "src")


def module_of(rel):
    parts = rel[:-3].split(os.sep)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def is_test_file(rel):
    name = os.path.basename(rel)[:-3]
    return name.startswith("tests") or name.endswith("_tests") or name == "timing"


def strip(text):
    text = re.sub(r"//[^\n]*", "", text)
    m = re.search(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{", text)
    return text[: m.start()] if m else text


def expand(prefix, body):
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e']."""
    out, depth, cur = [], 0, ""
    items = []
    for ch in body:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
        else:
            cur += ch
    items.append(cur)
    for it in items:
        it = it.strip()
        if not it:
            continue
        m = re.match(r"^([\w:]*?)(::)?\{(.*)\}$", it, re.S)
        if m:
            inner_prefix = prefix + ([m.group(1)] if m.group(1) else [])
            out += expand(inner_prefix, m.group(3))
        else:
            out.append("::".join(prefix + [it.split(" as ")[0].strip()]))
    return out


def paths(text):
    found = []
    for m in re.finditer(r"\buse\s+((?:crate|super|self)[^;]*);", text, re.S):
        stmt = re.sub(r"\s+", "", m.group(1))
        m2 = re.match(r"^([\w:]*?)::\{(.*)\}$", stmt)
        if m2:
            found += expand([m2.group(1)], m2.group(2))
        else:
            found.append(stmt)
    found += re.findall(r"\b((?:crate|super)(?:::\w+)+)", text)
    return found


def resolve(path, here, is_mod_file):
    segs = path.split("::")
    base = list(here)
    if segs[0] == "crate":
        base, segs = [], segs[1:]
    elif segs[0] in ("super", "self"):
        # A mod.rs / a.rs-with-children file's `self` is its module; `super` its parent.
        while segs and segs[0] in ("super", "self"):
            if segs[0] == "super":
                base = base[:-1]
            segs = segs[1:]
    return tuple(base + segs)


def main():
    files = {}
    for root, _, names in os.walk(SRC):
        for n in names:
            if n.endswith(".rs"):
                rel = os.path.relpath(os.path.join(root, n), SRC)
                files[rel] = module_of(rel)
    modules = set(files.values())
    edges = {}
    for rel, here in files.items():
        if is_test_file(rel) or not here:
            continue
        with open(os.path.join(SRC, rel), encoding="utf-8") as f:
            text = strip(f.read())
        for p in paths(text):
            t = resolve(p, here, rel.endswith("mod.rs"))
            while t and t not in modules:
                t = t[:-1]
            if not t:
                continue
            n = 0
            while n < min(len(t), len(here)) and t[n] == here[n]:
                n += 1
            if n < len(t) and n < len(here):
                a, b = here[: n + 1], t[: n + 1]
                edges.setdefault(a, {}).setdefault(b, set()).add(rel)
    cycles = find_cycles(edges)
    known = [c for c in cycles if any(set(c) <= a for a in ALLOW)]
    cycles = [c for c in cycles if c not in known]
    for c in known:
        print("known cycle (allow-listed): " + ", ".join("::".join(m) for m in c))
    for c in cycles:
        print("cycle among: " + ", ".join("::".join(m) for m in c))
        for a in c:
            for b in sorted(edges.get(a, {})):
                if b in c:
                    print(f"    {'::'.join(a)} -> {'::'.join(b)}: {', '.join(sorted(edges[a][b]))}")
    return 1 if cycles else 0


def find_cycles(edges):
    """Strongly connected components (Tarjan) with more than one module."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
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
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in list(edges):
        if v not in index:
            visit(v)
    return out


if __name__ == "__main__":
    sys.exit(main())
