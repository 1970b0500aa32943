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

Other modes: --scaling (train rows/s over T and rows), --profile (where ctrkit's training
time goes), --profile-predict (where its predict time goes).
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


def make_data(rows=ROWS, maxlen=T, seed=0, with_probability=False):
    """``(x, y)``; with ``with_probability`` also the true click probability of every row.

    The label depends only on the share of the history in the candidate's category, and with
    500 categories only about 5% of the rows have any match: the true probabilities score an
    AUC of about 0.504, so an AUC well above that on the training rows is memorised ids."""
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
    prob = 1 / (1 + np.exp(-(4 * overlap - 1)))
    y = (rng.random(rows) < prob).astype(np.float32)
    x = {k: v.astype(np.int64) for k, v in x.items()}
    return (x, y, prob) if with_probability else (x, y)


def features(mod, maxlen=T):
    S, V = mod.SparseFeat, mod.VarLenSparseFeat
    return [S("user", USERS, DIM), S("item", ITEMS, DIM), S("cate", CATES, DIM),
            V(S("hist_item", ITEMS, DIM, embedding_name="item"), maxlen, length_name="seq_length"),
            V(S("hist_cate", CATES, DIM, embedding_name="cate"), maxlen, length_name="seq_length")]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def attention_flops_per_behaviour(att_dim=2 * DIM, hidden=(64, 16)) -> int:
    """Forward multiply-adds x2 of the local activation unit per valid behaviour (DESIGN.md §3
    with the split-weight identity: [k, q⊙k, q] (3E) -> H1, then H1 -> H2 -> 1)."""
    dims = [3 * att_dim] + list(hidden) + [1]
    return sum(2 * a * b for a, b in zip(dims[:-1], dims[1:]))


def dnn_flops_per_row(att_dim=2 * DIM, hidden=(256, 128)) -> int:
    """Forward FLOPs per row outside the behaviours: the top MLP."""
    dims = [3 * DIM + att_dim] + list(hidden) + [1]
    return sum(2 * a * b for a, b in zip(dims[:-1], dims[1:]))


def train_flops(lengths: np.ndarray) -> float:
    """Training FLOPs (forward + backward = 3x the forward GEMM FLOPs) of one epoch."""
    return 3.0 * (attention_flops_per_behaviour() * float(lengths.sum())
                  + dnn_flops_per_row() * len(lengths))


def dense_matmul_gflops(m: int, k: int, n: int, reps: int = 20) -> float:
    """Best-of-``reps`` GFLOP/s of a dense (m, k) @ (k, n) float32 matmul in this process."""
    import torch
    a, b = torch.randn(m, k), torch.randn(k, n)
    a @ b
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2.0 * m * k * n / best / 1e9


def worker(impl: str, rows: int, maxlen: int, epochs: int = 1, threads: int = 2,
           policy: str = "float32") -> dict:
    import torch
    torch.set_num_threads(threads)
    x, y = make_data(rows, maxlen)
    if impl == "ctrkit":
        import ctrkit
        model = ctrkit.build("din", features(ctrkit, maxlen), seed=0)
        model.compile("adam", "binary_crossentropy", metrics=["logloss", "auc"],
                      dtype_policy=policy)
    else:
        from deepctr_torch.models import DIN
        import deepctr_torch.inputs as dinputs
        model = DIN(features(dinputs, maxlen), ["item", "cate"], device="cpu", seed=0)
        model.compile("adam", "binary_crossentropy", metrics=["binary_crossentropy", "auc"])
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=BATCH, epochs=epochs, verbose=0)
    t1 = time.perf_counter()
    pred = model.predict(x, batch_size=BATCH)
    t2 = time.perf_counter()
    peak = peak_rss_mb()  # before the benchmark's own AUC check imports anything
    train_s = t1 - t0
    mean_len = float(x["seq_length"].mean())
    res = {"impl": impl, "train_rows_s": rows * epochs / train_s, "predict_rows_s": rows / (t2 - t1),
           "peak_rss_mb": peak,
           "train_gflops": train_flops(x["seq_length"]) * epochs / train_s / 1e9,
           "matmul_gflops": dense_matmul_gflops(int(BATCH * mean_len), 4 * DIM, 64)}
    from sklearn.metrics import roc_auc_score
    res["auc"] = float(roc_auc_score(y, np.ravel(pred)))
    return res


