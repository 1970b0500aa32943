"""model.export: ONNX, torch.export (.pt2) and legacy TorchScript artefacts predict what
model.predict does, for every registered model, with no warning escaping the export."""
from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import torch

import ctrkit
from ctrkit import DenseFeat, SparseFeat, VarLenSparseFeat, get_feature_names
from ctrkit.errors import ConfigError
from ctrkit.export import example_inputs

# float results compared within a tolerance or run to run: CI reruns them under
# ATEN_CPU_CAPABILITY=avx2 and =default (see .ci/run)
pytestmark = pytest.mark.numeric


def _has(*modules):
    import importlib.util
    return all(importlib.util.find_spec(m) is not None for m in modules)


HAS_ONNX = _has("onnx", "onnxscript", "onnxruntime")


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
         "seq_length": lengths, "score": rng.random((n, 2)).astype(np.float32),
         "price": rng.random((n, 1)).astype(np.float32) * 10}
    y = (rng.random(n) < 0.5).astype(np.float32)
    features = [SparseFeat("user", 10, 4), SparseFeat("item", 12, 4), SparseFeat("cate", 5, 4),
                VarLenSparseFeat(SparseFeat("hist_item", 12, 4), maxlen, length_name="seq_length"),
                VarLenSparseFeat(SparseFeat("hist_cate", 5, 4), maxlen, length_name="seq_length"),
                DenseFeat("score", 2), DenseFeat("price", 1)]
    return x, y, features


def trained(name, **hparams):
    x, y, features = data(64, seed=0)
    model = ctrkit.build(name, features, **hparams)
    model.compile("adam", lr=0.02)
    tasks = getattr(model, "task_names", None) or ()
    if len(tasks) > 1:  # a multi-task model: later tasks are subsets of the first (ESMM's kind)
        rng = np.random.default_rng(1)
        y = np.stack([y] + [y * (rng.random(len(y)) < 0.5) for _ in tasks[1:]], axis=1)
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


def load_served(path, fmt):
    """A callable ``served(*tensors) -> numpy (B, 1)`` for the artefact at ``path``."""
    if fmt == "onnx":
        import onnxruntime as ort
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        return lambda *t: session.run(None, {k: v.numpy() for k, v in zip(names, t)})[0], names
    if fmt == "pt2":
        module = torch.export.load(str(path)).module()
    else:
        with warnings.catch_warnings():  # the legacy format: torch deprecates jit.load
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            module = torch.jit.load(str(path))

    def run(*t):
        out = module(*t)  # no no_grad(): an artefact's output must carry no autograd graph
        assert out.dtype == torch.float32 and not out.requires_grad
        return out.numpy()
    return run, None


FORMAT_SUFFIX = {"onnx": ".onnx", "pt2": ".pt2", "torchscript": ".pt"}
CASES = [*[(n, {}) for n in ctrkit.list_models()],
         ("din", {"att_weight_normalization": True}),
         *[("din", {"att_weight_normalization": m})
           for m in ("sigmoid", "softmax+count", "softmax+sum")],
         ("din", {"fused_attention": False, "dnn_use_bn": True}),
         ("din", {"packed_lookup": False, "att_activation": "prelu"}),
         # single-task models with one head per task (towers hooked onto the logit layers)
         ("din", {"task_names": ("ctr", "cvr")}),
         ("xdeepfm", {"task_names": ("ctr", "cvr")}),
         ("deepfm", {"task_names": ("ctr", "cvr", "like")})]


