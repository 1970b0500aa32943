"""Data-parallel training speed: rows/s of one process against torchrun with W processes.

The same global batch (``--batch`` rows per step in all) and data in every run: one process
trains with batch ``--batch``; W processes (``torchrun --nproc_per_node=W`` over gloo on
loopback) train with ``--batch / W`` rows each. Each run times ``--epochs`` epochs of ``fit``
after one warm-up epoch; the rows/s printed are training rows per second of wall time,
the median of ``--runs`` runs per setting (alternated).

    python benchmarks/bench_distributed.py                 # 1 vs 2 processes, 1 thread each
    python benchmarks/bench_distributed.py --procs 1 2 4 --threads 1 --runs 5

On a 2-core machine expect little gain: two processes share the two cores, every step adds an
all-reduce of all gradients (the embedding tables are dense parameters) and the small
per-step all-reduces of the loss and the stop flag. Data parallelism pays when each process
has its own cores or GPU.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker(args) -> None:
    sys.path.insert(0, str(ROOT))
    import torch
    torch.set_num_threads(args.threads)
    import ctrkit
    from ctrkit.datasets import make_synthetic
    from ctrkit import strategies as distributed

    x, y, feats = make_synthetic(n_rows=args.rows, n_users=2000, n_items=5000, n_categories=50,
                                 maxlen=args.maxlen, embedding_dim=8, seed=0)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    model = ctrkit.build("din", feats)
    model.compile("adam", "binary_crossentropy", metrics=["auc"])
    model.fit(x, y, batch_size=args.batch // world, epochs=1, verbose=0)  # warm-up
    t0 = time.perf_counter()
    hist = model.fit(x, y, batch_size=args.batch // world, epochs=args.epochs, verbose=0)
    seconds = time.perf_counter() - t0
    if distributed.is_rank_zero():
        print(json.dumps({"procs": world, "threads": args.threads, "seconds": seconds,
                          "rows_per_s": args.rows * args.epochs / seconds,
                          "loss": hist.history["loss"][-1], "auc": hist.history["auc"][-1]}))
    if world > 1:
        torch.distributed.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(args, procs: int) -> dict:
    common = [__file__, "--worker", "--rows", str(args.rows), "--batch", str(args.batch),
              "--epochs", str(args.epochs), "--threads", str(args.threads),
              "--maxlen", str(args.maxlen)]
    if procs == 1:
        cmd = [sys.executable] + common
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={procs}",
               "--master_addr=127.0.0.1", f"--master_port={free_port()}"] + common
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rows", type=int, default=20_000)
    p.add_argument("--batch", type=int, default=1024, help="global rows per step")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    p.add_argument("--maxlen", type=int, default=20)
    p.add_argument("--runs", type=int, default=3, help="runs per setting (median printed)")
    args = p.parse_args()
    if args.worker:
        return worker(args)
    print(f"DIN defaults, {args.rows} rows, history <= {args.maxlen}, global batch "
          f"{args.batch}, {args.epochs} timed epochs, {args.threads} thread(s)/process, "
          f"{os.cpu_count()} CPUs")
    results = {procs: [] for procs in args.procs}
    for _ in range(args.runs):  # alternate, so load from other jobs hits every setting alike
        for procs in args.procs:
            results[procs].append(launch(args, procs))
    base = None
    for procs, runs in results.items():
        rates = sorted(r["rows_per_s"] for r in runs)
        median = statistics.median(rates)
        base = base or median
        r = runs[-1]
        print(f"{procs} process(es): median {median:9.0f} rows/s (x{median / base:.2f}; runs "
              f"{', '.join(f'{v:.0f}' for v in rates)})  final loss {r['loss']:.4f} "
              f"auc {r['auc']:.4f}")


if __name__ == "__main__":
    main()
