#!/usr/bin/env python3
"""Draws lifeboat's import graph from the code and reports its cycles.

Reads every `src/**/*.rs`, maps each file to its module path (`src/backup/sync.rs` is
`backup::sync`), and records an edge A -> B wherever A names `crate::B...` (in a `use`
or inline) or reaches B through `super::`. Comments and string literals are ignored.

    scripts/import-graph.py                 # summary: modules, edges, cycles
    scripts/import-graph.py --dot > g.dot   # Graphviz, folders as clusters
    scripts/import-graph.py --level top     # one node per top-level module
    scripts/import-graph.py --check         # exit 1 on a cycle between top-level
                                            # modules other than those allowed

Top-level cycles allowed by the house plan: none, except `store` implementing the
storage traits that the domains above it declare (`store -> X` where X declares a
trait `store` implements is the one direction that may close a loop).
"""

import argparse
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"


def module_of(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return "::".join(parts) or "crate"


def strip_comments_and_strings(text: str) -> str:
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'r#*"(?:.|\n)*?"#*', '""', text)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    return text


def is_test_code(path: Path) -> bool:
    return path.name == "tests.rs" or path.name == "test_support.rs" or "testing" in path.parts


def expand_use(body: str):
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e'] (roughly; enough for modules)."""
    body = body.strip()
    m = re.match(r"^(.*?)\{(.*)\}$", body, re.S)
    if not m:
        return [body]
    prefix, inner = m.group(1), m.group(2)
    items, depth, cur = [], 0, ""
    for ch in inner:
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
    out = []
    for item in items:
        item = item.strip()
        if not item:
            continue
        for expanded in expand_use(item):
            out.append(prefix + expanded)
    return out


def references(text: str, here: str, modules: set):
    """Modules named from `here`'s code."""
    found = set()
    paths = []
    for m in re.finditer(r"\buse\s+([^;]+);", text):
        paths.extend(expand_use(m.group(1)))
    # Inline paths like crate::a::b::f(), super::x::Y.
    paths.extend(re.findall(r"\b(?:crate|super)(?:::[A-Za-z_][A-Za-z0-9_]*)+", text))
    here_parts = here.split("::") if here != "crate" else []
    for p in paths:
        p = re.sub(r"\s+as\s+\w+$", "", p.strip())
        parts = [x for x in p.split("::") if x]
        if not parts:
            continue
        if parts[0] == "crate":
            target = parts[1:]
        elif parts[0] == "super":
            base = list(here_parts)
            while parts and parts[0] == "super":
                parts = parts[1:]
                base = base[:-1]
            target = base + parts
        elif parts[0] == "self":
            target = here_parts + parts[1:]
        else:
            continue
        # The longest prefix that is a module.
        for n in range(len(target), 0, -1):
            candidate = "::".join(target[:n])
            if candidate in modules:
                if candidate != here and not here.startswith(candidate + "::"):
                    found.add(candidate)
                break
    return found


def build(include_tests: bool):
    files = sorted(SRC.rglob("*.rs"))
    modules = {module_of(f) for f in files}
    edges = defaultdict(set)
    for f in files:
        if not include_tests and is_test_code(f):
            continue
        here = module_of(f)
        text = strip_comments_and_strings(f.read_text())
        # Leave out `#[cfg(test)] mod tests { ... }` blocks written inline.
        if not include_tests:
            text = re.sub(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{.*", "", text, flags=re.S)
        for target in references(text, here, modules):
            edges[here].add(target)
    return modules, edges


def top(module: str) -> str:
    return module.split("::")[0]


def strongly_connected(nodes, edges):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
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

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dot", action="store_true", help="print Graphviz DOT")
    ap.add_argument("--level", choices=["file", "top"], default="file")
    ap.add_argument("--tests", action="store_true", help="include test-only code")
    ap.add_argument("--check", action="store_true", help="fail on a top-level cycle other than store's")
    args = ap.parse_args()
    modules, edges = build(args.tests)
    if args.level == "top":
        nodes = {top(m) for m in modules}
        tedges = defaultdict(set)
        for a, bs in edges.items():
            for b in bs:
                if top(a) != top(b):
                    tedges[top(a)].add(top(b))
        modules, edges = nodes, tedges
    cycles = strongly_connected(modules, edges)
    if args.dot:
        print("digraph lifeboat {\n  rankdir=LR; node [shape=box, fontsize=10];")
        groups = defaultdict(list)
        for m in sorted(modules):
            groups[top(m)].append(m)
        for g, ms in sorted(groups.items()):
            if args.level == "file" and len(ms) > 1:
                print(f'  subgraph "cluster_{g}" {{ label="{g}"; ' + " ".join(f'"{m}";' for m in ms) + " }")
        in_cycle = {m for c in cycles for m in c}
        for a in sorted(edges):
            for b in sorted(edges[a]):
                colour = ' [color=red]' if a in in_cycle and b in in_cycle else ""
                print(f'  "{a}" -> "{b}"{colour};')
        print("}")
    else:
        n_edges = sum(len(v) for v in edges.values())
        print(f"{len(modules)} modules, {n_edges} edges ({args.level} level{', tests included' if args.tests else ''})")
        for c in cycles:
            print(f"cycle of {len(c)}: " + " -> ".join(c))
        if not cycles:
            print("no cycles")
        # The house plan's view: store/ implements traits declared above it, so its
        # own imports are set aside; what remains must run one way.
        upward = {a: set() if top(a) == "store" else bs for a, bs in edges.items()}
        rest = strongly_connected(modules, upward)
        print("leaving out store's imports: " + ("no cycles" if not rest else f"{len(rest)} cycle(s)"))
        for c in rest:
            print(f"  cycle of {len(c)}: " + " -> ".join(c))
    if args.check:
        bad = []
        tnodes = {top(m) for m in modules}
        tedges = defaultdict(set)
        for a, bs in edges.items():
            for b in bs:
                if top(a) != top(b):
                    tedges[top(a)].add(top(b))
        # The one loop the house plan allows: store implements traits declared above it.
        without_store = {a: {b for b in bs if a != "store"} for a, bs in tedges.items()}
        bad = strongly_connected(tnodes, without_store)
        if bad:
            for c in bad:
                print("top-level cycle (not through store's implementations): " + " -> ".join(c), file=sys.stderr)
            sys.exit(1)


if __name__ == "__main__":
    main()
