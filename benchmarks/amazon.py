"""The DIN paper's Amazon table on an Amazon review category (default: Beauty, S3-Rec layout).

Protocol (:func:`ctrkit.datasets.amazon_ctr`, the paper's §6.1): every review k >= 1 is a
positive with the reviews before it as history (the last ``--maxlen``), plus one sampled
never-reviewed item as its negative; features item + category and their histories (no
user id, as the paper's Amazon model); each user's last review is test, the second-to-last
validation. Every model trains at ctrkit's defaults (Adam, batch ``--batch-size``) with early
stopping on validation AUC: at most ``--epochs`` epochs, stop after ``--patience`` epochs
without a better validation AUC, and the best epoch's weights are the ones scored on test.

Prints, per model, mean ± std over the seeds of test AUC, GAUC (user-weighted), logloss,
RelaImpr of AUC over ``base`` (paired by seed), the best epoch, seconds per training epoch and
training rows/s (``--threads`` torch threads).

``--deepctr-python PATH`` also trains DeepCTR-Torch's DIN on the same arrays (same features,
same early stopping) in that interpreter, as ``benchmarks/bench_din.py`` does.

Run:  python benchmarks/amazon.py --data /path/to/amazon_s3rec   (or set CTRKIT_AMAZON)
Quick: python benchmarks/amazon.py --max-users 3000 --models base,din --seeds 0
Other categories: --dataset Toys_and_Games (or Sports_and_Outdoors); one change on top of a
variant: --models "base,din@dnn_dropout=0.2,din@lr=0.01,din-raw@embedding_regularizer=mba"
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: name -> (registered model, hyperparameters)
VARIANTS = {
    "base": ("base", {}),
    "wdl": ("wdl", {}),
    "pnn": ("pnn", {}),
    "deepfm": ("deepfm", {}),
    "din": ("din", {}),          # ctrkit's defaults: ReLU MLP, Dice unit, "softmax+count"
    "din-raw": ("din", {"att_weight_normalization": False}),  # raw scores (the paper's)
    "din-prelu": ("din", {"dnn_activation": "prelu"}),   # the paper's DIN (PReLU MLP)
    "din-dice": ("din", {"dnn_activation": "dice"}),     # the paper's DIN with Dice
    "din-softmax": ("din", {"att_weight_normalization": True}),
    "din-sigmoid": ("din", {"att_weight_normalization": "sigmoid"}),
    "din-softmax+count": ("din", {"att_weight_normalization": "softmax+count"}),
    "din-softmax+sum": ("din", {"att_weight_normalization": "softmax+sum"}),
    "din-mba": ("din", {"embedding_regularizer": "mba", "l2_reg_embedding": 0.01}),
    "dien": ("dien", {}),
    "bst": ("bst", {}),
}
DEFAULT_MODELS = "base,wdl,pnn,deepfm,din,din-prelu,din-dice,dien,bst"


def auc(y, p) -> float:
    from sklearn.metrics import roc_auc_score
    return float(roc_auc_score(y, p))


def logloss(y, p) -> float:
    p = np.clip(np.asarray(p, dtype=np.float64).ravel(), 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def early_stopped(fit_epoch, predict, val, test, epochs, patience):
    """Train epoch by epoch; keep the best validation AUC's state; score it on test."""
    best, best_state, best_epoch, secs, trained, model = -1.0, None, 0, 0.0, 0, None
    for epoch in range(epochs):
        t0 = time.perf_counter()
        model = fit_epoch(epoch)
        secs += time.perf_counter() - t0
        trained += 1
        v = auc(val[1], predict(model, val[0]))
        if v > best:
            best, best_epoch = v, epoch + 1
            best_state = copy.deepcopy(model.state_dict())
        elif epoch + 1 - best_epoch >= patience:
            break
    model.load_state_dict(best_state)
    p = predict(model, test[0])
    return {"val_auc": best, "epoch": best_epoch, "sec_per_epoch": secs / trained,
            "pred": p}