def op_timer():
    """Context manager giving {(op, output shape with the first dim as 'n'): (calls, seconds)}:
    the wall time inside each aten call, forward and backward. torch.profiler is not used: its
    own allocations defeat the heap reuse of ctrkit's loops and make every op that allocates
    a large output look several times slower (92k page faults per 30 predict batches under it,
    none without it)."""
    import contextlib
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    ops: dict = {}

    class OpTimer(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            t = time.perf_counter()
            out = func(*args, **(kwargs or {}))
            dt = time.perf_counter() - t
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else ()
            key = (str(func.overloadpacket.__name__), ("n",) + shape[1:] if shape else ())
            n, tot = ops.get(key, (0, 0.0))
            ops[key] = (n + 1, tot + dt)
            return out

    @contextlib.contextmanager
    def scope():
        with OpTimer():
            yield ops
    return scope()


def print_ops(ops: dict, units: int, unit: str, n_means: str, top: int = 16) -> None:
    op_s = sum(v[1] for v in ops.values())
    print(f"by operator and output shape (n: rows of that call, {n_means}), wall time inside "
          f"each call; the timing hooks slow the ops a little ({1e3 * op_s / units:.2f} "
          f"ms/{unit} in all), so read the shares:")
    for (name, shape), (n, tot) in sorted(ops.items(), key=lambda kv: -kv[1][1])[:top]:
        print(f"  {name:28s} {str(shape):14s} {n / units:5.1f} calls/{unit} "
              f"{1e3 * tot / units:6.3f} ms/{unit}  {100 * tot / op_s:5.1f}%")


def profile(rows: int, maxlen: int, threads: int, steps: int = 20) -> None:
    """Where ctrkit's training time goes: per-phase wall time over ``steps`` steps, then the
    wall time of each operator (forward and backward) over as many more."""
    import torch
    import ctrkit
    torch.set_num_threads(threads)
    x, y = make_data(rows, maxlen)
    model = ctrkit.build("din", features(ctrkit, maxlen), seed=0)
    model.compile("adam", "binary_crossentropy", metrics=["logloss", "auc"])
    model.fit({k: v[:2 * BATCH] for k, v in x.items()}, y[:2 * BATCH], batch_size=BATCH,
              verbose=0)  # warm-up (and the allocator tuning fit applies)
    data = model.trainer.prepare(x, y)
    tr = model.trainer
    phases = {"index batch": 0.0, "forward+loss": 0.0, "regularizer": 0.0, "backward": 0.0,
              "optimizer": 0.0}

    def run(timed: bool) -> None:
        for step in range(steps):
            idx = torch.randperm(len(data))[:BATCH]
            t0 = time.perf_counter()
            batch, yb = data.x.take(idx), data.y[idx]
            t1 = time.perf_counter()
            loss = tr._loss(model(batch), yb, None)
            t2 = time.perf_counter()
            reg = model.regularization_loss(batch)
            total = loss if reg is None else loss + reg
            t3 = time.perf_counter()
            tr.optimizer.zero_grad(set_to_none=True)
            total.backward()
            t4 = time.perf_counter()
            tr.optimizer.step()
            t5 = time.perf_counter()
            if timed:
                for k, a, b in zip(phases, (t0, t1, t2, t3, t4), (t1, t2, t3, t4, t5)):
                    phases[k] += b - a

    run(True)
    total_s = sum(phases.values())
    print(f"ctrkit DIN training step, {steps} steps of {BATCH} rows, T={maxlen}, "
          f"threads {threads}: {1e3 * total_s / steps:.1f} ms/step")
    for k, v in phases.items():
        print(f"  {k:14s} {1e3 * v / steps:7.1f} ms  {100 * v / total_s:5.1f}%")
    with op_timer() as ops:
        run(False)
    print_ops(ops, steps, "step", "valid behaviours M or the batch", top=20)


def profile_predict(rows: int, maxlen: int, threads: int, batches: int = 60) -> None:
    """Where ctrkit's predict time goes: per-phase wall time of ``batches`` 1024-row batches
    (run exactly as predict runs them: eval, inference mode, folded constants reused), then
    the wall time of each operator over the same loop."""
    import torch
    import ctrkit
    from ctrkit.inputs import prepare_inputs
    from ctrkit.layers.frozen import frozen_weights
    from ctrkit.utils import allocator
    torch.set_num_threads(threads)
    x, y = make_data(max(rows, batches * BATCH), maxlen)
    model = ctrkit.build("din", features(ctrkit, maxlen), seed=0)
    model.compile("adam", "binary_crossentropy")
    model.fit({k: v[:10 * BATCH] for k, v in x.items()}, y[:10 * BATCH], batch_size=BATCH,
              verbose=0)  # running statistics away from their initial values
    cols = prepare_inputs(model.features, x)
    model.eval()
    allocator.tune()
    phases = {"pack + lookups": 0.0, "attention unit + pooling": 0.0, "top MLP": 0.0}

    def loop(timed: bool) -> None:
        with torch.inference_mode(), frozen_weights():
            for i in range(batches):
                t0 = time.perf_counter()
                batch = cols.slice(i * BATCH, (i + 1) * BATCH)
                emb, q, k_valid, rows_, pos, t = model._embed_packed(batch)
                t1 = time.perf_counter()
                interest = model.attention.pool_packed(q, k_valid, rows_, pos, t)
                t2 = time.perf_counter()
                h = model.dnn(torch.cat([emb[f.name] for f in model.sparse] + [interest], -1))
                model.head(model.dnn_linear(h).squeeze(-1))
                t3 = time.perf_counter()
                if timed:
                    for k, a, b in zip(phases, (t0, t1, t2), (t1, t2, t3)):
                        phases[k] += b - a

    loop(False)
    loop(True)
    total_s = sum(phases.values())
    print(f"ctrkit DIN predict, {batches} batches of {BATCH} rows, T={maxlen}, threads "
          f"{threads}: {1e3 * total_s / batches:.2f} ms/batch ({batches * BATCH / total_s:.0f} "
          f"rows/s without the input checks)")
    for k, v in phases.items():
        print(f"  {k:26s} {1e3 * v / batches:6.2f} ms  {100 * v / total_s:5.1f}%")
    with op_timer() as ops:
        loop(False)
    print_ops(ops, batches, "batch", "a chunk of <= 8192 behaviours or the batch")


def scaling(args) -> None:
    """Train rows/s of ctrkit for T in {10, 50, 200} and rows in args.scaling_rows."""
    print(f"scaling: ctrkit train rows/s (one epoch, fresh process each, threads {args.threads})")
    print(f"{'rows':>9s} {'T':>4s} {'mean len':>8s} {'rows/s':>9s} {'s/epoch':>8s} "
          f"{'us/row':>7s} {'us/behaviour':>12s}")
    for rows in args.scaling_rows:
        for maxlen in (10, 50, 200):
            res = run_worker(sys.executable, "ctrkit", rows, maxlen, args.threads)
            mean_len = (maxlen + 1) / 2
            us_row = 1e6 / res["train_rows_s"]
            print(f"{rows:9d} {maxlen:4d} {mean_len:8.1f} {res['train_rows_s']:9.0f} "
                  f"{rows / res['train_rows_s']:8.1f} {us_row:7.1f} {us_row / mean_len:12.2f}",
                  flush=True)


def run_worker(python: str, impl: str, rows: int, maxlen: int, threads: int = 2,
               policy: str = "float32") -> dict:
    cmd = [python, os.path.abspath(__file__), "--worker", impl, "--rows", str(rows),
           "--maxlen", str(maxlen), "--threads", str(threads)]
    if policy != "float32":
        cmd += ["--policy", policy]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def has_deepctr(python: str) -> bool:
    r = subprocess.run([python, "-c", "import deepctr_torch"], capture_output=True)
    return r.returncode == 0


def compare(args) -> None:
    impls = ["ctrkit"] + (["deepctr"] if has_deepctr(args.deepctr_python) else [])
    if args.policy != "float32":  # the same ctrkit run under the mixed policy, alternated
        impls.insert(1, args.policy)
    results = {i: [] for i in impls}
    for r in range(args.runs):
        for impl in impls:  # alternate the libraries run by run
            py = args.deepctr_python if impl == "deepctr" else sys.executable
            policy = impl if impl in ("mixed_bfloat16", "mixed_float16") else "float32"
            res = run_worker(py, "ctrkit" if policy != "float32" else impl, args.rows,
                             args.maxlen, args.threads, policy)
            results[impl].append(res)
            print(f"run {r + 1} {impl:8s} train {res['train_rows_s']:9.0f} rows/s  predict "
                  f"{res['predict_rows_s']:9.0f} rows/s  peak RSS {res['peak_rss_mb']:7.0f} MB  "
                  f"auc {res['auc']:.4f}  {res['train_gflops']:.2f} GFLOP/s", flush=True)
    med = {i: {k: statistics.median(r[k] for r in results[i])
               for k in ("train_rows_s", "predict_rows_s", "peak_rss_mb", "auc", "train_gflops",
                         "matmul_gflops")} for i in impls}
    print(f"\nmedians of {args.runs} runs, {os.cpu_count()} cores, torch threads {args.threads}, "
          f"{args.rows} rows, T={args.maxlen}")
    for i in impls:
        m = med[i]
        print(f"  {i:8s} train {m['train_rows_s']:9.0f} rows/s  predict {m['predict_rows_s']:9.0f} "
              f"rows/s  peak RSS {m['peak_rss_mb']:7.0f} MB  auc {m['auc']:.4f}")
    x, y, prob = make_data(args.rows, args.maxlen, with_probability=True)
    from sklearn.metrics import roc_auc_score
    print(f"  (auc: one epoch, on the training rows. The true click probabilities score "
          f"{roc_auc_score(y, prob):.4f}: the labels are close to noise, so an auc above that "
          f"is memorised ids, a measure of how fast the first steps fit, not of quality.)")
    if args.policy in med:
        c, m = med["ctrkit"], med[args.policy]
        print(f"  {args.policy} / float32: train {m['train_rows_s'] / c['train_rows_s']:.2f}x, "
              f"predict {m['predict_rows_s'] / c['predict_rows_s']:.2f}x, peak RSS "
              f"{m['peak_rss_mb'] / c['peak_rss_mb']:.2f}x, auc {m['auc']:.4f} vs "
              f"{c['auc']:.4f}")
    if "deepctr" in med:
        c, d = med["ctrkit"], med["deepctr"]
        print(f"  ratios ctrkit/deepctr: train {c['train_rows_s'] / d['train_rows_s']:.2f}x "
              f"(target >= 4x), predict {c['predict_rows_s'] / d['predict_rows_s']:.2f}x "
              f"(target >= 5x), peak RSS {c['peak_rss_mb'] / d['peak_rss_mb']:.2f}x "
              f"(target <= 0.5x)")
    c = med["ctrkit"]
    print(f"  roofline: ctrkit's training step achieves {c['train_gflops']:.2f} GFLOP/s of GEMM "
          f"work ({attention_flops_per_behaviour()} forward FLOPs per valid behaviour, "
          f"x3 for forward+backward, plus the top MLP); a dense {int(BATCH * (args.maxlen + 1) / 2)}"
          f"x{4 * DIM} @ {4 * DIM}x64 float32 matmul in the same process: "
          f"{c['matmul_gflops']:.1f} GFLOP/s ({100 * c['train_gflops'] / c['matmul_gflops']:.0f}%)")
    if "deepctr" not in med:
        print("  deepctr_torch not importable: no ratios (see the module docstring)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--worker", choices=["ctrkit", "deepctr"])
    p.add_argument("--policy", default="float32",
                   choices=["float32", "mixed_bfloat16", "mixed_float16"],
                   help="also run ctrkit under this dtype policy, alternated with float32")
    p.add_argument("--rows", type=int, default=ROWS)
    p.add_argument("--maxlen", type=int, default=T)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--deepctr-python", default=sys.executable)
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (spec: 2)")
    p.add_argument("--scaling", action="store_true", help="train rows/s over T and rows")
    p.add_argument("--scaling-rows", type=int, nargs="+", default=[10_000, 100_000],
                   help="row counts for --scaling (add 1000000 for the slow 10^6 point)")
    p.add_argument("--profile", action="store_true", help="where ctrkit's step time goes")
    p.add_argument("--profile-predict", action="store_true",
                   help="where ctrkit's predict time goes, per 1024-row batch")
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.rows, args.maxlen, threads=args.threads,
                                policy=args.policy)))
    elif args.profile:
        profile(min(args.rows, 50_000), args.maxlen, args.threads)
    elif args.profile_predict:
        profile_predict(min(args.rows, 60 * BATCH), args.maxlen, args.threads)
    elif args.scaling:
        scaling(args)
    else:
        compare(args)


if __name__ == "__main__":
    main()
