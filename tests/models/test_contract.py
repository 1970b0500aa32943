"""Every registered model builds from DIN's features, trains, evaluates and predicts."""
import math

import numpy as np
import pytest
import torch

import ctrkit
from ctrkit import DenseFeat, SparseFeat, VarLenSparseFeat
from ctrkit.errors import ConfigError, UnknownNameError
from ctrkit.layers.interaction import FM, InnerProduct


@pytest.mark.parametrize("name", ctrkit.list_models(multitask=False))
def test_model_contract(name, small_synthetic):
    x, y, features = small_synthetic
    # default init (issue 18); lr 1e-2: 48 steps on 2,000 rows must show the signal
    model = ctrkit.build(name, features, seed=0)
    assert model.registered_name == name
    model.compile("adam", "binary_crossentropy", metrics=["auc", "logloss"], lr=1e-2)
    before = model.evaluate(x, y, batch_size=512)
    assert before["loss"] == pytest.approx(math.log(2), abs=0.05)  # small init: p ~ 0.5
    history = model.fit(x, y, batch_size=128, epochs=3, verbose=0)
    loss = history.history["loss"]
    assert len(loss) == 3 and all(np.isfinite(loss))
    after = model.evaluate(x, y, batch_size=512)
    assert set(after) == {"loss", "auc", "logloss"}
    assert after["loss"] < before["loss"] - 0.03, (before, after)
    assert after["auc"] > 0.65  # the planted signal is learnable by every model
    pred = model.predict(x, batch_size=333)
    assert pred.shape == (len(y), 1) and pred.dtype == np.float64
    assert np.isfinite(pred).all() and ((pred > 0) & (pred < 1)).all()
    # predictions do not depend on the batch size (eval mode, no batch statistics)
    np.testing.assert_allclose(model.predict(x, batch_size=1000), pred, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", ctrkit.list_models(multitask=False))
def test_model_with_dense_feature_and_tutorial_features(name, tutorial):
    x, y, features, _ = tutorial
    model = ctrkit.build(name, features, seed=0)
    model.compile("adagrad", "binary_crossentropy")
    model.fit(x, y, batch_size=3, epochs=2, verbose=0)
    assert model.predict(x).shape == (3, 1)


@pytest.mark.parametrize("name", ctrkit.list_models(multitask=False))
def test_padding_never_changes_the_output(name, small_synthetic):
    x, y, features = small_synthetic
    model = ctrkit.build(name, features, seed=0, init_std=0.1)
    model.compile("adam", "binary_crossentropy")
    x2 = dict(x)
    for key in ("hist_item", "hist_cate"):
        pad = np.arange(x[key].shape[1])[None, :] >= x["seq_length"][:, None]
        x2[key] = np.where(pad, 3, x[key])  # garbage ids in padded positions
    np.testing.assert_allclose(model.predict(x2), model.predict(x), rtol=1e-6)


@pytest.mark.parametrize("name", ctrkit.list_models(multitask=False))
def test_the_order_of_the_feature_list_never_matters(name, small_synthetic):
    """Same seed, features declared in another order: the same weights and predictions."""
    x, y, features = small_synthetic
    a = ctrkit.build(name, features, seed=3, init_std=0.1)
    b = ctrkit.build(name, features[::-1], seed=3, init_std=0.1)
    assert {k: v.shape for k, v in a.state_dict().items()} == \
        {k: v.shape for k, v in b.state_dict().items()}
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    np.testing.assert_array_equal(a.predict(x), b.predict(x))


def test_unknown_model_name_lists_the_available_ones(small_synthetic):
    _, _, features = small_synthetic
    with pytest.raises(UnknownNameError) as e:
        ctrkit.build("deepfn", features)
    assert str(e.value) == (f"Unknown model 'deepfn'. Did you mean 'deepfm'? Registered models: "
                            f"{ctrkit.list_models()}")
    assert {"base", "wdl", "deepfm", "pnn", "din"} <= set(ctrkit.list_models())


@pytest.mark.parametrize("name", ["deepfm", "pnn"])
def test_interaction_models_need_one_embedding_dim(name):
    feats = [SparseFeat("user", 5, 4), SparseFeat("item", 5, 8)]
    with pytest.raises(ConfigError, match="same embedding_dim.*'user': 4, 'item': 8|same embedding_dim.*'item': 8, 'user': 4"):
        ctrkit.build(name, feats)


def test_history_shares_the_candidate_table_in_every_model(small_synthetic):
    _, _, features = small_synthetic
    for name in ("base", "wdl", "deepfm", "pnn"):
        model = ctrkit.build(name, features)
        assert model.embeddings.table_of["hist_item"] == "item"
        assert "hist_item" not in model.embeddings.tables
    unshared = ctrkit.build("base", features, share_history_embeddings=False)
    assert "hist_item" in unshared.embeddings.tables


def test_fm_and_inner_product_match_the_pairwise_definition():
    g = torch.Generator().manual_seed(0)
    v = torch.randn(5, 4, 3, generator=g)
    pairs = [(i, j) for i in range(4) for j in range(i + 1, 4)]
    expected = torch.stack([(v[:, i] * v[:, j]).sum(-1) for i, j in pairs], dim=1)
    torch.testing.assert_close(InnerProduct(4)(v), expected)
    torch.testing.assert_close(FM()(v), expected.sum(1), rtol=1e-5, atol=1e-5)


def test_wide_part_takes_named_features_and_rejects_unknown_ones(small_synthetic):
    _, _, features = small_synthetic
    model = ctrkit.build("wdl", features, linear_feature_columns=["item", "cate"])
    assert sorted(model.linear.table_of) == ["cate", "item"]
    with pytest.raises(ConfigError, match="linear_feature_columns names 'nope'"):
        ctrkit.build("wdl", features, linear_feature_columns=["nope"])


def test_l2_reg_linear_and_dnn_enter_the_regularization_loss(small_synthetic):
    x, _, features = small_synthetic
    model = ctrkit.build("deepfm", features, l2_reg_linear=0.5, l2_reg_dnn=0.0,
                         l2_reg_embedding=0.0, init_std=0.1)
    batch = model.example_batch()
    expected = 0.5 * sum((p ** 2).sum() for p in model.linear.parameters())
    torch.testing.assert_close(model.regularization_loss(batch), expected)


# ----------------------------------------------------------------------------- multi-task models
def _two_labels(y):
    """(click, a second label known on the even rows only: NaN elsewhere)."""
    second = np.where(np.arange(len(y)) % 2 == 0, y, np.nan)
    return np.stack([y, second], axis=1).astype(np.float32)


@pytest.mark.parametrize("name", ctrkit.list_models(multitask=True))
def test_multitask_model_contract(name, small_synthetic):
    """The multi-task models meet the same contract with (n, T) labels and predictions."""
    x, y, features = small_synthetic
    model = ctrkit.build(name, features, seed=0, task_names=("ctr", "cvr"))
    assert model.registered_name == name and model.task_names == ("ctr", "cvr")
    model.compile("adam", "binary_crossentropy", metrics=["auc", "logloss"], lr=1e-2)
    yy = _two_labels(y)
    before = model.evaluate(x, yy, batch_size=512)
    history = model.fit(x, yy, batch_size=128, epochs=3, verbose=0)
    assert set(history.history) == {"loss", "ctr_loss", "cvr_loss", "ctr_auc", "cvr_auc",
                                    "ctr_logloss", "cvr_logloss"}
    after = model.evaluate(x, yy, batch_size=512)
    assert after["loss"] < before["loss"] - 0.03, (before, after)
    assert after["loss"] == pytest.approx(after["ctr_loss"] + after["cvr_loss"], rel=1e-5)
    assert after["ctr_auc"] > 0.65 and after["cvr_auc"] > 0.6
    pred = model.predict(x, batch_size=333)
    assert pred.shape == (len(y), 2) and pred.dtype == np.float64
    assert ((pred > 0) & (pred < 1)).all()
    np.testing.assert_allclose(model.predict(x, batch_size=1000), pred, rtol=1e-5, atol=1e-7)
    as_dict = model.predict(x, batch_size=333, as_dict=True)
    assert list(as_dict) == ["ctr", "cvr"]
    np.testing.assert_array_equal(np.stack([as_dict["ctr"], as_dict["cvr"]], 1), pred)
    # padding and the order of the feature list never matter
    x2 = dict(x)
    for key in ("hist_item", "hist_cate"):
        pad = np.arange(x[key].shape[1])[None, :] >= x["seq_length"][:, None]
        x2[key] = np.where(pad, 3, x[key])
    np.testing.assert_allclose(model.predict(x2, batch_size=333), pred, rtol=1e-6)
    a = ctrkit.build(name, features, seed=3, task_names=("ctr", "cvr"))
    b = ctrkit.build(name, features[::-1], seed=3, task_names=("ctr", "cvr"))
    np.testing.assert_array_equal(a.predict(x), b.predict(x))


@pytest.mark.parametrize("name", ctrkit.list_models(multitask=False))
def test_single_task_model_with_two_task_towers_trains(name, small_synthetic):
    """Every single-task model built with task_names: one head per task over its body, trained
    on two labels (the second missing on odd rows) by the multi-task trainer."""
    x, y, features = small_synthetic
    model = ctrkit.build(name, features, seed=0, task_names=("ctr", "cvr"))
    assert model.task_names == ("ctr", "cvr") and model.registered_name == name
    model.compile("adam", metrics=["auc"], lr=1e-2)
    yy = _two_labels(y)
    before = model.evaluate(x, yy, batch_size=512)
    history = model.fit(x, yy, batch_size=128, epochs=3, verbose=0,
                        validation_data=(x, yy))
    assert {"ctr_auc", "cvr_auc", "val_ctr_auc", "val_cvr_auc", "ctr_loss"} <= set(history.history)
    after = model.evaluate(x, yy, batch_size=512)
    assert after["loss"] < before["loss"] - 0.03, (before, after)
    assert after["ctr_auc"] > 0.65 and after["cvr_auc"] > 0.6
    pred = model.predict(x, batch_size=333)
    assert pred.shape == (len(y), 2) and ((pred > 0) & (pred < 1)).all()
    assert np.abs(pred[:, 0] - pred[:, 1]).max() > 1e-3  # two heads, not one output twice
    np.testing.assert_allclose(model.predict(x, batch_size=1000), pred, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", ctrkit.list_models(multitask=True))
def test_multitask_model_saves_and_loads_its_tasks(name, small_synthetic, tmp_path):
    x, y, features = small_synthetic
    model = ctrkit.build(name, features, seed=0, task_names=("click", "buy"),
                         task_types=("binary", "binary"), tower_dnn_hidden_units=(8,))
    model.save(tmp_path / "m.ctrkit")
    loaded = ctrkit.load(tmp_path / "m.ctrkit")
    assert loaded.task_names == ("click", "buy") and loaded.task_types == ("binary", "binary")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


@pytest.mark.parametrize("name", ctrkit.list_models(multitask=True))
def test_multitask_model_with_dense_features_and_attention(name, tutorial):
    """Every feature kind (the tutorial has dense ones), sequences through DIN's attention."""
    x, y, features, behaviour = tutorial
    model = ctrkit.build(name, features, seed=0, history_feature_list=behaviour,
                         task_names=("ctr", "cvr"))
    assert model.attention is not None
    model.compile("adagrad", "binary_crossentropy")
    model.fit(x, np.stack([y, y], 1), batch_size=3, epochs=2, verbose=0)
    assert model.predict(x).shape == (3, 2)
    w = model.explain(x)
    assert w.shape == (3, x["hist_" + behaviour[0]].shape[1])
    assert (w[np.asarray(x["hist_" + behaviour[0]]) == 0] == 0).all()  # padding: weight 0
    assert (w != 0).any()
