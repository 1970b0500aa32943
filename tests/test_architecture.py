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
