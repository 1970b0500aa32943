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


VERSIONS = """
import re
from importlib.metadata import PackageNotFoundError, version
for dist in ("setuptools", "wheel"):
    try:
        print(".".join(re.findall(r"\\d+", version(dist))[:2]))
    except PackageNotFoundError:
        print("-")
"""


def build_tool_versions(py: Path, env: dict):
    """(setuptools, wheel) versions as (major, minor) tuples, or None, seen by the venv ``py``
    (a venv made inside a venv sees the *base* interpreter's packages, not the outer venv's)."""
    out = subprocess.run([str(py), "-c", VERSIONS], env=env, capture_output=True, text=True,
                         timeout=120, check=True).stdout.split()
    return tuple(None if v == "-" else tuple(int(p) for p in v.split(".")) for v in out)


def build_isolation_args(setuptools_version, wheel_version) -> list:
    """pip's build flags for this interpreter: build offline with the installed setuptools when
    it can make wheels by itself (setuptools >= 70.1 ships ``bdist_wheel``; older needs the
    ``wheel`` package), else let pip fetch ``pyproject.toml``'s build requirements into an
    isolated build environment (from the package index)."""
    if setuptools_version is not None and (setuptools_version >= (70, 1)
                                           or wheel_version is not None):
        return ["--no-build-isolation"]
    return []


#: what pip says when an isolated build cannot fetch its requirements (no index reachable)
UNREACHABLE = ("Could not find a version that satisfies the requirement",
               "No matching distribution found", "Failed to establish a new connection",
               "Network is unreachable", "Temporary failure in name resolution")


def install_and_run(tmp_path: Path, pip_args: list) -> list:
    """Clone into ``tmp/ctrkit``, install into a fresh venv (system site packages give the
    dependencies; the build tools are the interpreter's own or fetched for an isolated build:
    :func:`build_isolation_args`), run a script in ``tmp``; returns its output lines."""
    copy_clone(tmp_path / "ctrkit")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    py = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    build = build_isolation_args(*build_tool_versions(py, env))
    done = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", *build,
                           "--disable-pip-version-check", *pip_args], cwd=tmp_path / "ctrkit",
                          env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0 and not build and any(s in done.stderr for s in UNREACHABLE):
        pytest.skip("this interpreter's setuptools cannot build wheels offline and the package "
                    "index is unreachable for an isolated build: " + done.stderr.strip()[-300:])
    assert done.returncode == 0, done.stderr
    (tmp_path / "script.py").write_text(SCRIPT)
    out = subprocess.run([str(py), "script.py"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def skip_without_build_tools():
    import importlib.util
    if importlib.util.find_spec("pip") is None:  # setuptools may be fetched for the build
        pytest.skip("needs pip in the interpreter running the tests")


def test_build_isolation_follows_what_the_interpreter_can_build():
    """The failure seen on another machine: setuptools without ``bdist_wheel`` and no ``wheel``
    package, used with --no-build-isolation ("invalid command 'bdist_wheel'")."""
    assert build_isolation_args((69, 0), None) == []            # the failing machine: isolate
    assert build_isolation_args((69, 0), (0, 42)) == ["--no-build-isolation"]
    assert build_isolation_args((70, 1), None) == ["--no-build-isolation"]
    assert build_isolation_args(None, (0, 42)) == []             # no setuptools at all


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
