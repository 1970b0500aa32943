"""DIN trained from Parquet files vs in memory: rows/s and peak RSS per data size (issue 14).

The performance issue's synthetic spec (benchmarks/bench_din.py: user 10,000, item 50,000,
category 500, history T=50 with lengths 1..50, E=8, DIN defaults, Adam, batch 1024, metrics
logloss and AUC, torch.set_num_threads(2)) is written to Parquet as ragged list columns (each
row's real history, no padding, no length column: the event-log layout) in files of at most
1,000,000 rows and row groups of 65,536 rows. Each size is generated chunk by chunk, so the
writer never holds more than a million rows.

Each measurement runs in a fresh subprocess (peak RSS is that run's own), alternating the
in-memory and the streaming run, with OMP_WAIT_POLICY=PASSIVE (on the shared 2-core machine
this was measured on, OpenMP's spinning threads otherwise made every run 5-10x slower, by
amounts that followed the other processes' load; --spinning-omp turns this off); medians over
--runs runs are printed with the ratios. Rows/s is wall time; rows per CPU-second (all threads
of the process, the reader thread included) is printed beside it:

- ``memory``: the same rows as numpy arrays, ``fit(x, y)``; only at sizes up to
  --memory-max-rows (default 10^6: the in-memory path needs the whole data at once);
- ``parquet``: ``fit(ParquetDataset(folder))`` with shuffling on (file and row-group order
  drawn per epoch, 65,536-row shuffle buffer), one epoch.

Peak RSS of a streamed fit grows with the rows only by the per-row prediction store that
exact epoch AUC needs (8 bytes per row here: a float32 logit and a float32 label) and by the
epoch-end exact AUC, which sorts all rows' predictions; the table prints the store's size, the
peak through the last training step ("steps") and the overall peak. A last check trains 20,000 rows both ways with shuffling
off and reports whether the weights are identical.

    python benchmarks/bench_streaming.py                        # 10^5 rows (the default)
    python benchmarks/bench_streaming.py --sizes 100000 1000000 10000000 --runs 1
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
if REPO_ROOT not in sys.path[:1]:
    sys.path.insert(0, REPO_ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_din import BATCH, CATES, ITEMS, T, USERS, features  # noqa: E402

CHUNK = 1_000_000       # rows per file
ROW_GROUP = 65_536


def make_chunk(rows: int, index: int, maxlen: int = T):
    """Rows of chunk ``index`` of the spec (the item -> category map is shared by all chunks)."""
    item_cate = np.random.default_rng(0).integers(1, CATES, ITEMS)
    item_cate[0] = 0
    rng = np.random.default_rng(1000 + index)
    lens = rng.integers(1, maxlen + 1, rows)
    valid = np.arange(maxlen)[None] < lens[:, None]
    hist_item = np.where(valid, rng.integers(1, ITEMS, (rows, maxlen)), 0)
    item = rng.integers(1, ITEMS, rows)
    x = {"user": rng.integers(0, USERS, rows), "item": item, "cate": item_cate[item],
         "hist_item": hist_item, "hist_cate": item_cate[hist_item], "seq_length": lens}
    overlap = (x["hist_cate"] == x["cate"][:, None]).sum(1) / lens
    y = (rng.random(rows) < 1 / (1 + np.exp(-(4 * overlap - 1)))).astype(np.float32)
    return {k: v.astype(np.int64) for k, v in x.items()}, y


def chunks(rows: int):
    for i, start in enumerate(range(0, rows, CHUNK)):
        yield make_chunk(min(CHUNK, rows - start), i)


def in_memory(rows: int):
    parts = list(chunks(rows))
    return ({k: np.concatenate([p[0][k] for p in parts]) for k in parts[0][0]},
            np.concatenate([p[1] for p in parts]))


def write_files(rows: int, data_dir: str) -> str:
    """The Parquet folder for ``rows`` (written once; reused while its marker says it is
    complete)."""
    from ctrkit.data import write_parquet
    folder = os.path.join(data_dir, f"rows-{rows}")
    marker = os.path.join(folder, "COMPLETE")
    if os.path.exists(marker):
        return folder
    os.makedirs(folder, exist_ok=True)
    t0 = time.perf_counter()
    for i, (x, y) in enumerate(chunks(rows)):
        lens = x["seq_length"]
        valid = np.arange(T)[None] < lens[:, None]
        offsets = np.r_[0, np.cumsum(lens)]
        cols = {"user": x["user"], "item": x["item"], "cate": x["cate"],
                "hist_item": (x["hist_item"][valid], offsets),
                "hist_cate": (x["hist_cate"][valid], offsets)}
        write_parquet(cols, y, os.path.join(folder, f"part-{i:04d}.parquet"),
                      row_group_size=ROW_GROUP)
    open(marker, "w").write(f"{rows}\n")
    size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
    print(f"wrote {rows} rows to {folder}: {size / 1e9:.2f} GB in "
          f"{time.perf_counter() - t0:.0f}s", flush=True)
    return folder


def cpu_s() -> float:
    """CPU seconds of this process (all threads): on a shared machine a steadier measure of
    the work than wall time."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def store_mb(metrics, rows: int) -> float:
    """Size of the per-row prediction store of a streamed pass (float32 logit and label):
    none when every metric has a bounded-memory accumulator (``approx_auc``)."""
    return 0.0 if all(m == "approx_auc" for m in metrics) else rows * 8 / 2 ** 20


