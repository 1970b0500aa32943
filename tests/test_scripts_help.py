"""``--help`` on every benchmark and example prints usage and runs nothing (a script that
ignores ``--help`` starts a minutes-long run, or writes a file named ``--help``)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(ROOT.glob("benchmarks/*.py")) + sorted(ROOT.glob("examples/*.py"))


@pytest.mark.slow
def test_every_script_answers_help_with_usage_only(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               MPLBACKEND="Agg")
    # all at once: each pays torch's import, not a run
    procs = {s: subprocess.Popen([sys.executable, str(s), "--help"], cwd=tmp_path, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for s in SCRIPTS}
    failures = []
    for script, proc in procs.items():
        try:
            out, err = proc.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            failures.append(f"{script.name}: still running after 240 s, so --help ran it")
            continue
        if proc.returncode != 0 or "usage:" not in out:
            failures.append(f"{script.name}: exit {proc.returncode}, no usage text "
                            f"(parse the arguments with argparse before any work)\n{out[-500:]}"
                            f"{err[-1500:]}")
    assert not failures, "\n".join(failures)
    assert not list(tmp_path.iterdir()), f"--help wrote files: {list(tmp_path.iterdir())}"
