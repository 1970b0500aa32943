"""Write your own model plug-in: a two-tower scorer with an auxiliary self-supervised loss.

A model subclasses ``ctrkit.BaseModel``, is registered with ``@ctrkit.register_model``, and
implements ``forward(batch) -> logits (B,)``. Everything else (compile/fit/evaluate/predict,
callbacks, save/load, export, DDP under torchrun) comes from ctrkit. The model below also adds
an auxiliary loss with ``self.add_auxiliary_loss``: the trainer minimises it with the data
loss and logs it apart as ``aux_loss`` (see docs/plugins.md).

Run: python examples/custom_model.py
"""
import argparse
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import ctrkit
from ctrkit.datasets import make_synthetic


@ctrkit.register_model("two_tower")
class TwoTower(ctrkit.BaseModel):
    """``logit = <user tower, item tower>``; the user tower sees the user and the mean of the
    history, the item tower the candidate item and its category.

    Auxiliary task (no labels needed): from the user tower alone, predict whether the
    candidate item occurs in the user's history. Weight ``aux_weight``.
    """

    def __init__(self, dnn_feature_columns, candidate="item", history="hist_item",
                 tower_dim=16, aux_weight=0.5, init_std=0.01, seed=1024, device="cpu"):
        super().__init__(dnn_feature_columns, init_std=init_std, seed=seed, device=device)
        by_name = {f.name: f for f in self.features}
        self.candidate, self.history = by_name[candidate], by_name[history]
        e = self.candidate.embedding_dim
        self.user_tower = nn.Linear(by_name["user"].embedding_dim + e, tower_dim)
        self.item_tower = nn.Linear(e + by_name["cate"].embedding_dim, tower_dim)
        self.aux_head = nn.Linear(tower_dim + e, 1)
        self.aux_weight = float(aux_weight)

    def forward(self, batch):
        hist = self.pool_sequences(batch, [self.history])[0]       # mean over valid positions
        user = torch.tanh(self.user_tower(torch.cat(
            [self.embeddings.lookup("user", batch["user"]), hist], dim=-1)))
        cand = self.embeddings.lookup(self.candidate.name, batch[self.candidate.name])
        item = torch.tanh(self.item_tower(torch.cat(
            [cand, self.embeddings.lookup("cate", batch["cate"])], dim=-1)))
        if self.training:  # the auxiliary target comes from the inputs, never from the label
            in_hist = (batch[self.history.name] == batch[self.candidate.name].unsqueeze(1)) \
                & self.sequence_mask(batch, self.history)
            aux_logit = self.aux_head(torch.cat([user, cand], dim=-1)).squeeze(-1)
            self.add_auxiliary_loss(F.binary_cross_entropy_with_logits(
                aux_logit, in_hist.any(1).float()), alpha=self.aux_weight)
        return self.head(4.0 * (user * item).sum(-1))


def main():
    torch.set_num_threads(1)
    x, y, features = make_synthetic(n_rows=12000, n_users=300, n_items=200, n_categories=10,
                                    maxlen=10, embedding_dim=8, seed=0)
    n = 10000
    train = {k: v[:n] for k, v in x.items()}
    test = {k: v[n:] for k, v in x.items()}
    model = ctrkit.build("two_tower", features, aux_weight=0.5)
    model.compile("adam", "binary_crossentropy", metrics=["auc"], lr=1e-2)
    history = model.fit(train, y[:n], batch_size=256, epochs=6, verbose=2)
    scores = model.evaluate(test, y[n:], batch_size=1024)
    print(f"test auc {scores['auc']:.4f}; aux_loss per epoch "
          f"{[round(v, 4) for v in history.history['aux_loss']]}")
    with tempfile.TemporaryDirectory() as d:
        path = model.save(Path(d) / "two_tower.ctrkit")
        reloaded = ctrkit.load(path)  # rebuilt by its registered name and hyperparameters
    same = bool((reloaded.predict(test) == model.predict(test)).all())
    print(f"reloaded model predicts identically: {same}")
    return model, history, scores, same


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    main()
