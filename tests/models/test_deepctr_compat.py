"""Regression tests of issue 15 for models built the DeepCTR-Torch way.

Defect 4 (whatever ``build`` accepts, ``save`` saves: feature objects as
``linear_feature_columns``, ``dtype=torch.int32``), DeepFM without a linear part or a deep
tower, and PNN's outer product.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import ctrkit
from ctrkit import DenseFeat, SparseFeat, VarLenSparseFeat
from ctrkit.errors import ConfigError
from ctrkit.layers.interaction import OuterProduct


def deepctr_data(n=64, seed=0):
    """Features declared as DeepCTR-Torch's tests do (torch dtypes) and random data."""
    rng = np.random.default_rng(seed)
    features = [SparseFeat("s0", 5, 4, dtype=torch.int32), SparseFeat("s1", 7, 4, dtype=torch.int32),
                DenseFeat("d0", 1, dtype=torch.float32),
                VarLenSparseFeat(SparseFeat("seq", 6, embedding_dim=4), maxlen=3, combiner="sum")]
    x = {"s0": rng.integers(0, 5, n), "s1": rng.integers(0, 7, n), "d0": rng.random(n),
         "seq": rng.integers(0, 6, (n, 3))}
    return x, rng.integers(0, 2, n), features


# ------------------------------------------------------------------ defect 4
@pytest.mark.parametrize("name", ["wdl", "deepfm"])
def test_defect4_save_a_model_built_with_feature_objects_and_torch_dtypes(name, tmp_path):
    x, y, features = deepctr_data()
    model = ctrkit.build(name, features, linear_feature_columns=features[:3],
                         dnn_hidden_units=(8,), init_std=0.05)
    model.compile("adam", "binary_crossentropy", metrics=["acc"])
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    path = model.save(tmp_path / f"{name}.ctrkit")
    loaded = ctrkit.load(path)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.hparams["linear_feature_columns"] == ["s0", "s1", "d0"]
    assert sorted(loaded.linear.table_of) == ["s0", "s1"]  # the same wide part, by name


def test_defect4_model_checkpoint_writes_the_model(tmp_path):
    x, y, features = deepctr_data()
    model = ctrkit.build("deepfm", features, linear_feature_columns=features,
                         dnn_hidden_units=(8,))
    model.compile("adam", "binary_crossentropy", metrics=["acc"])
    ckpt = ctrkit.callbacks.ModelCheckpoint(str(tmp_path / "model.ckpt"), monitor="val_acc",
                                            save_best_only=True, mode="max")
    model.fit(x, y, batch_size=32, epochs=1, verbose=0, validation_split=0.5, callbacks=[ckpt])
    np.testing.assert_array_equal(ctrkit.load(tmp_path / "model.ckpt").predict(x),
                                  model.predict(x))


@pytest.mark.parametrize("given,name", [(torch.int32, "int32"), (torch.int64, "int64"),
                                        (np.int32, "int32"), (np.dtype("int64"), "int64"),
                                        ("int32", "int32"), ("string", "string")])
def test_defect4_dtype_is_kept_as_its_name(given, name):
    f = SparseFeat("a", 3, dtype=given)
    assert f.dtype == name and VarLenSparseFeat(f, 2).dtype == name
    assert SparseFeat("a", 3, dtype=given) == SparseFeat("a", 3, dtype=name)
    assert DenseFeat("b", dtype=torch.float32).dtype == "float32"


@pytest.mark.parametrize("bad", [None, object(), 3.5])
def test_defect4_a_dtype_that_is_no_dtype_is_refused(bad):
    with pytest.raises(ConfigError, match=r"Feature 'a': dtype must be a dtype name"):
        SparseFeat("a", 3, dtype=bad)


# ------------------------------------------------------------------ DeepFM parts
def test_deepfm_without_linear_part_is_fm_plus_deep():
    x, y, features = deepctr_data()
    model = ctrkit.build("deepfm", features, linear_feature_columns=[], dnn_hidden_units=(8,))
    assert model.linear is None
    batch = model.example_batch(4)
    fields = torch.stack(model.field_embeddings(batch), dim=1)
    expected = model.head(model.fm(fields) + model.deep_logit(model.dnn_input(batch)))
    torch.testing.assert_close(model(batch), expected)


