"""model.export: TorchScript / ONNX artefacts that predict what model.predict does."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import ctrkit
from ctrkit import DenseFeat, SparseFeat, VarLenSparseFeat, get_feature_names
from ctrkit.errors import ConfigError
from ctrkit.export import example_inputs

# TorchScript is deprecated in torch >= 2.9 but still the most widely served format.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")


def data(n: int, seed: int, maxlen: int = 6):
    """Rows whose history lengths cover 0 (no history) .. maxlen (full)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, maxlen + 1, n)
    lengths[:2] = [0, maxlen][:n]
    valid = np.arange(maxlen)[None, :] < lengths[:, None]
    x = {"user": rng.integers(0, 10, n), "item": rng.integers(1, 12, n),
         "cate": rng.integers(1, 5, n),
         "hist_item": np.where(valid, rng.integers(1, 12, (n, maxlen)), 0),
         "hist_cate": np.where(valid, rng.integers(1, 5, (n, maxlen)), 0),
         "seq_length": lengths, "score": rng.random((n, 2)).astype(np.float32)}
    y = (rng.random(n) < 0.5).astype(np.float32)
    features = [SparseFeat("user", 10, 4), SparseFeat("item", 12, 4), SparseFeat("cate", 5, 4),
                VarLenSparseFeat(SparseFeat("hist_item", 12, 4), maxlen, length_name="seq_length"),
                VarLenSparseFeat(SparseFeat("hist_cate", 5, 4), maxlen, length_name="seq_length"),
                DenseFeat("score", 2)]
    return x, y, features


def trained(name, **hparams):
    x, y, features = data(64, seed=0)
    model = ctrkit.build(name, features, **hparams)
    model.compile("adam", lr=0.02)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    return model


def inputs(model, x):
    return [torch.as_tensor(np.asarray(x[n])) for n in get_feature_names(model.features)]


def test_example_inputs_cover_empty_and_full_histories():
    model = ctrkit.build("din", data(4, 0)[2])
    ex = dict(zip(get_feature_names(model.features), example_inputs(model, n=8)))
    assert ex["seq_length"].tolist() == [0, 1, 2, 3, 4, 5, 6, 0]
    assert ex["hist_item"].dtype == torch.int64 and ex["score"].dtype == torch.float32
    assert ((ex["hist_item"] != 0).sum(1) == ex["seq_length"]).all()


@pytest.mark.parametrize("name, hparams", [
    *[(n, {}) for n in ctrkit.list_models(multitask=False)],
    ("din", {"att_weight_normalization": True}),
    ("din", {"fused_attention": False, "dnn_use_bn": True}),
])
def test_torchscript_matches_predict_on_other_batch_sizes_and_masks(tmp_path, name, hparams):
    model = trained(name, **hparams)
    path = model.export(tmp_path / "model.pt")
    assert os.listdir(tmp_path) == ["model.pt"]
    assert model.training  # export leaves the model's mode alone
    served = torch.jit.load(str(path))
    for n, seed in [(1, 1), (37, 2), (200, 3)]:  # the trace used 3 rows
        x, _, _ = data(n, seed)
        out = served(*inputs(model, x))
        assert out.shape == (n, 1) and out.dtype == torch.float32
        assert not out.requires_grad
        np.testing.assert_allclose(out.numpy(), model.predict(x), atol=1e-5, rtol=0)


def test_torchscript_rows_do_not_depend_on_their_batch(tmp_path):
    model = trained("din")
    served = torch.jit.load(str(model.export(tmp_path / "m.pt")))
    x, _, _ = data(20, 4)
    whole = served(*inputs(model, x))
    one_by_one = torch.cat([served(*[t[i:i + 1] for t in inputs(model, x)]) for i in range(20)])
    torch.testing.assert_close(whole, one_by_one, atol=1e-6, rtol=0)


def test_onnx_matches_predict(tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    for hparams in ({}, {"att_weight_normalization": True}):
        model = trained("din", **hparams)
        path = model.export(tmp_path / "model.onnx", format="onnx")
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == get_feature_names(model.features)
        for n, seed in [(1, 1), (37, 2)]:
            x, _, _ = data(n, seed)
            feed = {k: t.numpy() for k, t in zip(get_feature_names(model.features),
                                                 inputs(model, x))}
            (out,) = session.run(None, feed)
            assert out.shape == (n, 1)
            np.testing.assert_allclose(out, model.predict(x), atol=1e-5, rtol=0)


def test_onnx_without_the_package_says_how_to_install(tmp_path, monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_onnx(name, *a, **kw):
        if name == "onnx":
            raise ImportError("No module named 'onnx'")
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_onnx)
    model = ctrkit.build("din", data(4, 0)[2])
    with pytest.raises(ConfigError, match=r"pip install 'ctrkit\[onnx\]'"):
        model.export(tmp_path / "m.onnx", format="onnx")
    assert os.listdir(tmp_path) == []


def test_unknown_format():
    model = ctrkit.build("din", data(4, 0)[2])
    with pytest.raises(ConfigError, match="Unknown export format 'tflite'.*torchscript"):
        model.export("m.tflite", format="tflite")


@pytest.mark.parametrize("weight_norm", [False, True])
def test_dense_attention_equals_the_layer_in_eval(weight_norm):
    from ctrkit.export import dense_layers
    from ctrkit.models.din import AttentionPooling
    torch.manual_seed(0)
    pool = AttentionPooling(6, (8, 4), "dice", weight_norm, init=0.3)
    pool.train()
    pool(torch.randn(16, 6), torch.randn(16, 5, 6), torch.rand(16, 5) < 0.6)  # move Dice stats
    pool.eval()
    q, keys = torch.randn(9, 6), torch.randn(9, 5, 6)
    mask = torch.arange(5).unsqueeze(0) < torch.tensor([0, 1, 2, 3, 4, 5, 5, 2, 0]).unsqueeze(1)
    with torch.no_grad():
        pooled, weights = pool(q, keys, mask, return_weights=True)
        with dense_layers(pool):
            assert "forward" in pool.__dict__
            d_pooled, d_weights = pool(q, keys, mask, return_weights=True)
        assert "forward" not in pool.__dict__  # the layer's own forward is back
    torch.testing.assert_close(d_pooled, pooled, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(d_weights, weights, atol=1e-6, rtol=1e-5)
    assert (d_weights[~mask] == 0).all() and (d_pooled[0] == 0).all()