@pytest.mark.parametrize("fmt", ["onnx", "pt2", "torchscript"])
@pytest.mark.parametrize("name, hparams", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_export_matches_predict_for_every_model(tmp_path, name, hparams, fmt):
    """Every registered model (and DIN's attention switches), trained a little, exported in
    each format: the artefact predicts what ``predict`` does within 1e-5 on other batch sizes
    than the traced one, rows with empty, partial and full histories, dense features of
    dimension 2 and 1; no warning escapes the export (the suite turns warnings into errors)."""
    if fmt == "onnx" and not HAS_ONNX:
        pytest.skip("optional extra 'onnx' not installed: pip install 'ctrkit[onnx]'")
    model = trained(name, **hparams)
    path = model.export(tmp_path / f"model{FORMAT_SUFFIX[fmt]}", format=fmt)
    assert os.listdir(tmp_path) == [path.name]
    assert model.training  # export leaves the model's mode and parameters alone
    assert all(p.requires_grad for p in model.parameters())
    served, input_names = load_served(path, fmt)
    if input_names is not None:
        assert input_names == get_feature_names(model.features)
    for n, seed in [(1, 1), (37, 2), (200, 3)]:  # the export's example had 3 rows
        x, _, _ = data(n, seed)
        out = served(*inputs(model, x))
        expected = model.predict(x)  # (n, 1), or (n, T) for a multi-task model
        assert out.shape == (n, len(getattr(model, "task_names", None) or ["y"]))
        np.testing.assert_allclose(out, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("fmt", ["pt2", "onnx"])
def test_exported_rows_do_not_depend_on_their_batch(tmp_path, fmt):
    if fmt == "onnx" and not HAS_ONNX:
        pytest.skip("optional extra 'onnx' not installed: pip install 'ctrkit[onnx]'")
    model = trained("din")
    served, _ = load_served(model.export(tmp_path / f"m{FORMAT_SUFFIX[fmt]}"), fmt)
    x, _, _ = data(20, 4)
    whole = served(*inputs(model, x))
    one_by_one = np.concatenate([served(*[t[i:i + 1] for t in inputs(model, x)])
                                 for i in range(20)])
    np.testing.assert_allclose(whole, one_by_one, atol=1e-6, rtol=0)


def test_din_forward_takes_the_dense_path_only_while_tracing(monkeypatch):
    """One switch chooses DIN's attention path: packed in predict, dense under export."""
    from ctrkit.layers.tracing import tracing
    from ctrkit.models.din import AttentionPooling
    model = trained("din")
    calls = []
    original = AttentionPooling.pool_dense

    def recorded(self, *a, **k):
        calls.append("dense")
        return original(self, *a, **k)

    monkeypatch.setattr(AttentionPooling, "pool_dense", recorded)
    x, _, _ = data(9, 5)
    expected = model.predict(x)
    assert calls == []
    model.eval()
    with tracing(), torch.no_grad():
        logits = model(dict(zip(get_feature_names(model.features), inputs(model, x))))
    assert calls == ["dense"]
    np.testing.assert_allclose(torch.sigmoid(logits).numpy(), expected[:, 0], atol=1e-6)


def test_format_follows_the_suffix_and_refuses_ambiguity(tmp_path):
    from ctrkit.export import resolve_format
    assert resolve_format(tmp_path / "m.ONNX", None) == "onnx"
    assert resolve_format(tmp_path / "m.pt2", None) == "pt2"
    assert resolve_format(tmp_path / "m.bin", "torchscript") == "torchscript"
    model = ctrkit.build("din", data(4, 0)[2])
    with pytest.raises(ConfigError, match=r"Cannot tell the export format from .*m\.pt'.*'\.pt2'"):
        model.export(tmp_path / "m.pt")
    with pytest.raises(ConfigError, match=r"format='pt2' but the file is named .*m\.onnx"):
        model.export(tmp_path / "m.onnx", format="pt2")
    assert os.listdir(tmp_path) == []


def test_onnx_without_the_package_says_how_to_install(tmp_path, monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_onnx(name, *a, **kw):
        if name == "onnx":
            raise ImportError("No module named 'onnx'")
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_onnx)
    model = ctrkit.build("din", data(4, 0)[2])
    with pytest.raises(ConfigError, match=r"onnx and onnxscript.*pip install 'ctrkit\[onnx\]'"):
        model.export(tmp_path / "m.onnx", format="onnx")
    assert os.listdir(tmp_path) == []


def test_unknown_format():
    model = ctrkit.build("din", data(4, 0)[2])
    with pytest.raises(ConfigError, match="Unknown export format 'tflite'.*pt2.*onnx.*torchscript"):
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
            d_pooled, d_weights = pool(q, keys, mask, return_weights=True)
        again = pool(q, keys, mask, return_weights=True)  # packed again outside the block
    torch.testing.assert_close(again[0], pooled, atol=0, rtol=0)
    torch.testing.assert_close(d_pooled, pooled, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(d_weights, weights, atol=1e-6, rtol=1e-5)
    assert (d_weights[~mask] == 0).all() and (d_pooled[0] == 0).all()
