"""Shared set-up of the ported peer test suites (tests/compat/).

The ported files change only imports and constructor calls. What they need besides is set up
here, outside them: each test runs in its own temporary working directory (DeepCTR-Torch's
``check_model`` writes ``model.ckpt`` and ``*.h5`` files into the working directory) and with
numpy's global RNG seeded (their data generators draw from it), so a run is reproducible.

A test where ctrkit deliberately differs from the peer is marked
``@pytest.mark.expected_difference("<anchor>")``: its body asserts ctrkit's documented behaviour
instead, and ``<anchor>`` names the section of ``docs/porting.md`` that documents the
difference (``test_compat_documented.py`` checks that every anchor exists there).
"""
from __future__ import annotations

import numpy as np
import pytest


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "expected_difference(anchor): a ported peer test where ctrkit deliberately "
                   "differs; it asserts ctrkit's behaviour, documented at docs/porting.md#anchor")

@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.random.seed(2024)
    yield
