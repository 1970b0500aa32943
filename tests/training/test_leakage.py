"""The duplicate-row data check between training and validation rows (issue 25)."""
from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import ctrkit
from ctrkit import DenseFeat, SparseFeat
from ctrkit.errors import DataLeakageWarning
from ctrkit.inputs import Columns
from ctrkit.training.leakage import row_hashes


def repeated(unique=100, times=10, seed=0):
    rng = np.random.default_rng(seed)
    base = {"user": rng.integers(0, 50, unique), "price": rng.random(unique).astype(np.float32)}
    order = rng.permutation(unique * times) % unique
    x = {k: v[order] for k, v in base.items()}
    features = [SparseFeat("user", 50, 2), DenseFeat("price", 1)]
    return x, (rng.random(unique * times) < 0.5).astype(int), features


def fit(x, y, features, **kw):
    model = ctrkit.build("base", features, dnn_hidden_units=(2,))
    model.compile("adam")
    model.fit(x, y, batch_size=256, epochs=1, verbose=0, **kw)


def test_repeated_rows_in_validation_split_warn_with_the_fraction():
    x, y, features = repeated()
    with pytest.warns(DataLeakageWarning, match=r"200 of 200 validation rows \(100%\) from "
                                                r"validation_split=0.2 appear verbatim.*"
                                                r"drop_duplicates"):
        fit(x, y, features, validation_split=0.2)


def test_validation_data_is_checked_too_and_distinct_rows_do_not_warn():
    x, y, features = repeated()
    val = ({k: v[:100] for k, v in x.items()}, y[:100])
    with pytest.warns(DataLeakageWarning, match=r"100 of 100 validation rows .* validation_data"):
        fit({k: v[100:] for k, v in x.items()}, y[100:], features, validation_data=val)
    fit(x, y, features, validation_data=(x, y))  # the training x itself: deliberate, no warning
    fresh, fy, _ = repeated(unique=1000, times=1, seed=1)
    fit(fresh, fy, features, validation_split=0.2)  # warnings are errors in the suite


def test_few_duplicates_or_coarse_sparse_only_features_do_not_warn():
    x, y, features = repeated(unique=950, times=1)
    x = {k: np.concatenate([v, v[:40]]) for k, v in x.items()}  # 40 copies: under MIN_ROWS
    fit(x, np.r_[y, y[:40]], features, validation_split=0.1)
    rng = np.random.default_rng(0)  # 2 x 3 possible rows: copies happen by chance
    fit({"a": rng.integers(0, 2, 500), "b": rng.integers(0, 3, 500)}, rng.integers(0, 2, 500),
        [SparseFeat("a", 2, 2), SparseFeat("b", 3, 2)], validation_split=0.2)


def test_the_warning_can_be_silenced():
    x, y, features = repeated()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=DataLeakageWarning)
        fit(x, y, features, validation_split=0.2)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from([0.0, 0.5, -0.0, 1e-30])),
                min_size=1, max_size=12))
def test_row_hashes_are_equal_exactly_for_equal_rows(rows):
    ids = torch.tensor([r[0] for r in rows])
    vals = torch.tensor([[r[1]] for r in rows], dtype=torch.float32)
    h = row_hashes(Columns({"id": ids, "v": vals}, len(rows)))
    for i in range(len(rows)):
        for j in range(len(rows)):
            same = rows[i][0] == rows[j][0] and np.float32(rows[i][1]).tobytes() == \
                np.float32(rows[j][1]).tobytes()
            assert (h[i] == h[j]) == same


CRITEO = os.environ.get("CTRKIT_CRITEO_HEAD", "")


@pytest.mark.skipif(not os.path.isfile(CRITEO), reason="the Criteo Kaggle head sample is not "
                    "available: set CTRKIT_CRITEO_HEAD to its train.txt")
def test_the_criteo_head_sample_warns():
    import pandas as pd
    df = pd.read_csv(CRITEO, sep="\t", header=None).head(3000)
    x, features = {}, []
    for c in df.columns[14:]:
        codes, _ = pd.factorize(df[c].fillna("-1"))
        x[f"C{c}"], features = codes.astype(np.int64), features + [
            SparseFeat(f"C{c}", int(codes.max()) + 1, 2)]
    for c in df.columns[1:14]:
        x[f"I{c}"] = np.log1p(df[c].fillna(0).clip(lower=0)).to_numpy(np.float32)
        features.append(DenseFeat(f"I{c}", 1))
    with pytest.warns(DataLeakageWarning, match=r"validation rows \(100%\)"):
        fit(x, df[0].to_numpy(), features, validation_split=0.2)