def test_deepfm_without_deep_tower_is_linear_plus_fm(tmp_path):
    x, y, features = deepctr_data()
    model = ctrkit.build("deepfm", features, dnn_hidden_units=(), init_std=0.1)
    assert model.dnn is None and model.dnn_linear is None
    cols = ctrkit.inputs.prepare_inputs(model.features, x)
    batch = cols.slice(0, 8, model.device)
    fields = torch.stack(model.field_embeddings(batch), dim=1)
    torch.testing.assert_close(model(batch), model.head(model.linear(batch) + model.fm(fields)))
    model.compile("adam", metrics=["acc"])
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    loaded = ctrkit.load(model.save(tmp_path / "m.ctrkit"))
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_deepfm_with_no_part_but_the_bias_predicts_the_bias():
    x, _, features = deepctr_data()
    model = ctrkit.build("deepfm", features, linear_feature_columns=[], use_fm=False,
                         dnn_hidden_units=())
    with torch.no_grad():
        model.head.bias.fill_(0.3)
    np.testing.assert_allclose(model.predict(x), 1 / (1 + np.exp(-0.3)), rtol=1e-6)


def test_wdl_without_wide_part_or_deep_tower():
    x, _, features = deepctr_data()
    deep_only = ctrkit.build("wdl", features, linear_feature_columns=[], dnn_hidden_units=(8,))
    wide_only = ctrkit.build("wdl", features, dnn_hidden_units=())
    batch = deep_only.example_batch(3)
    torch.testing.assert_close(deep_only(batch),
                               deep_only.head(deep_only.deep_logit(deep_only.dnn_input(batch))))
    torch.testing.assert_close(wide_only(batch), wide_only.head(wide_only.linear(batch)))


def test_base_model_still_needs_hidden_units():
    _, _, features = deepctr_data()
    with pytest.raises(ConfigError, match="hidden_units must be a non-empty list"):
        ctrkit.build("base", features, dnn_hidden_units=())


# ------------------------------------------------------------------ PNN outer product
@pytest.mark.parametrize("kernel_type", ["mat", "vec", "num"])
def test_outer_product_is_the_bilinear_form_per_pair(kernel_type):
    torch.manual_seed(0)
    layer = OuterProduct(4, 3, kernel_type)
    fields = torch.randn(5, 4, 3)
    out = layer(fields)
    assert out.shape == (5, 6)
    pairs = [(i, j) for i in range(4) for j in range(i + 1, 4)]
    for k, (i, j) in enumerate(pairs):
        w = layer.kernel[k]
        matrix = {"mat": w, "vec": torch.diag(w), "num": w * torch.eye(3)}[kernel_type]
        expected = torch.einsum("be,ef,bf->b", fields[:, i], matrix, fields[:, j])
        torch.testing.assert_close(out[:, k], expected)


@pytest.mark.parametrize("use_inner,use_outer,width", [(True, False, 3), (False, True, 3),
                                                       (True, True, 6), (False, False, 0)])
def test_pnn_product_flags_set_the_mlp_input(use_inner, use_outer, width, tmp_path):
    x, y, features = deepctr_data()
    model = ctrkit.build("pnn", features, use_inner=use_inner, use_outter=use_outer,
                         kernel_type="vec", dnn_hidden_units=(8,))
    # 3 fields of width 4 (s0, s1, the pooled seq) and 1 dense value; 3 pairs per product
    assert model.dnn.linears[0].in_features == 3 * 4 + width + 1
    model.compile("adam", metrics=["acc"])
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    loaded = ctrkit.load(model.save(tmp_path / "pnn.ctrkit"))
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_pnn_outer_flag_spellings():
    _, _, features = deepctr_data()
    assert ctrkit.build("pnn", features, use_outer=True).use_outer
    assert ctrkit.build("pnn", features, use_outter=True).use_outer
    with pytest.raises(ConfigError, match="use_outer=True and use_outter=False"):
        ctrkit.build("pnn", features, use_outer=True, use_outter=False)
    with pytest.raises(ConfigError, match="kernel_type must be one of"):
        ctrkit.build("pnn", features, use_outer=True, kernel_type="tensor")
