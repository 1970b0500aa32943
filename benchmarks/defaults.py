"""Which defaults learn best: DIN configurations on the project's three data sets (issue 18).

Each configuration changes ONE thing against ctrkit's defaults (``default``) and is trained on:

- ``synthetic``: the main job's data and protocol (``python -m ctrkit``: 50,000 rows, train
  70% / val 10% / test 20%, Adam, batch 256, 3 epochs, test AUC after the last epoch), with the
  best reachable test AUC from the true click probabilities;
- ``bench``: the performance benchmark's data (``benchmarks/bench_din.py``: 100,000 rows,
  history 50, batch 1024, ONE epoch, AUC on the training set, as that benchmark reports);
- ``mainjob``: the main job itself (``python -m ctrkit --synthetic --seed S``): the seed draws
  the data as well as the model, and the job keeps the epoch with the best validation AUC; test
  AUC and its gap to the best reachable AUC, at the kept and at the last epoch;
- ``movielens``: MovieLens-100K (``benchmarks/movielens_100k.py``'s protocol: batch 512, up to
  3 epochs, the epoch with the best validation AUC is kept; validation and test AUC).

Prints one row per configuration: mean ± std over the seeds, and the difference to
``default`` paired by seed.

Run:  python benchmarks/defaults.py --data synthetic,bench,movielens --seeds 0,1,2
      (MovieLens from --ml100k or $CTRKIT_ML100K; --configs picks rows, see CONFIGS)
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import ctrkit  # noqa: E402
from ctrkit.layers.init import CtrkitInit  # noqa: E402
from ctrkit.optimizers import DEFAULT_LR  # noqa: E402


class GlorotHidden(CtrkitInit):
    """The default scheme with Glorot-uniform hidden layers (Keras's Dense default)."""

    @torch.no_grad()
    def hidden_(self, layer: nn.Linear) -> None:
        nn.init.xavier_uniform_(layer.weight)
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)


class TorchDense(CtrkitInit):
    """The default embeddings with torch's own nn.Linear initialisation for dense layers."""

    def hidden_(self, layer: nn.Linear) -> None:
        pass

    def output_(self, layer: nn.Linear) -> None:
        pass


#: name -> (DIN hyperparameters, Adam learning rate or None for the optimizer's default).
#: The init entries are factories: an Initializer instance is used by one model only.
CONFIGS = {
    "default": ({}, None),
    "deepctr-init": ({"init": "deepctr"}, None),
    "init_std=0.01": ({"init_std": 0.01}, None),
    "init_std=0.1": ({"init_std": 0.1}, None),
    "init_std=0.2": ({"init_std": 0.2}, None),
    "glorot-hidden": ({"init": GlorotHidden}, None),
    "torch-dense": ({"init": TorchDense}, None),
    "separate-tables": ({"share_history_embeddings": False}, None),
    # the best MovieLens configuration before issue 18 (issue 18's table): every weight
    # N(0, 0.05), DeepCTR's separate history tables, Adam lr 3e-3
    "pre-18-best": ({"init": "deepctr", "init_std": 0.05, "share_history_embeddings": False},
                    3e-3),
    "shared-tables": ({"share_history_embeddings": True}, None),
    "l2=0": ({"l2_reg_embedding": 0.0}, None),
    "l2=1e-5": ({"l2_reg_embedding": 1e-5}, None),
    "l2=1e-4": ({"l2_reg_embedding": 1e-4}, None),
    "mba=0.01": ({"embedding_regularizer": "mba", "l2_reg_embedding": 0.01}, None),
    "mba=0.03": ({"embedding_regularizer": "mba", "l2_reg_embedding": 0.03}, None),
    "mba=0.1": ({"embedding_regularizer": "mba", "l2_reg_embedding": 0.1}, None),
    "lr=3e-4": ({}, 3e-4),
    "lr=1e-3": ({}, 1e-3),
    "lr=3e-3": ({}, 3e-3),
    "lr=1e-2": ({}, 1e-2),
    "lr=2e-3": ({}, 2e-3),
    "init_std=0.02": ({"init_std": 0.02}, None),
    "dropout=0.1": ({"dnn_dropout": 0.1}, None),
    "dropout=0.2": ({"dnn_dropout": 0.2}, None),
    "dropout=0.3": ({"dnn_dropout": 0.3}, None),
    "dnn-bn": ({"dnn_use_bn": True}, None),
    "dnn=200-80": ({"dnn_hidden_units": (200, 80)}, None),
    "att=80-40": ({"att_hidden_size": (80, 40)}, None),
    "dnn-dice": ({"dnn_activation": "dice"}, None),
    "raw": ({"att_weight_normalization": False}, None),   # the default before issue 29
    "softmax": ({"att_weight_normalization": True}, None),
    "sigmoid": ({"att_weight_normalization": "sigmoid"}, None),
    "softmax-count": ({"att_weight_normalization": "softmax+count"}, None),
    "softmax-sum": ({"att_weight_normalization": "softmax+sum"}, None),
    "l2_dnn=1e-4": ({"l2_reg_dnn": 1e-4}, None),
    "lazy-adam": ({"l2_reg_embedding": 0.0}, None),   # with l2=0: absent rows have zero grad
    "att=prelu": ({"att_activation": "prelu"}, None),
    "att=relu": ({"att_activation": "relu"}, None),
}


