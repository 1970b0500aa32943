"""Report ctrkit's architecture health from its AST (issue 28's checks).

Prints, for the package folder given (default ``ctrkit/``):

- import circles between modules (lazy imports inside functions included; ``TYPE_CHECKING``
  blocks excluded, since they never run);
- functions and methods longer than ``--max-function-lines`` lines (default 100);
- each top-level folder's share of the package's lines (limit ``--max-folder-share``, 0.30);
- with ``--names FILE``: every public name listed in FILE (``module:name`` per line, as written
  by ``--dump-names``) that is no longer importable from its module.

Exit status 1 when any check fails, so it can run in CI once the redesign lands.

    python tools/check_architecture.py                 # report
    python tools/check_architecture.py --dump-names names.txt
    python tools/check_architecture.py --names names.txt
"""
from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import sys
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Set, Tuple


def module_name(root: Path, path: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or \
        (isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def imports_of(mod: str, is_pkg: bool, tree: ast.AST, known: Set[str]) -> Set[str]:
    """Modules of the package that ``mod`` imports (at any depth, outside TYPE_CHECKING)."""
    out: Set[str] = set()
    pkg = mod if is_pkg else mod.rpartition(".")[0]

    def resolve(name: str) -> None:
        # "a.b.c" may be a module or a name inside "a.b": keep the longest known module
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name and name != mod:
            out.add(name)

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    visit(sub)
                continue
            if isinstance(child, ast.Import):
                for a in child.names:
                    resolve(a.name)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = pkg.split(".")
                    base = base[: len(base) - (child.level - 1)]
                    prefix = ".".join(base + ([child.module] if child.module else []))
                else:
                    prefix = child.module or ""
                for a in child.names:
                    full = f"{prefix}.{a.name}"
                    if full in known:
                        resolve(full)
                    else:
                        resolve(prefix)
            visit(child)

    visit(tree)
    return out


def find_cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on: Set[str] = set()
    comps: List[List[str]] = []
    counter = [0]

    sys.setrecursionlimit(10000)

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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
                comps.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return comps


def long_functions(path: Path, tree: ast.AST, limit: int) -> List[Tuple[str, int, int]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = node.end_lineno - node.lineno + 1
            if n > limit:
                out.append((f"{path}:{node.lineno} {node.name}", n, node.lineno))
    return out


def public_names(root: Path) -> List[str]:
    names = []
    sys.path.insert(0, str(root.parent))
    for path in sorted(root.rglob("*.py")):
        mod = module_name(root, path)
        if any(p.startswith("_") and p != "__init__" for p in mod.split(".")[1:]):
            continue
        try:
            m = importlib.import_module(mod)
        except Exception:  # an optional extra missing: its names are not listed
            continue
        listed = getattr(m, "__all__", None)
        if listed is None:  # names defined here (or re-exported from ctrkit), not np/torch/typing
            listed = [n for n, v in vars(m).items() if not n.startswith("_")
                      and not inspect.ismodule(v)
                      and str(getattr(v, "__module__", mod) or mod).startswith("ctrkit")]
        names.extend(f"{mod}:{n}" for n in listed)
    return names


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("package", nargs="?", default="ctrkit")
    p.add_argument("--max-function-lines", type=int, default=100)
    p.add_argument("--max-folder-share", type=float, default=0.30)
    p.add_argument("--dump-names", metavar="FILE")
    p.add_argument("--names", metavar="FILE")
    args = p.parse_args(argv)
    root = Path(args.package).resolve()
    if args.dump_names:
        Path(args.dump_names).write_text("\n".join(public_names(root)) + "\n")
        print(f"wrote {args.dump_names}")
        return 0

    files = sorted(root.rglob("*.py"))
    trees = {f: ast.parse(f.read_text(), str(f)) for f in files}
    mods = {module_name(root, f): f for f in files}
    known = set(mods)
    graph = {m: imports_of(m, f.name == "__init__.py", trees[f], known) for m, f in mods.items()}
    failed = False

    cycles = find_cycles(graph)
    print(f"import circles: {len(cycles)}")
    for c in cycles:
        print("  " + " <-> ".join(c))
    failed |= bool(cycles)

    longs = [lf for f in files for lf in long_functions(f.relative_to(root.parent), trees[f],
                                                        args.max_function_lines)]
    print(f"functions over {args.max_function_lines} lines: {len(longs)}")
    for name, n, _ in sorted(longs, key=lambda t: -t[1]):
        print(f"  {n:4d}  {name}")
    failed |= bool(longs)

    lines: Dict[str, int] = defaultdict(int)
    total = 0
    for f in files:
        n = len(f.read_text().splitlines())
        total += n
        rel = f.relative_to(root)
        lines[rel.parts[0] if len(rel.parts) > 1 else "(top-level files)"] += n
    print(f"lines: {total}")
    for folder, n in sorted(lines.items(), key=lambda t: -t[1]):
        share = n / total
        flag = "  <-- over" if share > args.max_folder_share and folder != "(top-level files)" else ""
        failed |= bool(flag)
        print(f"  {share:6.1%}  {n:6d}  {folder}{flag}")

    if args.names:
        sys.path.insert(0, str(Path(args.package).resolve().parent))
        missing = []
        for line in Path(args.names).read_text().split():
            mod, _, name = line.partition(":")
            try:
                m = importlib.import_module(mod)
            except Exception as e:  # noqa: BLE001 (reported)
                missing.append(f"{line} (module: {e})")
                continue
            if not hasattr(m, name):
                missing.append(line)
        print(f"public names no longer importable: {len(missing)}")
        for m in missing:
            print("  " + m)
        failed |= bool(missing)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
