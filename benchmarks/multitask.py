"""The MMoE paper's synthetic experiment: test AUC (or MSE) per task vs. task correlation.

Run: python benchmarks/multitask.py [--rows 30000] [--dims 16] [--epochs 5] [--seeds 0 1 2]
     [--correlations 1.0 0.5 0.0] [--threads 1] [--task binary|regression]
     [--sizes small|paper] [--sine-scale 0.1]
     python benchmarks/multitask.py --data taobao [--path UserBehavior.csv] [--epochs 1]
     [--seeds 0 1 2] [--maxlen 20]

``--data taobao [--path UserBehavior.csv]`` (default ``$CTRKIT_TAOBAO``) instead trains on
Taobao UserBehavior's click and purchase tasks (:func:`ctrkit.datasets.taobao_multitask`):
shared_bottom, esmm, mmoe, ple (behaviour histories through DIN's attention), DIN with one
head per task (``task_names``), and two single-task DINs, one per task; it prints test AUC
per task (mean ± std over the seeds).

``--task regression --sizes paper --dims 100`` is the paper's own setting (Ma et al. 2018,
section 3.3): regression labels ``f_i(x) + N(0, 0.01)``, 100 inputs, and models matched in
parameters as in the paper (a 113-unit shared bottom against 8 experts of 16 units, towers of
8); it prints test MSE (lower is better) and, as the floor, the MSE of the noiseless targets.

For each correlation and seed, :func:`ctrkit.datasets.make_multitask_synthetic` draws two
binary tasks (weight vectors with that cosine; known probabilities); the first 2/3 of the rows
train, the rest test. It trains ``shared_bottom``, ``mmoe``, ``ple`` (both tasks at once) and
two separately trained single-task ``base`` models (one per task), all of similar size, and
prints each model's test AUC per task (mean ± std over the seeds), the ceiling (the AUC of the
true probabilities on the same test rows) and the done-when checks of issue 26.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's ctrkit
import ctrkit  # noqa: E402
from ctrkit.datasets import make_multitask_synthetic  # noqa: E402

TASKS = ("t1", "t2")
#: small models of similar size: a 16-unit bottom, 4 (MMoE) or 2 + 1 per task (PLE, one CGC
#: level) 8-unit experts with linear gates, 8-unit towers; single-task: 16 then 8 units
MODELS = {
    "shared_bottom": dict(bottom_dnn_hidden_units=(16,), tower_dnn_hidden_units=(8,)),
    "mmoe": dict(num_experts=4, expert_dnn_hidden_units=(8,), gate_dnn_hidden_units=(),
                 tower_dnn_hidden_units=(8,)),
    "ple": dict(shared_expert_num=2, specific_expert_num=1, num_levels=1,
                expert_dnn_hidden_units=(8,), gate_dnn_hidden_units=(),
                tower_dnn_hidden_units=(8,)),
}
#: the paper's sizes (section 3.3): one 113-unit shared bottom vs. 8 experts of 16 units
#: (about the same parameters), 8-unit towers; PLE: 4 shared + 2 per task experts of 16
PAPER_MODELS = {
    "shared_bottom": dict(bottom_dnn_hidden_units=(113,), tower_dnn_hidden_units=(8,)),
    "mmoe": dict(num_experts=8, expert_dnn_hidden_units=(16,), gate_dnn_hidden_units=(),
                 tower_dnn_hidden_units=(8,)),
    "ple": dict(shared_expert_num=4, specific_expert_num=2, num_levels=1,
                expert_dnn_hidden_units=(16,), gate_dnn_hidden_units=(),
                tower_dnn_hidden_units=(8,)),
}
SINGLE_UNITS = {"small": (16, 8), "paper": (113, 8)}


def score(task: str, y: np.ndarray, pred: np.ndarray) -> float:
    """Test AUC (binary) or MSE (regression) of one task."""
    return roc_auc_score(y, pred) if task == "binary" else float(np.mean((y - pred) ** 2))


def split(x, y, n_train):
    tr = {k: v[:n_train] for k, v in x.items()}
    te = {k: v[n_train:] for k, v in x.items()}
    return tr, y[:n_train], te, y[n_train:]


def run(correlation: float, seed: int, rows: int, dims: int, epochs: int,
        task: str = "binary", sizes: str = "small", sine_scale: float = 0.1):
    x, y, features, probs = make_multitask_synthetic(rows, correlation, n_dims=dims, seed=seed,
                                                     task=task, sine_scale=sine_scale)
    n_train = rows * 2 // 3
    xtr, ytr, xte, yte = split(x, y, n_train)
    out = {"ceiling": [score(task, yte[:, t], probs[n_train:, t]) for t in range(2)]}
    fit = dict(batch_size=128, epochs=epochs, verbose=0)
    for name, hp in (PAPER_MODELS if sizes == "paper" else MODELS).items():
        model = ctrkit.build(name, features, seed=seed, task_names=TASKS, task_types=task, **hp)
        model.compile("adam", lr=3e-3)
        model.fit(xtr, ytr, **fit)
        pred = model.predict(xte)
        out[name] = [score(task, yte[:, t], pred[:, t]) for t in range(2)]
    single = []
    for t in range(2):
        model = ctrkit.build("base", features, seed=seed, dnn_hidden_units=SINGLE_UNITS[sizes],
                             task=task)
        model.compile("adam", lr=3e-3)
        model.fit(xtr, ytr[:, t], **fit)
        single.append(score(task, yte[:, t], model.predict(xte)[:, 0]))
    out["single-task x2"] = single
    return out


#: Taobao: every model sees the same features, behaviour histories through DIN's attention;
#: bottoms/experts/towers of a similar size to DIN's (64, 32) MLP
TAOBAO_MODELS = {
    "shared_bottom": dict(bottom_dnn_hidden_units=(64,), tower_dnn_hidden_units=(32,)),
    "esmm": dict(tower_dnn_hidden_units=(64, 32)),
    "mmoe": dict(num_experts=4, expert_dnn_hidden_units=(32,), gate_dnn_hidden_units=(),
                 tower_dnn_hidden_units=(32,)),
    "ple": dict(shared_expert_num=2, specific_expert_num=1, num_levels=1,
                expert_dnn_hidden_units=(32,), gate_dnn_hidden_units=(),
                tower_dnn_hidden_units=(32,)),
}
DIN = dict(dnn_hidden_units=(64, 32), att_hidden_size=(32, 16))


def run_taobao(path, seed: int, epochs: int, maxlen: int):
    from ctrkit.datasets import taobao_multitask
    from ctrkit.datasets.taobao import TASKS as TAOBAO_TASKS
    splits, features = taobao_multitask(path, maxlen=maxlen, seed=0)
    (xtr, ytr), (xte, yte) = splits["train"], splits["test"]
    fit = dict(batch_size=256, epochs=epochs, verbose=0)
    out = {}
    hist = ["item", "category"]
    for name, hp in TAOBAO_MODELS.items():
        # ESMM's outputs are pCTR and pCTCVR; "buy" here is over the entire space (pCTCVR)
        names = ("ctr", "ctcvr") if name == "esmm" else TAOBAO_TASKS
        model = ctrkit.build(name, features, seed=seed, task_names=names,
                             history_feature_list=hist, att_hidden_size=(32, 16), **hp)
        model.compile("adam", lr=3e-3)
        model.fit(xtr, ytr, **fit)
        pred = model.predict(xte)
        out[name] = [roc_auc_score(yte[:, t], pred[:, t]) for t in range(2)]
    model = ctrkit.build("din", features, seed=seed, task_names=TAOBAO_TASKS, **DIN)
    model.compile("adam", lr=3e-3)
    model.fit(xtr, ytr, **fit)
    pred = model.predict(xte)
    out["din, a head per task"] = [roc_auc_score(yte[:, t], pred[:, t]) for t in range(2)]
    single = []
    for t in range(2):
        model = ctrkit.build("din", features, seed=seed, **DIN)
        model.compile("adam", lr=3e-3)
        model.fit(xtr, ytr[:, t], **fit)
        single.append(roc_auc_score(yte[:, t], model.predict(xte)[:, 0]))
    out["din x2 (single-task)"] = single
    return out, {k: (len(v[1]), v[1].mean(0).round(4).tolist()) for k, v in splits.items()}


def main_taobao(args) -> None:
    t0 = time.perf_counter()
    runs = []
    for s in args.seeds:
        res, sizes = run_taobao(args.path, s, args.epochs, args.maxlen)
        runs.append(res)
    table = {k: np.array([r[k] for r in runs]) for k in runs[0]}
    print(f"Taobao UserBehavior (click, buy): test AUC per task, mean ± std over seeds "
          f"{args.seeds}; rows (n, [click rate, buy rate]) {sizes}; {args.epochs} epoch(s), "
          f"batch 256, Adam 3e-3, histories of {args.maxlen}")
    print(f"{'model':<24}{'click':>18}{'buy':>18}")
    for name, a in table.items():
        cells = "".join(f"{a[:, t].mean():>11.4f} ± {a[:, t].std():.4f}" for t in range(2))
        print(f"{name:<24}{cells}")
    print(f"\n({time.perf_counter() - t0:.0f} s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=30000)
    ap.add_argument("--dims", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--correlations", type=float, nargs="+", default=[1.0, 0.5, 0.0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--task", choices=["binary", "regression"], default="binary")
    ap.add_argument("--sizes", choices=["small", "paper"], default="small")
    ap.add_argument("--sine-scale", type=float, default=0.1,
                    help="std of the sines' alpha/beta (the paper's 0.1: nearly linear tasks)")
    ap.add_argument("--data", choices=["synthetic", "taobao"], default="synthetic")
    ap.add_argument("--path", default=None, help="Taobao UserBehavior.csv (default "
                                                 "$CTRKIT_TAOBAO)")
    ap.add_argument("--maxlen", type=int, default=20, help="Taobao history width")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.data == "taobao":
        return main_taobao(args)
    t0 = time.perf_counter()
    table = {}
    for c in args.correlations:
        runs = [run(c, s, args.rows, args.dims, args.epochs, args.task, args.sizes,
                    args.sine_scale) for s in args.seeds]
        table[c] = {k: np.array([r[k] for r in runs]) for k in runs[0]}  # (seeds, 2)
    what = ("AUC" if args.task == "binary" else
            "MSE (lower is better; 'ceiling' = the noiseless targets' MSE, the floor)")
    print(f"Test {what} per task, mean ± std over seeds {args.seeds}; {args.rows} rows "
          f"(2/3 train), {args.dims} input dims, {args.epochs} epochs, batch 128, Adam 3e-3, "
          f"{args.sizes} model sizes, sine scale {args.sine_scale}")
    print(f"{'correlation':>11}  {'model':<16}{'task 1':>18}{'task 2':>18}")
    for c, res in table.items():
        for name, a in res.items():
            cells = "".join(f"{a[:, t].mean():>11.4f} ± {a[:, t].std():.4f}" for t in range(2))
            print(f"{c:>11.1f}  {name:<16}{cells}")
    print("\nDone-when checks (per task, means over seeds):")
    for c, res in table.items():
        single = res["single-task x2"].mean(0)
        sb = res["shared_bottom"].mean(0)
        for name in ("mmoe", "ple"):
            m = res[name].mean(0)
            if c == 1.0 and args.task == "binary":
                ok = bool((np.abs(m - single) <= 0.01).all())
                print(f"  corr {c:.1f} {name}: |AUC - single-task| = "
                      f"{np.round(np.abs(m - single), 4).tolist()} (<= 0.01: {ok})")
            if c == 0.0 and args.task == "binary":
                ok = bool((m > sb).all())
                print(f"  corr {c:.1f} {name}: AUC - shared_bottom = "
                      f"{np.round(m - sb, 4).tolist()} (> 0: {ok})")
            if c == 0.0 and args.task == "regression":
                ok = bool((m < sb).all())
                print(f"  corr {c:.1f} {name}: MSE - shared_bottom = "
                      f"{np.round(m - sb, 4).tolist()} (< 0: {ok})")
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
