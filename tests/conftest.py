"""Shared fixtures: the DeepCTR DIN tutorial data and a small synthetic behaviour set."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT))  # test this checkout, whatever is installed

torch.set_num_threads(1)


@pytest.fixture
def tutorial():
    """(x, y, feature_columns, behavior_feature_list) of the DeepCTR-Torch DIN tutorial."""
    from din_quickstart import get_xy_fd
    return get_xy_fd()


@pytest.fixture(scope="session")
def small_synthetic():
    """(x, y, features): 2,000 rows of the planted-signal generator."""
    from ctrkit.datasets import make_synthetic
    return make_synthetic(n_rows=2000, n_users=100, n_items=200, n_categories=10, maxlen=8,
                          embedding_dim=4, seed=1)


@pytest.fixture(scope="session")
def ml100k_path():
    """Folder of MovieLens-100K from $CTRKIT_ML100K; the test is skipped without it."""
    path = os.environ.get("CTRKIT_ML100K")
    if not path or not Path(path, "u.data").exists():
        pytest.skip("MovieLens-100K not available: set CTRKIT_ML100K to its folder")
    return path


# ------------------------------------------------------------------ CI's skip policy
from ci_skips import disallowed_skips, in_ci  # noqa: E402  (tests/ is on sys.path)

_SKIPS = []


def pytest_runtest_logreport(report):
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _SKIPS.append((report.nodeid, reason.removeprefix("Skipped: ")))


def pytest_sessionfinish(session, exitstatus):
    if in_ci(os.environ) and disallowed_skips(_SKIPS) and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    bad = disallowed_skips(_SKIPS)
    if not bad:
        return
    verdict = ("FAILS CI (a skip in CI is allowed only for a GPU or absent data; install the "
               "extra in .ci/run)" if in_ci(os.environ) else "would fail CI")
    terminalreporter.section(f"optional paths not run: {len(bad)} skip(s) {verdict}")
    for nodeid, reason in bad:
        terminalreporter.write_line(f"{nodeid}: {reason}")
