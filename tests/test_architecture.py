"""The house rules of issue 28, checked on every CI run: no import circles (lazy imports
included), no function over 100 lines, no top-level folder over 30% of the package's lines,
every public name of round 2 still importable from its module (tools/check_architecture.py),
and built-in models registered through the decorator users write."""
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_check_architecture_passes():
    run = subprocess.run([sys.executable, "tools/check_architecture.py", "--names",
                          "tools/public_names_round3.txt"], cwd=ROOT, capture_output=True,
                         text=True)
    out = run.stdout + run.stderr
    assert "import circles: 0" in out, out
    assert "functions over 100 lines: 0" in out, out
    assert "public names no longer importable: 0" in out, out
    assert run.returncode == 0, out


def test_strategy_base_never_imports_a_concrete_strategy():
    tree = ast.parse((ROOT / "ctrkit/strategies/base.py").read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not imported & {"ddp", "torchrec"}, imported


def test_builtin_models_register_through_the_public_decorator():
    offenders = []
    for path in (ROOT / "ctrkit/models").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                for d in node.decorator_list:
                    f = d.func if isinstance(d, ast.Call) else d
                    name = ast.unparse(f)
                    if name.startswith("MODELS"):
                        offenders.append(f"{path.name}:{node.name} uses {name}")
    assert not offenders
    import ctrkit
    assert {"din", "base", "dien", "bst", "mmoe"} <= set(ctrkit.list_models())


#: docs/architecture.md's layers: a module may import its own layer or lower ones
LAYERS = {
    1: ["errors", "registry", "version", "factory", "utils", "_moved", "mixed_precision"],
    2: ["features", "tasks", "vocabulary"],
    3: ["inputs", "data"],
    4: ["datasets"],
    5: ["layers"],
    6: ["metrics", "losses", "optimizers", "regularizers"],
    7: ["strategies"],
    8: ["persistence", "plot"],
    9: ["callbacks"],
    10: ["training"],
    11: ["models", "export"],
    12: ["(face)", "__main__"],
}


def _import_edges():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import check_architecture as ca
    finally:
        sys.path.pop(0)
    root = ROOT / "ctrkit"
    files = sorted(root.rglob("*.py"))
    mods = {ca.module_name(root, f): f for f in files}
    for mod, f in mods.items():
        for target in ca.imports_of(mod, f.name == "__init__.py", ast.parse(f.read_text()),
                                    set(mods)):
            yield mod, target


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "(face)"


def test_every_import_stays_in_its_layer_or_goes_down():
    layer_of = {name: n for n, names in LAYERS.items() for name in names}
    tops = {_top(m) for edge in _import_edges() for m in edge}
    assert tops <= set(layer_of), f"not in docs/architecture.md's table: {tops - set(layer_of)}"
    climbs = [f"{a} -> {b}" for a, b in _import_edges()
              if layer_of[_top(a)] < layer_of[_top(b)]]
    assert not climbs, climbs
