"""The in-memory adapter: the refactor onto the batch-source contract changes nothing.

The reference below is the Trainer's loop as it was before the contract existed (columns
taken by index from a per-epoch permutation of the model's generator), written out by hand;
``fit`` must give bit-identical weights and logs.
"""
from __future__ import annotations

import numpy as np
import torch

from ctrkit.inputs import prepare_inputs
from ctrkit.training.data_adapters import ArrayDataAdapter, get_data_adapter
from ctrkit.training.trainer import predict_logits
from trainer_helpers import rows, same_state, small_din, snapshot


def reference_fit(model, x, y, w, batch_size, epochs, shuffle=True):
    """The pre-contract loop: returns per-epoch (loss, auc, gauc) computed as it did."""
    tr = model.trainer
    cols = prepare_inputs(model.features, x, extra=["user"])
    yt = torch.from_numpy(y.astype(np.float32))
    wt = torch.from_numpy(w.astype(np.float32))
    n = len(cols)
    model.regularizer.prepare(model, cols)
    gen = model.rng
    logs = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(0, 2 ** 62, (1,), generator=gen)))
        for _ in range(epochs):
            order = torch.randperm(n, generator=gen) if shuffle else torch.arange(n)
            preds = torch.empty(n, dtype=torch.float32)
            loss_sum, seen = 0.0, 0
            for step in range(-(-n // batch_size)):
                idx = order[step * batch_size:(step + 1) * batch_size]
                model.train()
                batch = cols.take(idx)
                logits, loss, _, total = tr.train_loss(batch, yt[idx], wt[idx])
                tr.optimizer.zero_grad(set_to_none=True)
                total.backward()
                tr.optimizer.step()
                preds[seen:seen + len(idx)] = logits.detach().float()
                seen += len(idx)
                loss_sum += float(loss.detach()) * len(idx)
            p = model.head.output(preds.double()).numpy()
            m = tr.compute_metrics(yt[order].numpy(), p, wt[order].numpy(),
                                   cols.subset(order))
            logs.append({"loss": loss_sum / seen, **m})
    model.train()
    return logs


def _model(features):
    model = small_din(features, embedding_regularizer="mba", l2_reg_embedding=1e-3)
    model.compile("adam", metrics=["auc", "gauc", "logloss"], gauc_group="user", lr=0.01)
    return model


def test_fit_on_arrays_is_bit_identical_to_the_pre_contract_loop(small_synthetic):
    x, y, features = small_synthetic
    x, y = rows(x, y, 600)
    w = np.random.default_rng(0).uniform(0.2, 2.0, len(y))
    ref = _model(features)
    ref_logs = reference_fit(ref, x, y, w, batch_size=64, epochs=2)
    model = _model(features)
    h = model.fit(x, y, sample_weight=w, batch_size=64, epochs=2, verbose=0)
    assert same_state(snapshot(model), snapshot(ref))
    for epoch, logs in enumerate(ref_logs):
        for k, v in logs.items():
            assert h.history[k][epoch] == v, k  # exactly: same rows, same order, same sums
    # the weights moved: the comparison means something
    assert not same_state(snapshot(model), snapshot(_model(features)))


def test_evaluate_and_predict_on_arrays_match_the_plain_computation(small_synthetic):
    x, y, features = small_synthetic
    x, y = rows(x, y, 300)
    model = _model(features)
    model.fit(x, y, batch_size=64, epochs=1, verbose=0)
    cols = prepare_inputs(model.features, x)
    model.eval()
    with torch.no_grad():
        logits = model(cols.tensors)
    model.train()
    np.testing.assert_allclose(predict_logits(model, cols, 37).numpy(), logits.numpy(),
                               rtol=1e-5, atol=1e-6)
    logs = model.evaluate(x, y, batch_size=37)
    p = model.predict(x, batch_size=37).ravel()
    ref = model.trainer.compute_metrics(y, p, None, {"user": x["user"]})
    for k, v in ref.items():
        assert logs[k] == v, k


def test_the_adapter_splits_and_shards_by_position(small_synthetic):
    x, y, features = small_synthetic
    model = _model(features)
    data = get_data_adapter(model, x, y, groups=["user"])
    assert isinstance(data, ArrayDataAdapter) and data.num_rows == len(y)
    parts = [data.shard(r, 3) for r in range(3)]
    assert [p.num_rows for p in parts] == [len(y) * (r + 1) // 3 - len(y) * r // 3
                                           for r in range(3)]
    joined = torch.cat([b.y for p in parts for b in p.batches(100)])
    assert torch.equal(joined, data.y)
    assert torch.equal(torch.cat([b.x["user"] for b in data.batches(128)]),
                       torch.from_numpy(x["user"]))
