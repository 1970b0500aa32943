"""The documentation site builds with ``mkdocs build --strict``: no broken links or anchors, and
the API reference renders every documented name (skipped without the ``docs`` extra)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_mkdocs_build_strict_passes(tmp_path):
    pytest.importorskip("mkdocs", reason="the docs extra is not installed: pip install -e '.[docs]'")
    pytest.importorskip("mkdocstrings", reason="the docs extra is not installed")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(tmp_path / "site")], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    warnings = [l for l in (proc.stdout + proc.stderr).splitlines()
                if l.startswith(("WARNING", "ERROR"))]
    assert proc.returncode == 0, ("`mkdocs build --strict` failed; fix these (docs/*.md links, "
                                  "mkdocs.yml nav, or Google-style docstrings: one "
                                  "'name: description' per argument):\n" + "\n".join(warnings)
                                  + "\n" + proc.stderr[-3000:])
    assert (tmp_path / "site" / "api" / "callbacks" / "index.html").exists()
