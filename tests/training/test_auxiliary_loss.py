"""The generic auxiliary-loss hook: BaseModel.add_auxiliary_loss, the trainer and History."""
from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import ctrkit
from ctrkit.errors import ConfigError
from ctrkit.registry import MODELS

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "custom_model.py"


class AuxModel(ctrkit.BaseModel):
    """Logistic model on the item; auxiliary loss: the mean squared item embedding, weight 3."""

    def __init__(self, features, alpha=3.0, add_in_eval=True, seed=0, init_std=0.1):
        super().__init__(features, seed=seed, init_std=init_std, l2_reg_embedding=0.0)
        self.w = torch.nn.Linear(features[1].embedding_dim, 1)
        self.alpha = alpha

    def forward(self, batch):
        e = self.embeddings.lookup("item", batch["item"])
        self.add_auxiliary_loss((e ** 2).sum(-1).mean(), alpha=self.alpha)
        return self.head(self.w(e).squeeze(-1))


def _model(small_synthetic, **kw):
    return AuxModel(small_synthetic[2], **kw)


def test_train_loss_minimises_data_plus_weighted_auxiliary_loss(small_synthetic):
    x, y, features = small_synthetic
    model = _model(small_synthetic)
    model.compile("sgd", lr=0.1)
    batch = model.example_batch(4)
    batch["item"] = torch.tensor([1, 2, 3, 4])
    yb = torch.tensor([1.0, 0.0, 1.0, 0.0])
    logits, loss, aux, total = model.trainer.train_loss(batch, yb, None)
    e = model.embeddings.lookup("item", batch["item"])
    expected_aux = 3.0 * (e ** 2).sum(-1).mean()
    torch.testing.assert_close(loss, F.binary_cross_entropy_with_logits(logits, yb))
    torch.testing.assert_close(aux, expected_aux)
    torch.testing.assert_close(total, loss + expected_aux)  # no regularizer here
    # scaled as the data loss is under DDP
    *_, scaled = model.trainer.train_loss(batch, yb, None, scale=0.5)
    torch.testing.assert_close(scaled, 0.5 * (loss + expected_aux))


def test_history_logs_aux_loss_apart_and_loss_stays_the_data_loss(small_synthetic):
    x, y, _ = small_synthetic
    model = _model(small_synthetic)
    model.compile("adam", metrics=["logloss"], lr=1e-2)
    seen = []

    class Record(ctrkit.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append((logs["loss"], logs["aux_loss"], logs["size"]))

    hist = model.fit(x, y, batch_size=300, epochs=2, verbose=0, shuffle=False,
                     callbacks=[Record()])
    assert len(hist.history["aux_loss"]) == 2
    first = seen[:len(seen) // 2]
    rows = sum(s for _, _, s in first)
    assert hist.history["loss"][0] == pytest.approx(sum(l * s for l, _, s in first) / rows)
    assert hist.history["aux_loss"][0] == pytest.approx(sum(a * s for _, a, s in first) / rows)
    # the aux term (weight 3 on the squared embeddings) is minimised: it falls
    assert hist.history["aux_loss"][1] < hist.history["aux_loss"][0]
    # evaluate's loss is the data loss only (eval mode: no auxiliary term is recorded)
    ev = model.evaluate(x, y, batch_size=500)
    assert ev["loss"] == pytest.approx(ev["logloss"], rel=1e-4)
    assert model.auxiliary_loss() is None


def test_terms_belong_to_one_forward_and_count_in_training_only(small_synthetic):
    model = _model(small_synthetic)
    batch = model.example_batch(3)
    model.train()
    model(batch)
    model(batch)
    first = model.auxiliary_loss()
    assert first is not None and first.dim() == 0   # the last forward's term, not two
    model.eval()
    model(batch)
    assert model.auxiliary_loss() is None


def test_models_without_auxiliary_losses_log_none(small_synthetic):
    x, y, features = small_synthetic
    model = ctrkit.build("base", features, dnn_hidden_units=(4,))
    model.compile("adam")
    hist = model.fit(x, y, batch_size=500, epochs=1, verbose=0)
    assert "aux_loss" not in hist.history


@pytest.mark.parametrize("loss, alpha, msg", [
    (torch.ones(3), 1.0, r"scalar tensor .*Tensor\(3,\)"),
    (0.5, 1.0, "scalar tensor .*float"),
    (torch.tensor(1.0), float("nan"), "alpha must be a finite number"),
])
def test_bad_auxiliary_losses_are_refused(small_synthetic, loss, alpha, msg):
    model = _model(small_synthetic)
    with pytest.raises(ConfigError, match=msg):
        model.add_auxiliary_loss(loss, alpha)


def test_custom_model_example_trains_end_to_end(capsys):
    with MODELS.scope():
        ns = runpy.run_path(str(EXAMPLE))
        assert "two_tower" in ctrkit.list_models()
        model, history, scores, same = ns["main"]()
    assert "two_tower" not in ctrkit.list_models()
    assert model.registered_name == "two_tower" and same
    aux = history.history["aux_loss"]
    assert len(aux) == 6 and aux[-1] < aux[0]
    assert history.history["auc"][-1] > 0.7 and scores["auc"] > 0.55
    assert "aux_loss: " in capsys.readouterr().out
