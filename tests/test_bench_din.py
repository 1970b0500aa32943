"""benchmarks/bench_din.py's measuring harness: its numpy AUC (the peers' workers use it in
their own environments), the feature map it hands FuxiCTR, and the breakdown's op
attribution, which must see every DIN part and leave the model's results unchanged."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_din  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2 ** 31 - 1), st.integers(2, 300), st.integers(1, 6))
def test_auc_score_matches_sklearn_with_ties(seed, n, levels):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    y[:2] = [0, 1]  # both classes
    p = rng.integers(0, levels, n) / levels  # few distinct scores: many ties
    assert bench_din.auc_score(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)


def test_fuxictr_feature_map_describes_make_data():
    maxlen = 7
    x, _ = bench_din.make_data(rows=50, maxlen=maxlen)
    fmap = bench_din.fuxictr_feature_map(maxlen)
    specs = {k: v for f in fmap["features"] for k, v in f.items()}
    assert set(specs) == set(x) - {"seq_length"}  # FuxiCTR's DIN masks hist_item != 0
    assert fmap["input_length"] == sum(s.get("max_len", 1) for s in specs.values())
    for name in ("hist_item", "hist_cate"):
        spec, own = specs[name], specs[name[len("hist_"):]]
        assert spec["share_embedding"] == name[len("hist_"):]
        assert spec["vocab_size"] == own["vocab_size"]
        assert int(x[name].max()) < spec["vocab_size"] and x[name].shape[1] == spec["max_len"]
        # padding (0) after the valid behaviours only, as FuxiCTR's mask assumes
        assert ((x[name] != 0).sum(1) == x["seq_length"]).all()
    # every feature before the sequence that shares its table (FuxiCTR builds tables in order)
    order = [next(iter(f)) for f in fmap["features"]]
    assert order.index("item") < order.index("hist_item")
    assert order.index("cate") < order.index("hist_cate")


def test_op_attribution_sees_every_part_and_changes_nothing():
    import ctrkit
    x, y = bench_din.make_data(rows=600, maxlen=6)

    def run(instrument: bool):
        model = ctrkit.build("din", bench_din.features(ctrkit, 6), seed=0)
        model.compile("adam", "binary_crossentropy", metrics=["logloss"])
        parts = {}
        if instrument:
            mode, totals = bench_din.attribute_ops(model, model.trainer)
            with mode():
                model.fit(x, y, batch_size=256, epochs=1, verbose=0)
                parts["fit"] = dict(totals)
                totals.clear()
                pred = model.predict(x, batch_size=256)
                parts["predict"] = dict(totals)
        else:
            model.fit(x, y, batch_size=256, epochs=1, verbose=0)
            pred = model.predict(x, batch_size=256)
        return pred, parts

    plain, _ = run(False)
    timed, parts = run(True)
    np.testing.assert_array_equal(timed, plain)
    assert {"embedding", "attention", "top MLP", "loss"} <= set(parts["fit"])
    assert {"embedding", "attention", "top MLP"} <= set(parts["predict"])
    assert "loss" not in parts["predict"]
    assert all(v > 0 for p in parts.values() for v in p.values())


def test_attribution_names_map_to_the_din_parts():
    assert bench_din.part_of("embeddings") == "embedding"
    assert bench_din.part_of("_embed_packed") == "embedding"
    assert bench_din.part_of("attention") == "attention"
    assert bench_din.part_of("dnn_linear") == "top MLP"
    assert bench_din.part_of("regularization_loss") == "L2 regularizer"
    assert bench_din.part_of("fit") is None
