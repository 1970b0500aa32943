"""Memory and speed of a big item table: replicated (strategy='ddp') vs sharded ('torchrec').

Both runs train DIN under ``torchrun --nproc_per_node=W`` (gloo on loopback) on the same
synthetic data, with an item table of ``--items`` rows x ``--dim`` (shared by the candidate
and the ``--maxlen``-long history), a small user table, SGD, and ``--batch`` rows per global
step. ``strategy='ddp'`` keeps a full replica of every table, and its dense gradient, in every
process; ``strategy=TorchRec(sharding={'item': 'row_wise'})`` keeps 1/W of the item rows per
process; ``torchrec-deferred`` is the same with the model built inside
:func:`~ctrkit.strategies.torchrec.sharded_init`, so no process ever holds the whole
table. Per rank it reports:

- ``peak_rss``: the process's peak resident memory (``ru_maxrss``) over the whole run;
- ``rss_after``: its resident memory after training (the full tables that ``ctrkit.build``
  created on every rank are freed once the shards are filled from them);
- ``table_bytes``: the bytes of the item table this rank holds (its rows, or the replica);
- ``rows_per_s``: training rows per second over ``--steps`` global steps, after one warm-up
  fit of one step (which also builds the shards / DDP buckets).

    sh scripts/install_torchrec.sh                 # once
    python benchmarks/bench_sharded.py             # 2 x 10^7 x 16 item table, 2 processes
    python benchmarks/bench_sharded.py --items 2000000 --steps 10 --runs 1   # a quick look
    # big data too: rows streamed from Parquet (each rank reads its share), DIN's default
    # embedding L2, against one process
    python benchmarks/bench_sharded.py --source parquet --model-defaults \
        --strategies local ddp torchrec-deferred --items 2000000 --steps 100

With ``--source parquet`` the ``batch x steps`` rows are written once to Parquet and every run
trains from a ``ParquetDataset`` (``--shuffle-buffer`` rows of shuffle buffer). ``local`` is one
process (no torchrun split). Per rank the terms of the peak are printed too: ``base`` (RSS
after the imports, before the model), the table and optimizer state it holds, the data it
holds (in memory: all rows; Parquet: the shuffle buffer and prefetched row groups, estimated
from the row size) and the bytes a step exchanges (computed: DDP all-reduces every table's
dense gradient; TorchRec sends ids and rows, forward and backward).

The two strategies run one after the other (alternated when ``--runs`` > 1); medians are printed.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STRATEGIES = ("local", "ddp", "torchrec", "torchrec-deferred")


def _rss_now() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _data(args, n=None):
    import numpy as np
    from ctrkit import SparseFeat, VarLenSparseFeat
    rng = np.random.default_rng(0)
    n = args.batch * args.steps if n is None else n
    features = [SparseFeat("user", 1000, embedding_dim=args.dim),
                SparseFeat("item", args.items, embedding_dim=args.dim),
                VarLenSparseFeat(SparseFeat("hist_item", args.items, embedding_dim=args.dim),
                                 args.maxlen, length_name="seq_length")]
    lengths = rng.integers(1, args.maxlen + 1, size=n)
    hist = rng.integers(1, args.items, size=(n, args.maxlen))
    hist[np.arange(args.maxlen)[None, :] >= lengths[:, None]] = 0
    x = {"user": rng.integers(0, 1000, size=n), "item": rng.integers(1, args.items, size=n),
         "hist_item": hist, "seq_length": lengths}
    y = rng.integers(0, 2, size=n).astype(np.float32)
    return x, y, features


def worker(args) -> None:
    sys.path.insert(0, str(ROOT))
    import torch
    torch.set_num_threads(1)
    import ctrkit
    from ctrkit.strategies.torchrec import TorchRec, sharded_init
    from ctrkit.data import ParquetDataset
    world = int(os.environ["WORLD_SIZE"])
    rank = int(os.environ["RANK"])
    x, y, features = _data(args)
    row_bytes = sum(v[:1].nbytes for v in x.values()) + 4
    if args.source == "parquet":
        train = ParquetDataset(Path(args.out) / "data", shuffle_buffer=args.shuffle_buffer)
        data_bytes = (args.shuffle_buffer + 2 * args.row_group) * row_bytes  # + prefetch
        del x  # only the warm-up slice below stays in memory
        x = {k: v[:args.batch] for k, v in _data(args, args.batch)[0].items()}
    else:
        train, data_bytes = None, len(y) * row_bytes
    base = _rss_now()
    reg = {} if args.model_defaults else {"l2_reg_embedding": 0.0}
    with sharded_init() if args.strategy == "torchrec-deferred" else contextlib.nullcontext():
        model = ctrkit.build("din", features, dnn_hidden_units=(64, 32), att_hidden_size=(32,),
                             seed=0, **reg)
    strategy = {"local": None, "ddp": "ddp"}.get(args.strategy,
                                                 TorchRec(sharding={"item": "row_wise"}))
    model.compile("sgd", "binary_crossentropy", lr=0.1, strategy=strategy)
    local = args.batch // world
    warm = {k: v[:args.batch] for k, v in x.items()}
    model.fit(warm, y[:args.batch], batch_size=local, epochs=1, verbose=0)  # shards / buckets
    t0 = time.perf_counter()
    if train is not None:
        model.fit(train, batch_size=local, epochs=1, verbose=0, shuffle=True)
    else:
        model.fit(x, y, batch_size=local, epochs=1, verbose=0, shuffle=False)
    seconds = time.perf_counter() - t0
    if args.strategy.startswith("torchrec"):
        st = model.embeddings.backend.sharded_state()["item"]
        table = sum(p.tensor.numel() * p.tensor.element_size() for p in st.local_shards())
        all_tables = sum(p.tensor.numel() * p.tensor.element_size()
                         for t in model.embeddings.backend.sharded_state().values()
                         for p in t.local_shards())
        opt = sum(p.tensor.numel() * p.tensor.element_size()
                  for s in model.embeddings.backend.optimizer_state().values()
                  for t in s.values() for p in t.local_shards())
        per_rank_ids = local * (2 + args.maxlen)  # user, item, history ids of a rank's batch
        exchanged = 2 * per_rank_ids * (8 + 4 * args.dim)  # ids + rows, forward and backward
    else:
        w = model.embeddings.tables["item"].weight
        table = w.numel() * w.element_size()
        all_tables = sum(t.weight.numel() * 4 for t in model.embeddings.tables.values())
        opt = sum(v.numel() * v.element_size() for st in model.trainer.optimizer.state.values()
                  for v in st.values() if hasattr(v, "numel"))
        exchanged = 0 if world == 1 else sum(p.numel() * 4 for p in model.parameters())
    out = {"strategy": args.strategy, "rank": rank, "world": world,
           "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
           "rss_after": _rss_now(), "table_bytes": table, "base_rss": base,
           "opt_bytes": opt, "data_bytes": data_bytes, "exchanged": exchanged,
           "all_tables": all_tables,
           "rows_per_s": len(y) / seconds, "seconds": seconds}
    Path(args.out, f"{args.strategy}-{rank}.json").write_text(json.dumps(out))
    if torch.distributed.is_initialized():  # not for 'local'
        torch.distributed.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(args, strategy: str, out: str):
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    procs = 1 if strategy == "local" else args.procs
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={procs}",
           "--master_addr=127.0.0.1", f"--master_port={free_port()}", __file__, "--worker",
           "--strategy", strategy, "--out", out, "--items", str(args.items), "--dim",
           str(args.dim), "--batch", str(args.batch), "--steps", str(args.steps),
           "--maxlen", str(args.maxlen), "--source", args.source, "--shuffle-buffer",
           str(args.shuffle_buffer), "--row-group", str(args.row_group)]
    cmd += ["--model-defaults"] if args.model_defaults else []
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{strategy} run failed:\n{proc.stderr[-4000:]}")
    return [json.loads(Path(out, f"{strategy}-{r}.json").read_text()) for r in range(procs)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--items", type=int, default=20_000_000, help="item table rows")
    p.add_argument("--dim", type=int, default=16, help="embedding dim")
    p.add_argument("--procs", type=int, default=2, help="processes (W)")
    p.add_argument("--batch", type=int, default=2048, help="rows per global step")
    p.add_argument("--steps", type=int, default=20, help="timed global steps")
    p.add_argument("--maxlen", type=int, default=20, help="history length")
    p.add_argument("--runs", type=int, default=1, help="runs per strategy (alternated)")
    p.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES,
                   help="what to run (torchrec-deferred: tables built inside sharded_init)")
    p.add_argument("--source", choices=("memory", "parquet"), default="memory",
                   help="train from in-memory arrays (every rank holds all rows) or Parquet")
    p.add_argument("--shuffle-buffer", type=int, default=4096, help="Parquet shuffle buffer rows")
    p.add_argument("--row-group", type=int, default=16384, help="Parquet row-group rows")
    p.add_argument("--model-defaults", action="store_true",
                   help="DIN's default embedding L2 (1e-6) instead of l2_reg_embedding=0")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--strategy", default="torchrec", help=argparse.SUPPRESS)
    p.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)
    results = {s: [] for s in args.strategies}
    with tempfile.TemporaryDirectory() as out:
        if args.source == "parquet":
            sys.path.insert(0, str(ROOT))
            from ctrkit.data import write_parquet
            x, y, _ = _data(args)
            Path(out, "data").mkdir()
            write_parquet(x, y, Path(out, "data", "train.parquet"), row_group_size=args.row_group)
            del x, y
        for _ in range(args.runs):
            for strategy in args.strategies:
                results[strategy].append(launch(args, strategy, out))
    gb = 1024 ** 3
    print(f"item table {args.items:,} x {args.dim} float32 = "
          f"{args.items * args.dim * 4 / gb:.2f} GiB; {args.procs} processes, SGD, "
          f"{args.batch} rows/step, {args.steps} steps, medians of {args.runs} run(s)")
    print(f"source: {args.source}; embedding L2: "
          f"{'DIN default 1e-6' if args.model_defaults else 0}")
    print(f"{'strategy':<18} {'rank':>4} {'base':>6} {'tables':>7} {'item':>6} {'opt':>6} "
          f"{'data':>6} {'peak RSS':>9} {'RSS after':>9} {'MB/step':>8} {'rows/s':>9}   (GiB)")
    med = {}
    for strategy, runs in results.items():
        for r in range(len(runs[0])):
            keys = ("base_rss", "all_tables", "table_bytes", "opt_bytes", "data_bytes",
                    "peak_rss", "rss_after", "exchanged", "rows_per_s")
            m = {k: statistics.median(run[r][k] for run in runs) for k in keys}
            med[strategy, r] = m
            print(f"{strategy:<18} {r:>4} {m['base_rss'] / gb:>6.2f} {m['all_tables'] / gb:>7.2f} "
                  f"{m['table_bytes'] / gb:>6.2f} {m['opt_bytes'] / gb:>6.2f} "
                  f"{m['data_bytes'] / gb:>6.2f} {m['peak_rss'] / gb:>9.2f} "
                  f"{m['rss_after'] / gb:>9.2f} {m['exchanged'] / 2 ** 20:>8.1f} "
                  f"{m['rows_per_s']:>9.0f}")
    if "ddp" not in results:
        return
    for strategy in results:
        if strategy == "ddp":
            continue
        for k, label in (("table_bytes", "table held"), ("peak_rss", "peak RSS"),
                         ("rss_after", "RSS after training")):
            ratio = max(med[strategy, r][k] for r in range(len(results[strategy][0]))) / max(
                med["ddp", r][k] for r in range(args.procs))
            print(f"{strategy} / ddp, {label} (worst rank): {ratio:.2f}  "
                  f"(1/W = {1 / args.procs:.2f})")
        print(f"{strategy} / ddp, rows/s: "
              f"{med[strategy, 0]['rows_per_s'] / med['ddp', 0]['rows_per_s']:.2f}")


if __name__ == "__main__":
    main()
