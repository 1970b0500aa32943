"""Weight-derived constants reused across predict batches are never stale."""
import numpy as np
import pytest
import torch

import ctrkit
from ctrkit.layers.frozen import derived, frozen_weights
from ctrkit.callbacks import Callback


def test_the_retired_cache_computes_every_time_and_keeps_its_names():
    """Issue 28 retired the per-predict cache (it bought 4-5%): derived() always computes."""
    w = torch.ones(3)
    calls = []

    def compute():
        calls.append(1)
        return w * 2

    owner = object()
    with frozen_weights() as scope:
        derived(owner, "c", [w], compute), derived(owner, "c", [w], compute)
        w.mul_(5)
        assert derived(owner, "c", [w], compute).tolist() == [10.0] * 3
        scope.clear()
    assert len(calls) == 3


def _data(n=96, T=6, seed=0):
    rng = np.random.default_rng(seed)
    lens = rng.integers(0, T + 1, n)
    hist = rng.integers(1, 40, (n, T)) * (np.arange(T)[None] < lens[:, None])
    return {"user": rng.integers(0, 30, n), "item": rng.integers(1, 40, n),
            "cate": rng.integers(1, 7, n), "hist_item": hist, "hist_cate": hist % 7,
            "seq_length": lens}


def _model():
    S, V = ctrkit.SparseFeat, ctrkit.VarLenSparseFeat
    feats = [S("user", 30, 4), S("item", 40, 4), S("cate", 7, 4),
             V(S("hist_item", 40, 4), 6, length_name="seq_length"),
             V(S("hist_cate", 7, 4), 6, length_name="seq_length")]
    model = ctrkit.build("din", feats, init_std=0.3, seed=3)
    model.compile("adam", "binary_crossentropy")
    return model


def _change_weights(model):
    unit = model.attention.unit
    with torch.no_grad():
        unit.linears[0].weight.mul_(-2.0)
        unit.activations[0].alpha.add_(0.7)
        unit.activations[0].running_var.mul_(3.0)


def _change_through_data(model):  # .data bypasses version counters
    unit = model.attention.unit
    unit.linears[0].weight.data.mul_(-2.0)
    unit.activations[0].running_var.data.mul_(3.0)


def _change_running_var(model):  # a buffer only
    model.attention.unit.activations[0].running_var.mul_(5.0)


def _change_eps(model):  # a plain attribute
    model.attention.unit.activations[0].eps = 2.0


class ChangeAt(Callback):
    def __init__(self, step, change, hook="on_predict_batch_begin"):
        super().__init__()
        self.step, self.change = step, change
        setattr(self, hook, self._maybe_change)

    def _maybe_change(self, batch, logs=None):
        if batch == self.step:
            self.change(self.model)


@pytest.mark.parametrize("change", [_change_weights, _change_through_data, _change_running_var,
                                    _change_eps])
@pytest.mark.parametrize("hook", ["on_predict_batch_begin", "on_predict_batch_end"])
def test_a_callback_changing_weights_mid_predict_is_seen_by_the_next_batch(change, hook):
    x = _data()
    model = _model()
    before = model.predict(x, batch_size=32)
    # at the end of batch 1 or the beginning of batch 2: batches 2 and 3 see the change
    step = 1 if hook == "on_predict_batch_end" else 2
    mixed = model.predict(x, batch_size=32, callbacks=[ChangeAt(step, change, hook)])
    after = model.predict(x, batch_size=32)
    reference = _model()
    change(reference)
    np.testing.assert_allclose(after, reference.predict(x, batch_size=32), rtol=1e-6)
    assert np.abs(after - before).max() > 1e-3  # the change matters
    np.testing.assert_allclose(mixed[:64], before[:64], rtol=1e-6)
    np.testing.assert_allclose(mixed[64:], after[64:], rtol=1e-6)


def test_weights_created_in_inference_mode_predict_like_the_others():
    """Inference tensors have no version counter: the scope computes instead of caching."""
    x = _data()
    with torch.inference_mode():
        frozen = _model()
    assert frozen.attention.unit.linears[0].weight.is_inference()
    np.testing.assert_allclose(frozen.predict(x, batch_size=32), _model().predict(x, batch_size=32),
                               rtol=1e-6)
    np.testing.assert_allclose(frozen.explain(x), _model().explain(x), rtol=1e-6, atol=1e-7)
