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
