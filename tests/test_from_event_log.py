"""examples/from_event_log.py: raw event log -> DIN -> saved -> a fresh process serves raw values;
and the property behind it: one vocabulary per table, kept through save/load."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ctrkit
from ctrkit.data import CategoricalEncoder, build_behavior_sequences, pad_sequences

pd = pytest.importorskip("pandas")


@pytest.mark.slow
def test_event_log_example_end_to_end(tmp_path, capsys):
    """Raw values after load == encoded arrays before save, on MovieLens when available."""
    from from_event_log import main
    path = os.environ.get("CTRKIT_ML100K")
    path = path if path and Path(path, "u.data").exists() else None
    result = main(path, users=60 if path else None, epochs=2, out=str(tmp_path), verbose=1)
    np.testing.assert_array_equal(result["raw_pred_after_load"], result["encoded_pred"])
    assert result["encoded_pred"].shape == (result["test_rows"], 1)
    assert 0.0 <= result["test_auc"] <= 1.0 and 0.0 <= result["test_gauc"] <= 1.0
    assert Path(result["model_path"]).is_file() and Path(result["best_path"]).is_file()
    out = capsys.readouterr().out
    assert "predictions from raw values equal the encoded predictions" in out
    assert f"test AUC {result['test_auc']:.4f}, GAUC {result['test_gauc']:.4f}" in out


def hand_encode(encoders, raw, maxlen):
    """Ids built by hand: each feature with its TABLE's encoder; histories padded with Keras's
    pad_sequences (post padding, pre truncation) -- independent of ctrkit's ragged path."""
    ids = {c: encoders[c].transform(np.asarray(raw[c])) for c in ("user", "item", "cate")}
    for c in ("item", "cate"):
        rows = [encoders[c].transform(np.asarray(r, dtype=object)) if len(r) else []
                for r in raw["hist_" + c]]
        ids["hist_" + c] = pad_sequences(rows, maxlen, padding="post", truncating="pre")
    ids["seq_length"] = np.minimum([len(r) for r in raw["hist_item"]], maxlen)
    return ids


logs = st.integers(0, 2 ** 31 - 1).flatmap(lambda seed: st.tuples(
    st.just(seed), st.integers(20, 120), st.integers(2, 12), st.integers(2, 25),
    st.integers(1, 6)))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.function_scoped_fixture])
@given(logs)
def test_raw_values_through_a_loaded_model_equal_hand_encoded_ids(tmp_path, params):
    seed, n, n_users, n_items, maxlen = params
    rng = np.random.default_rng(seed)
    item_pool = np.array([f"sku-{v}" for v in rng.choice(10 ** 6, n_items, replace=False)])
    items = rng.integers(0, n_items, n)
    log = {"user": rng.choice(10 ** 9, n_users, replace=False)[rng.integers(0, n_users, n)],
           "item": item_pool[items], "cate": (items % 4) * 1000 + 7,
           "time": rng.integers(0, n // 2 + 1, n), "label": rng.integers(0, 2, n)}
    encoders = {}
    x, _, features = build_behavior_sequences(log, attributes=("cate",), maxlen=maxlen,
                                              embedding_dim=4, encoders=encoders)
    model = ctrkit.build("din", features, dnn_hidden_units=(8,), att_hidden_size=(4,),
                         seed=seed % 1000)
    model.encoders = {"user": encoders["user"], "item": encoders["item"],
                      "cate": encoders["cate"]}
    loaded = ctrkit.load(model.save(tmp_path / f"m{seed}.ctrkit"))
    # raw requests: each row's history as an unpadded list of raw values, plus values the
    # vocabularies never saw (row 0's history grows past maxlen when it was full)
    lengths = x["seq_length"]
    raw = {c: list(log[c]) for c in ("user", "item", "cate")}
    for c in ("item", "cate"):
        hist = encoders[c].inverse_transform(x["hist_" + c])
        raw["hist_" + c] = [list(hist[r, :lengths[r]]) for r in range(n)]
    raw["item"][0], raw["user"][0] = "never-seen-sku", -5
    raw["hist_item"][0] = raw["hist_item"][0] + ["never-seen-sku"]
    raw["hist_cate"][0] = raw["hist_cate"][0] + [123456]
    ids = hand_encode(encoders, raw, maxlen)
    assert ids["item"][0] == 1 and ids["user"][0] == 1  # the out-of-vocabulary id
    # every feature of a table uses that table's vocabulary
    vocabs = loaded.vocabularies()
    assert vocabs["hist_item"].encoder.to_dict() == encoders["item"].to_dict()
    assert vocabs["hist_cate"].encoder.to_dict() == encoders["cate"].to_dict()
    np.testing.assert_array_equal(loaded.predict(raw), model.predict(ids, encoded=True))
