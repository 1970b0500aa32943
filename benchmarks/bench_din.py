"""DIN speed and memory: ctrkit vs DeepCTR-Torch on the same work (issue 6's spec).

100,000 rows; vocabularies user 10,000, item 50,000, category 500; history length 50 with random
valid lengths 1..50 (zero padded); history shares the candidate's tables; embedding_dim 8; DIN
defaults (attention (64, 16) Dice, DNN (256, 128) relu); Adam; batch 1024; one epoch; metrics
logloss and AUC; predict with batch 1024; torch.set_num_threads(2).

Each measurement runs in a fresh subprocess (so peak RSS is that run's own), alternating the
libraries; medians over --runs runs are printed with the ratios. DeepCTR-Torch is used when it is
importable by --deepctr-python (default: this interpreter); install it in a scratch
environment, never as a ctrkit dependency:

    python -m venv --system-site-packages /tmp/dctr
    /tmp/dctr/bin/pip install deepctr-torch==0.3.0 --no-deps requests tqdm
    python benchmarks/bench_din.py --deepctr-python /tmp/dctr/bin/python

Other modes: --scaling (train rows/s over T and rows), --profile (where ctrkit's time goes).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# This checkout's ctrkit, never another one installed (e.g. editable) in the environment.
if REPO_ROOT not in sys.path[:1]:
    sys.path.insert(0, REPO_ROOT)

ROWS, USERS, ITEMS, CATES, T, DIM, BATCH = 100_000, 10_000, 50_000, 500, 50, 8, 1024


def make_data(rows=ROWS, maxlen=T, seed=0):
    rng = np.random.default_rng(seed)
    item_cate = rng.integers(1, CATES, ITEMS)
    item_cate[0] = 0
    lens = rng.integers(1, maxlen + 1, rows)
    valid = np.arange(maxlen)[None] < lens[:, None]
    hist_item = np.where(valid, rng.integers(1, ITEMS, (rows, maxlen)), 0)
    item = rng.integers(1, ITEMS, rows)
    x = {"user": rng.integers(0, USERS, rows), "item": item, "cate": item_cate[item],
         "hist_item": hist_item, "hist_cate": item_cate[hist_item], "seq_length": lens}
    overlap = (x["hist_cate"] == x["cate"][:, None]).sum(1) / lens
    y = (rng.random(rows) < 1 / (1 + np.exp(-(4 * overlap - 1)))).astype(np.float32)
    return {k: v.astype(np.int64) for k, v in x.items()}, y


def features(mod, maxlen=T):
    S, V = mod.SparseFeat, mod.VarLenSparseFeat
    return [S("user", USERS, DIM), S("item", ITEMS, DIM), S("cate", CATES, DIM),
            V(S("hist_item", ITEMS, DIM, embedding_name="item"), maxlen, length_name="seq_length"),
            V(S("hist_cate", CATES, DIM, embedding_name="cate"), maxlen, length_name="seq_length")]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def worker(impl: str, rows: int, maxlen: int, epochs: int = 1) -> dict:
    import torch
    torch.set_num_threads(2)
    x, y = make_data(rows, maxlen)
    if impl == "ctrkit":
        import ctrkit
        model = ctrkit.build("din", features(ctrkit, maxlen), seed=0)
        model.compile("adam", "binary_crossentropy", metrics=["logloss", "auc"])
        t0 = time.perf_counter()
        model.fit(x, y, batch_size=BATCH, epochs=epochs, verbose=0)
        t1 = time.perf_counter()
        pred = model.predict(x, batch_size=BATCH)
        t2 = time.perf_counter()
    else:
        from deepctr_torch.inputs import SparseFeat, VarLenSparseFeat
        from deepctr_torch.models import DIN
        import deepctr_torch.inputs as dinputs
        model = DIN(features(dinputs, maxlen), ["item", "cate"], device="cpu", seed=0)
        model.compile("adam", "binary_crossentropy", metrics=["binary_crossentropy", "auc"])
        t0 = time.perf_counter()
        model.fit(x, y, batch_size=BATCH, epochs=epochs, verbose=0)
        t1 = time.perf_counter()
        pred = model.predict(x, batch_size=BATCH)
        t2 = time.perf_counter()
    from sklearn.metrics import roc_auc_score
    return {"impl": impl, "train_rows_s": rows * epochs / (t1 - t0), "predict_rows_s": rows / (t2 - t1),
            "peak_rss_mb": peak_rss_mb(), "auc": float(roc_auc_score(y, np.ravel(pred)))}


def run_worker(python: str, impl: str, rows: int, maxlen: int) -> dict:
    cmd = [python, os.path.abspath(__file__), "--worker", impl, "--rows", str(rows),
           "--maxlen", str(maxlen)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def has_deepctr(python: str) -> bool:
    r = subprocess.run([python, "-c", "import deepctr_torch"], capture_output=True)
    return r.returncode == 0


def compare(args) -> None:
    impls = ["ctrkit"] + (["deepctr"] if has_deepctr(args.deepctr_python) else [])
    results = {i: [] for i in impls}
    for r in range(args.runs):
        for impl in impls:  # alternate the libraries run by run
            py = args.deepctr_python if impl == "deepctr" else sys.executable
            res = run_worker(py, impl, args.rows, args.maxlen)
            results[impl].append(res)
            print(f"run {r + 1} {impl:8s} train {res['train_rows_s']:9.0f} rows/s  predict "
                  f"{res['predict_rows_s']:9.0f} rows/s  peak RSS {res['peak_rss_mb']:7.0f} MB  "
                  f"auc {res['auc']:.4f}", flush=True)
    med = {i: {k: statistics.median(r[k] for r in results[i])
               for k in ("train_rows_s", "predict_rows_s", "peak_rss_mb", "auc")} for i in impls}
    print(f"\nmedians of {args.runs} runs, {os.cpu_count()} cores, torch threads 2, "
          f"{args.rows} rows, T={args.maxlen}")
    for i in impls:
        m = med[i]
        print(f"  {i:8s} train {m['train_rows_s']:9.0f} rows/s  predict {m['predict_rows_s']:9.0f} "
              f"rows/s  peak RSS {m['peak_rss_mb']:7.0f} MB  auc {m['auc']:.4f}")
    if "deepctr" in med:
        c, d = med["ctrkit"], med["deepctr"]
        print(f"  ratios ctrkit/deepctr: train {c['train_rows_s'] / d['train_rows_s']:.2f}x "
              f"(target >= 4x), predict {c['predict_rows_s'] / d['predict_rows_s']:.2f}x "
              f"(target >= 5x), peak RSS {c['peak_rss_mb'] / d['peak_rss_mb']:.2f}x "
              f"(target <= 0.5x)")
    else:
        print("  deepctr_torch not importable: no ratios (see the module docstring)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--worker", choices=["ctrkit", "deepctr"])
    p.add_argument("--rows", type=int, default=ROWS)
    p.add_argument("--maxlen", type=int, default=T)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--deepctr-python", default=sys.executable)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.rows, args.maxlen)))
        return
    compare(args)


if __name__ == "__main__":
    main()