class LazyAdam(torch.optim.Adam):
    """Experiment: Adam whose embedding rows absent from the batch (zero gradient) do not move,
    and whose moments for those rows are left as they were (TF's LazyAdam, torch's SparseAdam)."""

    def __init__(self, model, lr=None):
        super().__init__(model.parameters(), lr=DEFAULT_LR["adam"] if lr is None else lr)
        self.lazy = [p for n, p in model.named_parameters() if n.startswith("embeddings.")]

    @torch.no_grad()
    def step(self, closure=None):
        saved = []
        for p in self.lazy:
            if p.grad is None:
                continue
            idle = p.grad.abs().sum(1) == 0
            st = self.state.get(p, {})
            saved.append((p, idle, p[idle].clone(),
                          {k: st[k][idle].clone() for k in ("exp_avg", "exp_avg_sq") if k in st}))
        out = super().step(closure)
        for p, idle, rows, moments in saved:
            p[idle] = rows
            for k, v in moments.items():
                self.state[p][k][idle] = v
        return out


def hparams_of(name):
    """A configuration, or several joined by '+' (their changes together)."""
    hp, lr = {}, None
    for part in name.split("+"):
        more, more_lr = CONFIGS[part]
        hp, lr = {**hp, **more}, (more_lr if more_lr is not None else lr)
    hp = {k: (v() if isinstance(v, type) else v) for k, v in hp.items()}
    return hp, lr


def auc(y, p):
    from sklearn.metrics import roc_auc_score
    return float(roc_auc_score(y, p))


def build(features, name, seed):
    hp, lr = hparams_of(name)
    model = ctrkit.build("din", features, seed=seed, **hp)
    lazy = "lazy-adam" in name.split("+")
    model.compile(LazyAdam(model, lr) if lazy else "adam", "binary_crossentropy",
                  lr=None if lazy else lr)
    return model


def run_synthetic(name, seed, cache):
    """The main job's protocol on its data (data seed 0, model seed ``seed``)."""
    if "synthetic" not in cache:
        from ctrkit.__main__ import synthetic_splits
        from ctrkit.datasets import synthetic_click_probability
        splits, features = synthetic_splits(50000, 0)
        truth = synthetic_click_probability(n_rows=50000, seed=0)
        best = auc(splits["test"][1], truth[-len(splits["test"][1]):])
        cache["synthetic"] = (splits, features, best)
    splits, features, best = cache["synthetic"]
    model = build(features, name, seed)
    model.fit(*splits["train"], batch_size=256, epochs=3, verbose=0)
    xte, yte = splits["test"]
    return {"test_auc": auc(yte, model.predict(xte, batch_size=4096).ravel()),
            "best_reachable": best}


def run_mainjob(name, seed, cache):
    """``python -m ctrkit --synthetic --seed S`` with this configuration (seed S draws the data
    and the model); trained twice, scored at the kept (best validation) and the last epoch."""
    from ctrkit.__main__ import synthetic_splits, train_and_evaluate
    from ctrkit.datasets import synthetic_click_probability
    if "lazy-adam" in name.split("+"):
        raise SystemExit("lazy-adam is not available with --data mainjob")
    splits, features = synthetic_splits(50000, seed)
    yte = splits["test"][1]
    best = auc(yte, synthetic_click_probability(n_rows=50000, seed=seed)[-len(yte):])
    out = {}
    for keep in ("best", "last"):
        hp, lr = hparams_of(name)  # anew per model: an init factory's instance serves one model
        res, _ = train_and_evaluate("din", splits, features, epochs=3, batch_size=256,
                                    seed=seed, keep=keep, lr=lr, **hp)
        out[f"auc_{keep}"], out[f"gap_{keep}"] = res["auc"], best - res["auc"]
        if keep == "best":
            out["kept_epoch"] = res["epoch"] + 1
    return out


