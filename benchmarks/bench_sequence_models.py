"""Speed of the sequence models DIEN and BST beside DIN, on the DIN performance spec.

The data, features and batch are bench_din.py's (issue 6's spec): 100,000 rows, history length
50 with random valid lengths 1..50, vocabularies user 10,000 / item 50,000 / category 500,
embedding_dim 8, Adam, batch 1024, one epoch, predict with batch 1024, torch threads 2. Each
model runs with its defaults (DIEN: AUGRU, auxiliary loss with in-batch negatives; also
``dien-noaux`` without it, and ``dien-torchgru`` with torch's packed nn.GRU as the interest
extractor, ``gru_impl='torch'``, DIEN's implementation before its own packed loop; BST: one
transformer layer, 2 heads).

Each measurement runs in a fresh subprocess; models alternate run by run; medians over --runs
are printed with the rows/s ratio to DIN. With --deepctr-python pointing to an interpreter
that has deepctr-torch (see bench_din.py), DeepCTR-Torch's DIEN (AUGRU, no negative sampling:
it needs neg_hist inputs) runs beside ``dien-noaux``, and with ``--models xdeepfm,autoint,dcn``
its xDeepFM, AutoInt and DCN beside ctrkit's (same data and defaults; DeepCTR's DCN and
AutoInt also carry a linear part, ctrkit's do not).

Run:  python benchmarks/bench_sequence_models.py [--rows 100000] [--runs 3]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
if REPO_ROOT not in sys.path[:1]:
    sys.path.insert(0, REPO_ROOT)
sys.path.insert(1, HERE)

from bench_din import BATCH, T, features, make_data, peak_rss_mb  # noqa: E402

#: name -> (registered model, hyperparameters)
MODELS = {"din": ("din", {}), "dien": ("dien", {}),
          "dien-noaux": ("dien", {"use_negsampling": False}), "bst": ("bst", {}),
          # DIEN before its own packed GRU loop: torch's packed nn.GRU as the interest
          # extractor (same model, equal up to rounding)
          "dien-torchgru": ("dien", {"gru_impl": "torch"}),
          # the interaction models, for --models xdeepfm,autoint,dcn --deepctr-python ...
          "xdeepfm": ("xdeepfm", {}), "dcn": ("dcn", {}),
          # DeepCTR-Torch 0.3's AutoInt splits the embedding (8) over its 2 heads
          "autoint": ("autoint", {"att_embedding_size": 4})}
#: ctrkit model -> the DeepCTR-Torch model run beside it with --deepctr-python
DEEPCTR = {"dien-noaux": "DIEN", "xdeepfm": "xDeepFM", "dcn": "DCN", "autoint": "AutoInt"}


def worker(name: str, rows: int, maxlen: int, threads: int) -> dict:
    import torch
    torch.set_num_threads(threads)
    x, y = make_data(rows, maxlen)
    if name.startswith("deepctr-"):
        import deepctr_torch.inputs as dinputs
        import deepctr_torch.models as dmodels
        cls = getattr(dmodels, name[len("deepctr-"):])
        feats = features(dinputs, maxlen)
        if cls.__name__ == "DIEN":
            model = cls(feats, ["item", "cate"], gru_type="AUGRU", use_negsampling=False,
                        device="cpu", seed=0)
        else:  # its interaction models take (linear, dnn) feature lists; they count fields
            # by tables, so each history gets its own table there (shared ones crash its CIN)
            S, V = dinputs.SparseFeat, dinputs.VarLenSparseFeat
            feats = [f if isinstance(f, V) is False else
                     V(S(f.name, f.vocabulary_size, f.embedding_dim), maxlen,
                       length_name=f.length_name) for f in feats]
            model = cls(feats, feats, device="cpu", seed=0)
        model.compile("adam", "binary_crossentropy", metrics=["binary_crossentropy", "auc"])
    else:
        import ctrkit
        registered, hp = MODELS[name]
        model = ctrkit.build(registered, features(ctrkit, maxlen), seed=0, **hp)
        model.compile("adam", "binary_crossentropy", metrics=["logloss", "auc"])
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    t1 = time.perf_counter()
    pred = model.predict(x, batch_size=BATCH)
    t2 = time.perf_counter()
    peak = peak_rss_mb()
    from sklearn.metrics import roc_auc_score
    return {"model": name, "train_rows_s": rows / (t1 - t0), "predict_rows_s": rows / (t2 - t1),
            "peak_rss_mb": peak, "auc": float(roc_auc_score(y, np.ravel(pred)))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--worker")
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--maxlen", type=int, default=T)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--models", default="din,dien,dien-noaux,bst")
    p.add_argument("--deepctr-python", default=None)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.rows, args.maxlen, args.threads)))
        return
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    if args.deepctr_python:
        names += [f"deepctr-{DEEPCTR[n]}" for n in list(names) if n in DEEPCTR]
    results = {n: [] for n in names}
    for r in range(args.runs):
        for n in names:  # alternate the models run by run
            py = args.deepctr_python if n.startswith("deepctr-") else sys.executable
            out = subprocess.run([py, os.path.abspath(__file__), "--worker", n, "--rows",
                                  str(args.rows), "--maxlen", str(args.maxlen), "--threads",
                                  str(args.threads)], check=True, capture_output=True, text=True)
            res = json.loads(out.stdout.strip().splitlines()[-1])
            results[n].append(res)
            print(f"run {r + 1} {n:12s} train {res['train_rows_s']:8.0f} rows/s  predict "
                  f"{res['predict_rows_s']:8.0f} rows/s  peak RSS {res['peak_rss_mb']:6.0f} MB  "
                  f"auc {res['auc']:.4f}", flush=True)
    med = {n: {k: statistics.median(r[k] for r in results[n])
               for k in ("train_rows_s", "predict_rows_s", "peak_rss_mb", "auc")} for n in names}
    print(f"\nmedians of {args.runs} runs, {os.cpu_count()} cores, torch threads {args.threads}, "
          f"{args.rows} rows, T={args.maxlen}")
    ref = med.get("din")
    for n in names:
        m = med[n]
        ratio = (f"  (train {m['train_rows_s'] / ref['train_rows_s']:.2f}x, predict "
                 f"{m['predict_rows_s'] / ref['predict_rows_s']:.2f}x DIN's)" if ref else "")
        print(f"  {n:12s} train {m['train_rows_s']:8.0f} rows/s  predict "
              f"{m['predict_rows_s']:8.0f} rows/s  peak RSS {m['peak_rss_mb']:6.0f} MB  "
              f"auc {m['auc']:.4f}{ratio}")
    for n, other in DEEPCTR.items():
        if n in med and f"deepctr-{other}" in med:
            c, d = med[n], med[f"deepctr-{other}"]
            print(f"  ctrkit {n} / DeepCTR-Torch {other}: train "
                  f"{c['train_rows_s'] / d['train_rows_s']:.2f}x, predict "
                  f"{c['predict_rows_s'] / d['predict_rows_s']:.2f}x, peak RSS "
                  f"{c['peak_rss_mb'] / d['peak_rss_mb']:.2f}x")


if __name__ == "__main__":
    main()