def worker(mode: str, rows: int, data_dir: str, threads: int, shuffle: bool = True,
           metrics=("logloss", "auc")) -> dict:
    import torch
    torch.set_num_threads(threads)
    import ctrkit
    from ctrkit.data import ParquetDataset
    from ctrkit.callbacks import Callback

    class StepsPeak(Callback):
        """Peak RSS through the last training step, before the epoch-end exact metrics
        (which sort every row's prediction)."""
        peak = 0.0

        def on_train_batch_end(self, batch, logs=None):
            StepsPeak.peak = peak_rss_mb()
    model = ctrkit.build("din", features(ctrkit, T), seed=0)
    model.compile("adam", "binary_crossentropy", metrics=list(metrics))
    base = peak_rss_mb()
    if mode == "memory":
        x, y = in_memory(rows)
        c0 = cpu_s()
        t0 = time.perf_counter()
        h = model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=shuffle,
                      callbacks=[StepsPeak()])
    else:
        ds = ParquetDataset(os.path.join(data_dir, f"rows-{rows}"))
        c0 = cpu_s()
        t0 = time.perf_counter()
        h = model.fit(ds, batch_size=BATCH, epochs=1, verbose=0, shuffle=shuffle,
                      callbacks=[StepsPeak()])
    train_s = time.perf_counter() - t0
    cpu = cpu_s() - c0
    res = {"mode": mode, "rows": rows, "train_rows_s": rows / train_s,
           "rows_per_cpu_s": rows / cpu,
           "peak_rss_mb": peak_rss_mb(), "start_rss_mb": base, "steps_rss_mb": StepsPeak.peak,
           "store_mb": store_mb(metrics, rows),
           "auc": h.history[[m for m in metrics if m.endswith("auc")][0]][0],
           "loss": h.history["loss"][0]}
    return res


def epoch_end(mode: str, rows: int) -> dict:
    """Peak RSS of the epoch-end metrics alone over a per-row store of ``rows`` rows (float32
    logits of a calibrated model and their labels, as ``fit`` keeps them): ``exact`` is what
    ``fit`` runs (``Trainer.store_metrics``: logloss and the lean exact AUC), ``general`` the
    tie-aware GAUC sort with one group that the AUC used before, ``approx`` the histogram of
    ``approx_auc`` filled batch by batch (no store is needed then)."""
    import torch
    import ctrkit
    from ctrkit.metrics import AUCHistogram, gauc
    rng = np.random.default_rng(0)
    logits = torch.from_numpy(rng.normal(-1, 1.5, rows).astype(np.float32))
    y = torch.empty(rows)
    for a in range(0, rows, 1 << 20):  # in pieces: no generation temporaries in the peak
        z = logits[a:a + (1 << 20)].double()
        y[a:a + (1 << 20)] = (torch.from_numpy(rng.random(len(z))) < torch.sigmoid(z)).float()
    model = ctrkit.build("din", features(ctrkit, T), seed=0)
    model.compile("adam", "binary_crossentropy", metrics=["logloss", "auc"])
    start = rss_now_mb()
    before = peak_rss_mb()
    t0 = time.perf_counter()
    if mode == "exact":
        logs = model.trainer.store_metrics({"logits": logits, "y": y})
    elif mode == "general":
        p = torch.sigmoid(logits.double()).numpy()
        logs = {"auc": gauc(y.numpy(), p, np.zeros(rows, dtype=np.int64))}
    else:
        h = AUCHistogram()
        for a in range(0, rows, BATCH):
            h.update(y[a:a + BATCH].numpy(), torch.sigmoid(logits[a:a + BATCH].double()).numpy())
        auc, bound = h.result()
        logs = {"auc": auc, "bound": bound}
    return {"mode": mode, "rows": rows, "rss_before_mb": start, "peak_before_mb": before,
            "peak_mb": peak_rss_mb(), "seconds": time.perf_counter() - t0, **logs}


