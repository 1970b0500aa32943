"""Every registered model learns at its default settings (issue 18).

1. One Adam step on a fixed batch moves every parameter: at Adam's first step the update of an
   entry is ``lr · g / (|g| + eps)``, so ``|g| / (|g| + eps)`` is the fraction of the learning
   rate the entry moves. Its median over each parameter's entries must be >= 0.5 (for an
   embedding table: over the rows the batch looks up; the other rows get no gradient by
   construction). DeepCTR's N(0, 1e-4) init fails this under a mean-reduced loss.
2. Two ids above 2^24 (where float32 can no longer tell neighbouring ids apart), one per label,
   are told apart within 32 Adam steps.

Parametrized over ``ctrkit.list_models()``, so a new plug-in is covered when it registers.
Exceptions (a parameter that cannot get a gradient at the first step, with the reason) go in
``DEAD_AT_FIRST_STEP``.
"""
import numpy as np
import pytest
import torch
from torch import nn

import ctrkit
from ctrkit import SparseFeat, VarLenSparseFeat
from ctrkit.callbacks import Callback

ADAM_EPS = 1e-8
#: (model name, parameter name) -> why it cannot move at the first step.
DEAD_AT_FIRST_STEP = {
    ("dien", "attention_unit.out.bias"):
        "DIEN softmax-normalises its attention scores by default; a constant added to every "
        "score cancels in the softmax, so the score layer's bias has no gradient (it is "
        "redundant, not stuck)",
}


class GradientProbe(Callback):
    """Keeps a copy of every parameter's gradient after the first training batch."""

    def on_train_batch_end(self, batch, logs=None):
        if batch == 0:
            self.grads = {n: p.grad.detach().clone()
                          for n, p in self.model.named_parameters() if p.grad is not None}
            self.model.stop_training = True


def effective_steps(model, grads):
    """Parameter name -> median of |g| / (|g| + eps) over its entries (embedding tables:
    over the rows with a gradient, i.e. the rows the batch looked up)."""
    tables = {f"{name}.weight" for name, m in model.named_modules() if isinstance(m, nn.Embedding)}
    out = {}
    for name, p in model.named_parameters():
        g = grads.get(name, torch.zeros_like(p)).abs()
        if name in tables:
            g = g[g.reshape(g.shape[0], -1).amax(dim=1) > 0]
            if g.numel() == 0:
                out[name] = 0.0
                continue
        out[name] = float((g / (g + ADAM_EPS)).median())
    return out


@pytest.fixture(scope="module")
def batch_data():
    """2,000 planted-signal rows with embedding_dim 8 (the width of the project's three data
    sets; see docs/defaults.md for what changes at 4)."""
    from ctrkit.datasets import make_synthetic
    return make_synthetic(n_rows=2000, n_users=100, n_items=200, n_categories=10, maxlen=8,
                          embedding_dim=8, seed=1)


@pytest.mark.parametrize("name", ctrkit.list_models(multitask=False))
def test_first_adam_step_moves_every_parameter_at_defaults(name, batch_data):
    x, y, features = batch_data
    model = ctrkit.build(name, features)
    model.compile("adam", "binary_crossentropy")
    probe = GradientProbe()
    model.fit(x, y, batch_size=256, epochs=1, verbose=0, shuffle=False, callbacks=[probe])
    steps = effective_steps(model, probe.grads)
    dead = {n: round(s, 3) for n, s in steps.items()
            if s < 0.5 and (name, n) not in DEAD_AT_FIRST_STEP}
    assert not dead, (f"{name}: these parameters move less than half the learning rate at "
                      f"Adam's first step (median |g|/(|g|+eps)): {dead}")


def test_deepctr_init_is_dead_at_the_first_step(batch_data):
    """The check above is not vacuous: DeepCTR's scheme under a mean loss fails it."""
    x, y, features = batch_data
    model = ctrkit.build("din", features, init="deepctr")
    model.compile("adam", "binary_crossentropy")
    probe = GradientProbe()
    model.fit(x, y, batch_size=256, epochs=1, verbose=0, shuffle=False, callbacks=[probe])
    steps = effective_steps(model, probe.grads)
    assert steps["embeddings.tables.item.weight"] < 0.1
    assert steps["attention.unit.linears.0.weight"] < 0.01
    assert prediction_gap_after_32_steps("din", 5, init="deepctr") < 0.2


def separable_problem(first_id, dim=8, rows=64):
    """Two candidate ids, A = ``first_id`` (label 1) and B = A + 1 (label 0), alternating;
    everything else is the same in every row. The item table has A + 2 rows."""
    a, b = first_id, first_id + 1
    item = np.where(np.arange(rows) % 2 == 0, a, b).astype(np.int64)
    x = {"user": np.ones(rows, np.int64), "item": item, "cate": np.ones(rows, np.int64),
         "hist_item": np.full((rows, 2), 3, np.int64), "hist_cate": np.ones((rows, 2), np.int64),
         "seq_length": np.full(rows, 2, np.int64)}
    y = (item == a).astype(np.float32)
    vocab = b + 1
    features = [SparseFeat("user", 4, dim), SparseFeat("item", vocab, dim),
                SparseFeat("cate", 4, dim),
                VarLenSparseFeat(SparseFeat("hist_item", vocab, dim), 2, length_name="seq_length"),
                VarLenSparseFeat(SparseFeat("hist_cate", 4, dim), 2, length_name="seq_length")]
    return x, y, features


def prediction_gap_after_32_steps(name, first_id, dim=8, **hparams):
    x, y, features = separable_problem(first_id, dim)
    model = ctrkit.build(name, features, **hparams)
    model.compile("adam", "binary_crossentropy")
    # batches of 2 in order: every step sees one row of each id; 64 rows = 32 steps
    model.fit(x, y, batch_size=2, epochs=1, verbose=0, shuffle=False)
    pred = model.predict({k: v[:2] for k, v in x.items()}).ravel()
    return pred[0] - pred[1]


@pytest.mark.parametrize("name", ctrkit.list_models(multitask=False))
def test_two_ids_are_told_apart_within_32_steps(name):
    assert prediction_gap_after_32_steps(name, 5) >= 0.2


@pytest.mark.slow
@pytest.mark.parametrize("name", ctrkit.list_models(multitask=False))
def test_two_ids_above_2_24_are_told_apart_within_32_steps(name):
    """The same for every model with a 2^24 + 6-row item table: ids 2^24 + 4 and 2^24 + 5
    round to the same float32 but stay distinct int64 ids, so a model that merged them into
    one row could not tell them apart (gap 0). Every Adam step of a default model walks the
    whole dense table (5-11 s per model on the project's 2-core machine)."""
    first = 2 ** 24 + 4
    assert np.float32(first) == np.float32(first + 1)
    assert prediction_gap_after_32_steps(name, first, dim=1) >= 0.2