def run_bench(name, seed, cache):
    """bench_din.py's data and protocol: one epoch, batch 1024, AUC on the training rows."""
    import bench_din
    if "bench" not in cache:
        cache["bench"] = bench_din.make_data(with_probability=True)
    x, y, prob = cache["bench"]
    model = build(bench_din.features(ctrkit), name, seed)
    model.fit(x, y, batch_size=bench_din.BATCH, epochs=1, verbose=0)
    # the true probabilities' AUC (about 0.504): the labels are close to noise, so this
    # training-set AUC measures how fast ids are memorised, not what is learned
    return {"train_auc": auc(y, model.predict(x, batch_size=4096).ravel()),
            "best_reachable": auc(y, prob)}


def run_movielens(name, seed, cache, path):
    """movielens_100k.py's protocol: keep the epoch with the best validation AUC (<= 3)."""
    if "movielens" not in cache:
        from ctrkit.datasets import movielens_ctr
        cache["movielens"] = movielens_ctr(path, maxlen=20, embedding_dim=8)
    splits, features = cache["movielens"]
    model = build(features, name, seed)
    best, state = -1.0, None
    for epoch in range(3):
        model.fit(*splits["train"], batch_size=512, epochs=epoch + 1, initial_epoch=epoch,
                  verbose=0)
        val = auc(splits["val"][1], model.predict(splits["val"][0], batch_size=4096).ravel())
        if val > best:
            best, state = val, copy.deepcopy(model.state_dict())
    model.load_state_dict(state)
    xte, yte = splits["test"]
    return {"val_auc": best, "test_auc": auc(yte, model.predict(xte, batch_size=4096).ravel())}


def fmt(v, digits=4):
    v = np.asarray(v, dtype=float)
    return f"{v.mean():.{digits}f} ± {v.std():.{digits}f}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="synthetic,bench,movielens")
    p.add_argument("--configs", default=",".join(CONFIGS))
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--ml100k", default=os.environ.get("CTRKIT_ML100K"))
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for n in names for c in n.split("+") if c not in CONFIGS]
    if unknown:
        p.error(f"unknown configuration(s) {unknown}; choose from {list(CONFIGS)}")
    if "default" not in names:
        names.insert(0, "default")
    seeds = [int(s) for s in args.seeds.split(",")]
    cache = {}
    for data in [d.strip() for d in args.data.split(",") if d.strip()]:
        if data == "movielens" and not args.ml100k:
            p.error("movielens needs --ml100k PATH or $CTRKIT_ML100K")
        run = {"synthetic": run_synthetic, "bench": run_bench, "mainjob": run_mainjob,
               "movielens": lambda n, s, c: run_movielens(n, s, c, args.ml100k)}[data]
        results = {}
        t0 = time.perf_counter()
        for seed in seeds:  # seeds outermost: configurations alternate in time
            for name in names:
                results.setdefault(name, []).append(run(name, seed, cache))
                print(f"  {data} seed {seed} {name}: "
                      + " ".join(f"{k} {v:.4f}" for k, v in results[name][-1].items()),
                      flush=True)
        keys = [k for k in results["default"][0] if k != "best_reachable"]
        extra = (f", AUC of the true probabilities {results['default'][0]['best_reachable']:.4f}"
                 if "best_reachable" in results["default"][0] else "")
        print(f"\n{data}: DIN, seeds {seeds}{extra} ({time.perf_counter() - t0:.0f}s)")
        print("| config | " + " | ".join(f"{k} | Δ{k}" for k in keys) + " |")
        print("|---|" + "---|---|" * len(keys))
        for name in names:
            cells = []
            for k in keys:
                v = [r[k] for r in results[name]]
                d = [a - b[k] for a, b in zip(v, results["default"])]
                cells += [fmt(v), f"{np.mean(d):+.4f}"]
            print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