def parse_variant(spec):
    """``name`` or ``name@key=value@key=value``: a VARIANTS entry with hyperparameters changed
    (values as Python literals). ``lr`` is Adam's learning rate; ``dice_eps`` and
    ``dice_momentum`` set every Dice layer's ε and running-average momentum after building."""
    import ast
    base, *changes = spec.split("@")
    if base not in VARIANTS:
        raise SystemExit(f"unknown model {base!r}; choose from {sorted(VARIANTS)}")
    name, hp = VARIANTS[base]
    hp = dict(hp)
    for change in changes:
        key, sep, value = change.partition("=")
        if not sep:
            raise SystemExit(f"{spec!r}: write each change as @key=value, got {change!r}")
        try:
            hp[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            hp[key] = value
    return name, hp


def run_ctrkit(variant, splits, features, seed, args):
    import ctrkit
    from ctrkit.models.din import Dice
    name, hp = parse_variant(variant)
    lr = hp.pop("lr", None)
    dice = {k[5:]: hp.pop(k) for k in ("dice_eps", "dice_momentum") if k in hp}
    model = ctrkit.build(name, features, seed=seed, **hp)
    for m in model.modules():
        if isinstance(m, Dice):
            for k, v in dice.items():
                setattr(m, k, float(v))
    model.compile("adam", "binary_crossentropy", lr=lr)
    xtr, ytr = splits["train"]

    def fit_epoch(epoch):
        model.fit(xtr, ytr, batch_size=args.batch_size, epochs=epoch + 1, initial_epoch=epoch,
                  verbose=0)
        return model

    def predict(m, x):
        return m.predict(x, batch_size=4096).ravel()

    r = early_stopped(fit_epoch, predict, splits["val"], splits["test"], args.epochs,
                      args.patience)
    if args.explain and name == "din":
        print(f"    {variant}: " + attention_summary(model.explain(splits["test"][0]),
                                                    splits["test"][0]["seq_length"],
                                                    splits["test"][1]), flush=True)
    return r


def attention_summary(w, lengths, y) -> str:
    """Attention weights on test positives vs negatives: their total per row, and how much of
    the total follows the history length (raw, unnormalised scores add up with length)."""
    total = w.sum(1)
    per_item = total / np.maximum(lengths, 1)
    corr = float(np.corrcoef(total, lengths)[0, 1]) if total.std() > 0 else 0.0
    top = w.max(1)
    return (f"attention total: positives {total[y == 1].mean():.3f}, negatives "
            f"{total[y == 0].mean():.3f}; per behaviour: positives {per_item[y == 1].mean():.3f}, "
            f"negatives {per_item[y == 0].mean():.3f}; largest weight: positives "
            f"{top[y == 1].mean():.3f}, negatives {top[y == 0].mean():.3f}; corr(total, history length) {corr:.2f}; "
            f"AUC of the total alone {auc(y, total):.4f}")


def deepctr_worker(npz: str, out: str, seed: int, epochs: int, patience: int,
                   batch_size: int, threads: int) -> None:
    """Runs inside the DeepCTR-Torch interpreter: DIN on the saved arrays."""
    import torch
    torch.set_num_threads(threads)
    from deepctr_torch.inputs import SparseFeat, VarLenSparseFeat
    from deepctr_torch.models import DIN
    d = np.load(npz)
    names = ["item", "cate", "hist_item", "hist_cate", "seq_length"]
    split = {s: ({k: d[f"{s}_{k}"] for k in names}, d[f"{s}_y"]) for s in ("train", "val", "test")}
    maxlen = split["train"][0]["hist_item"].shape[1]
    dim = int(d["embedding_dim"])
    cols = [SparseFeat("item", int(d["item_vocab"]), embedding_dim=dim),
            SparseFeat("cate", int(d["cate_vocab"]), embedding_dim=dim),
            VarLenSparseFeat(SparseFeat("hist_item", int(d["item_vocab"]), embedding_dim=dim,
                                        embedding_name="item"), maxlen, length_name="seq_length"),
            VarLenSparseFeat(SparseFeat("hist_cate", int(d["cate_vocab"]), embedding_dim=dim,
                                        embedding_name="cate"), maxlen, length_name="seq_length")]
    model = DIN(cols, ["item", "cate"], device="cpu", seed=seed)
    model.compile("adam", "binary_crossentropy")
    xtr, ytr = split["train"]

    def fit_epoch(epoch):
        model.fit(xtr, ytr, batch_size=batch_size, epochs=1, verbose=0)
        return model

    def predict(m, x):
        return np.ravel(m.predict(x, batch_size=4096))

    r = early_stopped(fit_epoch, predict, split["val"], split["test"], epochs, patience)
    np.save(out, r.pop("pred"))
    print(json.dumps(r))


def run_deepctr(python, splits, features, seed, args):
    dims = {f.name: f for f in features}
    with tempfile.TemporaryDirectory() as tmp:
        npz, out = os.path.join(tmp, "data.npz"), os.path.join(tmp, "pred.npy")
        arrays = {f"{s}_{k}": v for s, (x, y) in splits.items() for k, v in x.items()
                  if k in ("item", "cate", "hist_item", "hist_cate", "seq_length")}
        arrays.update({f"{s}_y": y for s, (x, y) in splits.items()})
        np.savez(npz, item_vocab=dims["item"].vocabulary_size,
                 cate_vocab=dims["cate"].vocabulary_size,
                 embedding_dim=dims["item"].embedding_dim, **arrays)
        cmd = [python, os.path.abspath(__file__), "--deepctr-worker", npz, out, "--seeds",
               str(seed), "--epochs", str(args.epochs), "--patience", str(args.patience),
               "--batch-size", str(args.batch_size), "--threads", str(args.threads)]
        res = subprocess.run(cmd, check=True, capture_output=True, text=True)
        r = json.loads(res.stdout.strip().splitlines()[-1])
        r["pred"] = np.load(out)
    return r


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=os.environ.get("CTRKIT_AMAZON"),
                   help="folder with <name>.txt + <name>_item2attributes.json or the raw files")
    p.add_argument("--name", "--dataset", default="Beauty",
                   help="the category's file name part: Beauty, Sports_and_Outdoors, "
                   "Toys_and_Games")
    p.add_argument("--models", default=DEFAULT_MODELS,
                   help=f"from {sorted(VARIANTS)}, each optionally with @key=value changes "
                   "(e.g. din@dnn_dropout=0.2@lr=0.003)")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=10, help="at most this many epochs")
    p.add_argument("--patience", type=int, default=2,
                   help="stop after this many epochs without a better validation AUC")
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--maxlen", type=int, default=50)
    p.add_argument("--embedding-dim", type=int, default=8)
    p.add_argument("--max-users", type=int, default=None, help="subsample: the first N users")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--deepctr-python", default=None,
                   help="an interpreter with deepctr_torch: also run its DIN")
    p.add_argument("--explain", action="store_true",
                   help="print DIN's attention weights on test positives vs negatives")
    p.add_argument("--deepctr-worker", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.deepctr_worker:
        deepctr_worker(*args.deepctr_worker, seeds[0], args.epochs, args.patience,
                       args.batch_size, args.threads)
        return 0
    if not args.data:
        p.error("pass --data PATH or set CTRKIT_AMAZON to the Amazon review folder")
    import torch
    from ctrkit.datasets import amazon_ctr
    from ctrkit.metrics import gauc
    torch.set_num_threads(args.threads)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m.split("@")[0] not in VARIANTS]
    if unknown:
        p.error(f"unknown model(s) {unknown}; choose from {sorted(VARIANTS)}")
    if "base" not in models:
        models.insert(0, "base")
    if args.deepctr_python:
        models.append("deepctr-din")
    t_all = time.perf_counter()
    results = {m: [] for m in models}
    for seed in seeds:
        # the seed also draws the negatives, so seeds differ in data as well as init
        splits, features = amazon_ctr(args.data, args.name, maxlen=args.maxlen, seed=seed,
                                      embedding_dim=args.embedding_dim,
                                      max_users=args.max_users)
        if seed == seeds[0]:
            print(f"Amazon {args.name}: " + ", ".join(f"{k} {len(v[1])}"
                                                     for k, v in splits.items())
                  + f" rows; maxlen {args.maxlen}, embedding_dim {args.embedding_dim}, epochs "
                  f"<= {args.epochs} (patience {args.patience}), batch {args.batch_size}, "
                  f"threads {args.threads}, seeds {seeds}, features "
                  f"{[f.name for f in features]}", flush=True)
        xte, yte = splits["test"]
        n_train = len(splits["train"][1])
        for m in models:
            if m == "deepctr-din":
                r = run_deepctr(args.deepctr_python, splits, features, seed, args)
            else:
                r = run_ctrkit(m, splits, features, seed, args)
            pred = r.pop("pred")
            r.update(auc=auc(yte, pred), gauc=gauc(yte, pred, xte["user"]),
                     logloss=logloss(yte, pred), rows_s=n_train / r["sec_per_epoch"])
            results[m].append(r)
            print(f"  seed {seed} {m:>12}: AUC {r['auc']:.4f} GAUC {r['gauc']:.4f} logloss "
                  f"{r['logloss']:.4f} val {r['val_auc']:.4f} (best epoch {r['epoch']}, "
                  f"{r['sec_per_epoch']:.1f} s/epoch, {r['rows_s']:.0f} rows/s)", flush=True)
    from movielens_100k import fmt, relaimpr  # the MovieLens table's formatting
    base = results["base"]
    print()
    print("| model | test AUC | GAUC | logloss | RelaImpr AUC | best epoch | s/epoch | rows/s |")
    print("|---|---|---|---|---|---|---|---|")
    for m in models:
        rs = results[m]
        ri = [relaimpr(r["auc"], b["auc"]) for r, b in zip(rs, base)]
        print(f"| {m} | {fmt([r['auc'] for r in rs])} | {fmt([r['gauc'] for r in rs])} | "
              f"{fmt([r['logloss'] for r in rs])} | {fmt(ri, 2)}% | "
              f"{fmt([r['epoch'] for r in rs], 1)} | {fmt([r['sec_per_epoch'] for r in rs], 1)} | "
              f"{np.mean([r['rows_s'] for r in rs]):.0f} |")
    print(f"\ntotal wall time {time.perf_counter() - t_all:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
