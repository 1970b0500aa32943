"""The CI skip policy (tests/ci_skips.py): only a GPU or absent data may skip in CI."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ci_skips import disallowed_skips, in_ci

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_and_absent_data_are_allowed_anything_else_is_not():
    skips = [("a", "MovieLens-100K not available: set CTRKIT_ML100K to its folder"),
             ("b", "needs 2 GPUs for NCCL"), ("c", "CUDA is not available"),
             ("d", "the tensorboard extra is not installed: pip install ..."),
             ("e", "could not import 'onnxruntime': No module named 'onnxruntime'"),
             ("f", "Amazon data absent: set CTRKIT_AMAZON")]
    assert disallowed_skips(skips) == [skips[3], skips[4]]


def test_ci_is_read_from_the_environment():
    assert in_ci({"CI": "true"}) and in_ci({"CI": "1"}) and in_ci({"CI": "True"})
    assert not in_ci({}) and not in_ci({"CI": "false"}) and not in_ci({"CI": ""})


def test_a_skipped_optional_path_fails_the_run_in_ci_only(tmp_path):
    """A real pytest run over a test that skips for a missing extra: exit 1 under CI=true,
    0 without it; a data skip passes both."""
    (tmp_path / "conftest.py").write_text(
        f"import sys\nsys.path.insert(0, {str(ROOT / 'tests')!r})\n"
        f"exec(open({str(ROOT / 'tests' / 'conftest.py')!r}).read())\n")
    (tmp_path / "test_x.py").write_text(
        "import pytest\n"
        "def test_extra():\n    pytest.importorskip('no_such_module_for_ctrkit_ci')\n"
        "def test_data():\n    pytest.skip('Criteo not available: set CTRKIT_CRITEO')\n")
    import os
    env = {k: v for k, v in os.environ.items() if k != "CI"}

    def run(**extra):
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               str(tmp_path)], cwd=tmp_path, env={**env, **extra},
                              capture_output=True, text=True, timeout=300)
    ci, local = run(CI="true"), run()
    assert ci.returncode == 1, ci.stdout
    assert "FAILS CI" in ci.stdout and "test_x.py::test_extra" in ci.stdout
    assert "test_x.py::test_data" not in ci.stdout.split("optional paths not run")[1]
    assert local.returncode == 0, local.stdout
    assert "would fail CI" in local.stdout
