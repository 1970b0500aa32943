"""The documented installs survive the newcomer's trap: a script beside a clone folder named
``ctrkit``. With pip's default editable install the clone root (no ``__init__.py``) is found first
as a namespace package and ``import ctrkit`` has no ``build``; ``editable_mode=compat`` (the
README's commands) and a regular ``pip install .`` do not break that way."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = "import ctrkit\nprint(ctrkit.__file__)\nprint(callable(getattr(ctrkit, 'build', None)))\n"


def readme_install_flags() -> list:
    """The flags after ``pip install -e ".[...]"`` in the README's main-job command."""
    text = (ROOT / "README.md").read_text()
    m = re.search(r'pip install -e "\.\[plot\]"([^&\n]*)&&', text)
    assert m, "README.md's main-job command no longer has `pip install -e \".[plot]\" ... &&`"
    return m.group(1).split()


def copy_clone(dest: Path) -> None:
    """The package and its build files, as a fresh clone would have them."""
    dest.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, dest / name)
    shutil.copytree(ROOT / "ctrkit", dest / "ctrkit",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def install_and_run(tmp_path: Path, pip_args: list) -> list:
    """Clone into ``tmp/ctrkit``, install into a fresh venv (offline: system site packages give
    setuptools and the dependencies), run a script in ``tmp``; returns its output lines."""
    copy_clone(tmp_path / "ctrkit")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    py = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", *pip_args], cwd=tmp_path / "ctrkit", env=env,
                   check=True, capture_output=True, timeout=300)
    (tmp_path / "script.py").write_text(SCRIPT)
    out = subprocess.run([str(py), "script.py"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def skip_without_build_tools():
    import importlib.util
    for name in ("setuptools", "pip"):  # found, not imported (setuptools warns on import)
        if importlib.util.find_spec(name) is None:
            pytest.skip(f"needs {name} in the interpreter running the tests")


def test_readme_installs_in_compat_editable_mode():
    assert readme_install_flags() == ["--config-settings", "editable_mode=compat"]


@pytest.mark.slow
def test_compat_editable_install_imports_the_real_package_beside_a_clone_named_ctrkit(tmp_path):
    skip_without_build_tools()
    where, has_build = install_and_run(tmp_path, ["-e", ".", *readme_install_flags()])
    assert Path(where) == tmp_path / "ctrkit" / "ctrkit" / "__init__.py" and has_build == "True"


@pytest.mark.slow
def test_regular_install_imports_the_real_package_beside_a_clone_named_ctrkit(tmp_path):
    skip_without_build_tools()
    where, has_build = install_and_run(tmp_path, ["."])
    assert Path(where).parent.parent.name == "site-packages" and has_build == "True"
