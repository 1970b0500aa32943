"""Time ctrkit.metrics.gauc on 10^6 rows / 10^5 users and check it against the definition.

Run: python benchmarks/bench_gauc.py [--rows 1000000] [--users 100000] [--repeats 7]

Prints the median wall time of ``gauc`` over several runs (integer user ids, float32 scores
with ties), and on a 5,000-row sample the largest difference from a per-user loop over
``sklearn.metrics.roc_auc_score`` (and how long that loop takes) for every weighting.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's ctrkit
from ctrkit.metrics import gauc  # noqa: E402


def make(rows: int, users: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    g = rng.integers(0, users, rows)
    bias = rng.normal(0, 1, users)[g]  # users differ in base rate: GAUC != AUC
    y = (rng.random(rows) < 1 / (1 + np.exp(-(bias - 1)))).astype(np.int64)
    s = np.round(1 / (1 + np.exp(-(bias + y + rng.normal(0, 1.5, rows)))), 3).astype(np.float32)
    return y, s, g


def loop_gauc(y, s, g, weights):
    num = den = 0.0
    for u in np.unique(g):
        m = g == u
        if y[m].min() == y[m].max():
            continue
        w = {"impressions": m.sum(), "clicks": y[m].sum(), "uniform": 1}[weights]
        num += w * roc_auc_score(y[m], s[m])
        den += w
    return num / den


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    torch.set_num_threads(1)
    y, s, g = make(args.rows, args.users)
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        res = gauc(y, s, g, return_details=True)
        times.append(time.perf_counter() - t)
    print(f"gauc: {args.rows:,} rows, {args.users:,} users: median {statistics.median(times):.3f} s "
          f"(min {min(times):.3f}, max {max(times):.3f}, {args.repeats} runs); value "
          f"{res.value:.6f}, {res.n_groups_used:,} users used, {res.n_groups_skipped:,} skipped "
          f"(one class)")
    ys, ss, gs = make(5_000, 500, seed=1)
    for weights in ("impressions", "clicks", "uniform"):
        t = time.perf_counter()
        ref = loop_gauc(ys, ss, gs, weights)
        t_loop = time.perf_counter() - t
        t = time.perf_counter()
        val = gauc(ys, ss, gs, weights)
        t_vec = time.perf_counter() - t
        print(f"check 5,000 rows / 500 users, weights={weights!r}: |gauc - loop over "
              f"roc_auc_score| = {abs(val - ref):.2e}  (loop {t_loop:.2f} s, gauc {t_vec * 1e3:.1f} ms)")


if __name__ == "__main__":
    main()