def rss_now_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def equality(data_dir: str, threads: int, rows: int = 20_000) -> bool:
    """Train ``rows`` rows in memory and from the files with shuffling off: same weights?"""
    import torch
    torch.set_num_threads(threads)
    import ctrkit
    from ctrkit.data import ParquetDataset
    folder = os.path.join(data_dir, f"rows-{rows}")
    states = []
    for src in ("memory", "parquet"):
        model = ctrkit.build("din", features(ctrkit, T), seed=0)
        model.compile("adam", "binary_crossentropy", metrics=["logloss", "auc"])
        if src == "memory":
            x, y = in_memory(rows)
            model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False)
        else:
            model.fit(ParquetDataset(folder), batch_size=BATCH, epochs=1, verbose=0,
                      shuffle=False)
        states.append(model.state_dict())
    return all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def run_worker(mode: str, rows: int, data_dir: str, threads: int, passive: bool = True,
               metrics=("logloss", "auc")) -> dict:
    """One measurement in a fresh process. The parent stays small: on Linux a child's peak
    RSS (ru_maxrss) starts from its parent's at fork, so the parent never holds data."""
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", mode, "--sizes", str(rows),
           "--data-dir", data_dir, "--threads", str(threads), "--metrics", *metrics]
    env = dict(os.environ)
    if passive:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    if mode in ("write", "equal"):
        print(out.stdout.strip(), flush=True)
        return {}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[100_000],
                   help="row counts (add 1000000 10000000 for the big sizes: minutes, GBs)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--memory-max-rows", type=int, default=1_000_000,
                   help="largest size also trained in memory")
    p.add_argument("--data-dir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"),
                                                      "ctrkit-bench-streaming"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--spinning-omp", action="store_true",
                   help="leave OpenMP's wait policy alone (default: OMP_WAIT_POLICY=PASSIVE "
                        "for every run; on a shared, oversubscribed machine spinning OpenMP "
                        "threads made runs 5-10x slower by amounts that follow the others' load)")
    p.add_argument("--worker", choices=["memory", "parquet", "write", "equal", "exact",
                                        "general", "approx"])
    p.add_argument("--epoch-end", type=int, metavar="ROWS",
                   help="only measure the epoch-end metrics over a store of ROWS rows: peak RSS "
                        "of fit's exact ones, of the general sort the AUC used before, and of "
                        "approx_auc (each in a fresh process), then exit")
    p.add_argument("--no-equality", action="store_true")
    p.add_argument("--metrics", nargs="+", default=["logloss", "auc"],
                   help="compile(metrics=...) of the timed runs; one of them must be an AUC "
                        "('auc' or 'approx_auc'). '--metrics approx_auc' keeps no per-row "
                        "store (bounded memory)")
    args = p.parse_args()
    if args.worker == "write":
        write_files(args.sizes[0], args.data_dir)
        return
    if args.worker == "equal":
        print(f"  trained from Parquet == in memory, shuffling off ({args.sizes[0]} rows): "
              f"identical weights: {equality(args.data_dir, args.threads, args.sizes[0])}")
        return
    if args.worker in ("exact", "general", "approx"):
        print(json.dumps(epoch_end(args.worker, args.sizes[0])))
        return
    if args.epoch_end:
        rows = args.epoch_end
        print(f"epoch-end metrics over {rows} rows (a float32 logit and label per row: "
              f"{rows * 8 / 2 ** 20:.0f} MB store)")
        for mode in ("exact", "general", "approx"):
            r = run_worker(mode, rows, args.data_dir, args.threads, not args.spinning_omp)
            extra = r["peak_mb"] - max(r["rss_before_mb"], r["peak_before_mb"])
            vals = "  ".join(f"{k} {r[k]!r}" for k in ("auc", "logloss", "bound") if k in r)
            print(f"  {mode:8s} peak RSS {r['peak_mb']:6.0f} MB, {extra:+6.0f} MB over the "
                  f"peak before the metrics  {vals}", flush=True)
        return
    if args.worker:
        print(json.dumps(worker(args.worker, args.sizes[0], args.data_dir, args.threads,
                                metrics=args.metrics)))
        return
    passive = not args.spinning_omp
    for rows in args.sizes:
        run_worker("write", rows, args.data_dir, args.threads, passive)
    results = {}
    for rows in args.sizes:
        modes = (["memory"] if rows <= args.memory_max_rows else []) + ["parquet"]
        for r in range(args.runs):
            for mode in modes:  # alternate the two paths run by run
                res = run_worker(mode, rows, args.data_dir, args.threads, passive, args.metrics)
                results.setdefault((rows, mode), []).append(res)
                print(f"rows {rows:>9d} run {r + 1} {mode:8s} {res['train_rows_s']:8.0f} rows/s  "
                      f"{res['rows_per_cpu_s']:8.0f} rows/CPU-s  peak RSS {res['peak_rss_mb']:7.0f} MB  auc {res['auc']:.4f}", flush=True)
    med = {k: {m: statistics.median(r[m] for r in v) for m in
               ("train_rows_s", "rows_per_cpu_s", "peak_rss_mb", "steps_rss_mb", "store_mb",
                "auc")} for k, v in results.items()}
    print(f"\nmedians of {args.runs} run(s), {os.cpu_count()} cores, torch threads "
          f"{args.threads}, batch {BATCH}, T={T}, one epoch, Parquet row groups {ROW_GROUP}, "
          f"OMP_WAIT_POLICY={'PASSIVE' if passive else 'default'}, metrics {args.metrics}")
    print(f"{'rows':>9s} {'memory rows/s':>13s} {'parquet rows/s':>14s} {'ratio':>6s} "
          f"{'memory rows/CPU-s':>17s} {'parquet rows/CPU-s':>18s} {'ratio':>6s} "
          f"{'memory RSS MB':>13s} {'parquet RSS MB':>14s} {'store MB':>8s} "
          f"{'parquet RSS, steps':>18s}")
    nan = float("nan")
    for rows in args.sizes:
        mem, par = med.get((rows, "memory")), med[(rows, "parquet")]
        m = mem or {k: nan for k in par}
        print(f"{rows:9d} {m['train_rows_s']:13.0f} {par['train_rows_s']:14.0f} "
              f"{par['train_rows_s'] / m['train_rows_s']:6.2f} {m['rows_per_cpu_s']:17.0f} "
              f"{par['rows_per_cpu_s']:18.0f} {par['rows_per_cpu_s'] / m['rows_per_cpu_s']:6.2f} "
              f"{m['peak_rss_mb']:13.0f} {par['peak_rss_mb']:14.0f} "
              f"{par['store_mb']:8.0f} {par['steps_rss_mb']:18.0f}")
    small, big = min(args.sizes), max(args.sizes)
    if big > small:
        a, b = med[(small, "parquet")], med[(big, "parquet")]
        print(f"  streaming peak RSS {big} vs {small} rows through the training steps (the "
              f"store included): {b['steps_rss_mb'] / a['steps_rss_mb']:.2f}x (target <= 1.3x); "
              f"overall, with the epoch-end exact AUC over all rows: "
              f"{b['peak_rss_mb'] / a['peak_rss_mb']:.2f}x")
    both = [r for r in args.sizes if (r, "memory") in med]
    if both:
        ratios = [med[(r, "parquet")]["train_rows_s"] / med[(r, "memory")]["train_rows_s"]
                  for r in both]
        cpu = [med[(r, "parquet")]["rows_per_cpu_s"] / med[(r, "memory")]["rows_per_cpu_s"]
               for r in both]
        print(f"  streaming / in-memory throughput (wall rows/s): "
              + ", ".join(f"{r}: {q:.2f}x" for r, q in zip(both, ratios)) + " (target >= 0.85x)"
              + "; per CPU-second: " + ", ".join(f"{r}: {q:.2f}x" for r, q in zip(both, cpu)))
    if not args.no_equality:
        run_worker("write", 20_000, args.data_dir, args.threads, passive)
        run_worker("equal", 20_000, args.data_dir, args.threads, passive)


if __name__ == "__main__":
    main()
