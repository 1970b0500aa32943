"""The paper's comparison on MovieLens-100K: every model, one protocol, several seeds.

Protocol (:func:`ctrkit.datasets.movielens_ctr`): label ``rating >= 4``; features user, movie,
genre (a movie's first genre flag), gender, age bucket, occupation; history = the user's
positively rated movies with a strictly earlier timestamp (last ``--maxlen``) and their genres;
test = each user's last 10 ratings; validation = each user's last 5 ratings of the training
part (never the test set). Each model trains up to ``--epochs`` epochs (Adam, batch 512); the
epoch with the best validation AUC is the one scored on test.

Prints AUC, GAUC (user-weighted AUC), logloss and RelaImpr of AUC and GAUC against ``base``
(``(AUC - 0.5) / (AUC_base - 0.5) - 1``, paired by seed) as mean ± std over the seeds, plus
training time per run (one thread).

Run:  python benchmarks/movielens_100k.py --data /path/to/ml-100k     (or set CTRKIT_ML100K)
Variants: --models din,din-softmax,din-dice,base   (see VARIANTS)
The new plug-ins: --models dien,bst,dcn,dcnv2,autoint,xdeepfm
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ctrkit  # noqa: E402
from ctrkit.metrics import gauc  # noqa: E402
from ctrkit.datasets import movielens_ctr  # noqa: E402

#: name -> (registered model, hyperparameters)
VARIANTS = {
    "base": ("base", {}),
    "wdl": ("wdl", {}),
    "pnn": ("pnn", {}),
    "deepfm": ("deepfm", {}),
    "din": ("din", {}),
    "din-softmax": ("din", {"att_weight_normalization": True}),
    "din-dice": ("din", {"dnn_activation": "dice"}),
    "din-relu-att": ("din", {"att_activation": "relu"}),
    "din-mba": ("din", {"embedding_regularizer": "mba", "l2_reg_embedding": 0.01}),
    "din-mba-softmax": ("din", {"embedding_regularizer": "mba", "l2_reg_embedding": 0.01,
                                "att_weight_normalization": True}),
    "dien": ("dien", {}),                       # AUGRU, auxiliary loss, in-batch negatives
    "dien-noaux": ("dien", {"use_negsampling": False}),
    "bst": ("bst", {}),
    "dcn": ("dcn", {}),
    "dcnv2": ("dcnv2", {}),
    "dcnv2-stacked-lowrank": ("dcnv2", {"model_structure": "stacked", "low_rank": 8}),
    "autoint": ("autoint", {}),
    "xdeepfm": ("xdeepfm", {}),
}


def auc(y, p):
    from sklearn.metrics import roc_auc_score
    return float(roc_auc_score(y, p))


def run_one(variant, splits, features, seed, epochs, batch_size, lr, init_std,
            policy="float32"):
    """Train one model; returns test metrics at the best validation epoch and the time."""
    name, hp = VARIANTS[variant]
    if init_std is not None:
        hp = dict(hp, init_std=init_std)
    model = ctrkit.build(name, features, seed=seed, **hp)
    model.compile("adam", "binary_crossentropy", lr=lr, dtype_policy=policy)
    (xtr, ytr), (xva, yva), (xte, yte) = splits["train"], splits["val"], splits["test"]
    best, best_state, best_epoch, secs = -1.0, None, 0, 0.0
    for epoch in range(epochs):
        t0 = time.perf_counter()
        model.fit(xtr, ytr, batch_size=batch_size, epochs=epoch + 1, initial_epoch=epoch,
                  verbose=0)
        secs += time.perf_counter() - t0
        val = auc(yva, model.predict(xva, batch_size=4096).ravel())
        if val > best:
            best, best_epoch = val, epoch + 1
            best_state = copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    pred = np.clip(model.predict(xte, batch_size=4096).ravel(), 1e-7, 1 - 1e-7)
    logloss = float(-np.mean(yte * np.log(pred) + (1 - yte) * np.log(1 - pred)))
    return {"auc": auc(yte, pred), "gauc": gauc(yte, pred, xte["user"]),
            "logloss": logloss, "val_auc": best, "epoch": best_epoch, "seconds": secs}


def relaimpr(model_auc, base_auc):
    return ((model_auc - 0.5) / (base_auc - 0.5) - 1.0) * 100.0


def fmt(values, digits=4):
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.{digits}f} ± {v.std():.{digits}f}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=os.environ.get("CTRKIT_ML100K"))
    p.add_argument("--models", default="base,wdl,pnn,deepfm,din")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--lr", type=float, default=None, help="default: Adam's default")
    p.add_argument("--init-std", type=float, default=None,
                   help="std of the embeddings' init; default: the model's (0.05)")
    p.add_argument("--maxlen", type=int, default=20)
    p.add_argument("--embedding-dim", type=int, default=8)
    p.add_argument("--policy", default="float32",
                   choices=["float32", "mixed_bfloat16", "mixed_float16"],
                   help="dtype policy of every model (see ctrkit.mixed_precision)")
    args = p.parse_args(argv)
    if not args.data:
        p.error("pass --data PATH or set CTRKIT_ML100K to the MovieLens-100K folder")
    torch.set_num_threads(1)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in VARIANTS]
    if unknown:
        p.error(f"unknown model(s) {unknown}; choose from {sorted(VARIANTS)}")
    if "base" not in models:
        models.insert(0, "base")
    seeds = [int(s) for s in args.seeds.split(",")]
    t_all = time.perf_counter()
    splits, features = movielens_ctr(args.data, maxlen=args.maxlen,
                                     embedding_dim=args.embedding_dim)
    print(f"MovieLens-100K: " + ", ".join(f"{k} {len(v[1])}" for k, v in splits.items())
          + f" rows; maxlen {args.maxlen}, embedding_dim {args.embedding_dim}, "
          f"epochs <= {args.epochs}, lr {args.lr}, init_std {args.init_std}, seeds {seeds}, "
          f"dtype policy {args.policy}")
    results = {m: [] for m in models}
    for seed in seeds:
        for m in models:
            r = run_one(m, splits, features, seed, args.epochs, args.batch_size, args.lr,
                        args.init_std, args.policy)
            results[m].append(r)
            print(f"  seed {seed} {m:>12}: AUC {r['auc']:.4f} GAUC {r['gauc']:.4f} "
                  f"logloss {r['logloss']:.4f} (best epoch {r['epoch']}, {r['seconds']:.1f}s)",
                  flush=True)
    base = results["base"]
    print()
    print("| model | AUC | GAUC | logloss | RelaImpr AUC | RelaImpr GAUC | train s/run |")
    print("|---|---|---|---|---|---|---|")
    for m in models:
        rs = results[m]
        ri = [relaimpr(r["auc"], b["auc"]) for r, b in zip(rs, base)]
        rg = [relaimpr(r["gauc"], b["gauc"]) for r, b in zip(rs, base)]
        print(f"| {m} | {fmt([r['auc'] for r in rs])} | {fmt([r['gauc'] for r in rs])} | "
              f"{fmt([r['logloss'] for r in rs])} | {fmt(ri, 2)}% | {fmt(rg, 2)}% | "
              f"{fmt([r['seconds'] for r in rs], 1)} |")
    print(f"\ntotal wall time {time.perf_counter() - t_all:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
