"""Dtype policies, the Keras 3 way (issue 30): 'float32' is exactly today's path,
'mixed_bfloat16' computes the forward in bf16 with float32 weights, losses and metrics."""
import numpy as np
import pytest
import torch

import ctrkit
from ctrkit import mixed_precision
from ctrkit.errors import ConfigError


@pytest.fixture(autouse=True)
def _reset_global_policy():
    yield
    mixed_precision.set_global_policy(None)


def _trained(features, x, y, policy=None, name="din"):
    model = ctrkit.build(name, features, seed=0)
    model.compile("adam", "binary_crossentropy", metrics=["auc"], lr=1e-2, dtype_policy=policy)
    history = model.fit(x, y, batch_size=128, epochs=2, verbose=0)
    return model, history


def test_float32_policy_is_bit_identical_to_no_policy(small_synthetic):
    x, y, features = small_synthetic
    a, ha = _trained(features, x, y)
    b, hb = _trained(features, x, y, "float32")
    assert ha.history == hb.history
    assert np.array_equal(a.predict(x), b.predict(x))


@pytest.mark.parametrize("name", ctrkit.list_models(multitask=False))
def test_mixed_bfloat16_trains_every_model_with_float32_weights(name, small_synthetic):
    x, y, features = small_synthetic
    model, history = _trained(features, x, y, "mixed_bfloat16", name=name)
    _, reference = _trained(features, x, y, "float32", name=name)
    assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights
    loss = history.history["loss"]
    assert np.isfinite(loss).all() and loss[-1] < loss[0]
    # it learns as float32 does, within bf16's noise (2 epochs on 2,000 rows)
    assert history.history["auc"][-1] > reference.history["auc"][-1] - 0.05
    bf16 = model.predict(x)
    assert bf16.dtype == np.float64 and np.isfinite(bf16).all()
    # the same weights predicted in float32 agree within bf16's precision
    model.compile("adam", "binary_crossentropy", dtype_policy="float32")
    np.testing.assert_allclose(bf16, model.predict(x), atol=0.03)


def test_the_forward_really_runs_in_bfloat16(small_synthetic):
    x, y, features = small_synthetic
    model = ctrkit.build("din", features, seed=0)
    model.compile("adam", "binary_crossentropy", dtype_policy="mixed_bfloat16")
    seen = []
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append(o.dtype)) for m in linears]
    model.predict(x)
    for h in hooks:
        h.remove()
    assert seen and set(seen) == {torch.bfloat16}  # every linear layer computed in bf16
    assert model.trainer.dtype_policy.compute_dtype == "bfloat16"


def test_global_policy_applies_at_compile_and_resets(small_synthetic):
    x, y, features = small_synthetic
    mixed_precision.set_global_policy("mixed_bfloat16")
    model = ctrkit.build("base", features, seed=0)
    model.compile("adam", "binary_crossentropy")
    assert model.trainer.dtype_policy.name == "mixed_bfloat16"
    mixed_precision.set_global_policy(None)
    assert mixed_precision.global_policy().name == "float32"
    assert model.trainer.dtype_policy.name == "mixed_bfloat16"  # fixed at compile, as Keras


def test_bad_policies_are_refused_with_the_fix(small_synthetic):
    _, _, features = small_synthetic
    model = ctrkit.build("base", features, seed=0)
    with pytest.raises(ConfigError, match=r"dtype_policy='mixed_bf16' is not one of"):
        model.compile("adam", "binary_crossentropy", dtype_policy="mixed_bf16")
    with pytest.raises(ConfigError, match=r"needs a CUDA device .* use 'mixed_bfloat16'"):
        model.compile("adam", "binary_crossentropy", dtype_policy="mixed_float16")
    assert getattr(model, "trainer", None) is None  # nothing half-compiled


@pytest.mark.skipif(not torch.cuda.is_available(), reason="mixed_float16 needs a CUDA GPU")
def test_mixed_float16_on_cuda_scales_the_loss(small_synthetic):
    x, y, features = small_synthetic
    model = ctrkit.build("din", features, seed=0, device="cuda")
    model.compile("adam", "binary_crossentropy", metrics=["auc"], dtype_policy="mixed_float16")
    history = model.fit(x, y, batch_size=128, epochs=2, verbose=0)
    assert model.trainer.scaler is not None and np.isfinite(history.history["loss"]).all()


def test_jit_compile_true_is_refused_with_the_reason_and_auto_runs_eagerly(small_synthetic):
    _, _, features = small_synthetic
    model = ctrkit.build("base", features, seed=0)
    with pytest.raises(ConfigError, match=r"jit_compile=True\) is not supported: .*torch.compile"):
        model.compile("adam", "binary_crossentropy", jit_compile=True)
    with pytest.raises(ConfigError, match=r"jit_compile must be 'auto', False or True"):
        model.compile("adam", "binary_crossentropy", jit_compile="xla")
    model.compile("adam", "binary_crossentropy", jit_compile="auto")  # Keras's default
    assert model.trainer is not None
