"""Input validation cost by input form: ``python benchmarks/bench_inputs.py [--rows N]``.

Times ``model.input_columns(x)`` (what fit/evaluate/predict run once per call) on the same
synthetic DIN rows given four ways, alternating the forms in every repeat, and prints the
median time of each and its ratio to the first:

1. padded int64 blocks with the length column (the fast path);
2. ragged Python lists of ids (one unpadded list per row; the length is derived);
3. raw values (strings) in padded blocks, encoded by the model's vocabularies;
4. raw values in ragged Python lists, encoded and padded.
"""
import argparse
import statistics
import time

import numpy as np
import torch

import ctrkit
from ctrkit.data import CategoricalEncoder
from ctrkit.datasets import make_synthetic


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=100_000, help="synthetic rows (default 100,000)")
    p.add_argument("--maxlen", type=int, default=50, help="history maxlen (default 50)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per form (median)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    x, _, features = make_synthetic(n_rows=args.rows, maxlen=args.maxlen, seed=0)
    # two more rows per table, for the encoders' reserved ids (0 padding, 1 out of vocabulary)
    def wider(f):
        return ctrkit.SparseFeat(f.name, f.vocabulary_size + 2, f.embedding_dim)

    features = [ctrkit.VarLenSparseFeat(wider(f.sparsefeat), f.maxlen,
                                        length_name=f.length_name)
                if isinstance(f, ctrkit.VarLenSparseFeat) else
                wider(f) if isinstance(f, ctrkit.SparseFeat) else f for f in features]
    seqs = [f for f in features if isinstance(f, ctrkit.VarLenSparseFeat)]
    model = ctrkit.build("din", features)
    lengths = x[seqs[0].length_name]
    ragged = {k: v for k, v in x.items() if k != seqs[0].length_name}
    for f in seqs:
        ragged[f.name] = [row[:n].tolist() for row, n in zip(x[f.name], lengths)]
    # raw values: every id as a string "v<id>", encoders fitted on them (per table)
    encoders = {}
    raw, raw_ragged = dict(x), dict(ragged)
    for f in features:
        if isinstance(f, ctrkit.SparseFeat) and f.name in x:
            as_str = np.char.add("v", x[f.name].astype(str))
            encoders[f.name] = CategoricalEncoder(f.name).fit(as_str)
            raw[f.name] = raw_ragged[f.name] = as_str
    for f in seqs:
        vals = np.char.add("v", x[f.name].astype(str))
        raw[f.name] = vals
        raw_ragged[f.name] = [row[:n].tolist() for row, n in zip(vals, lengths)]
    forms = [("padded ids + length", x, False), ("ragged id lists", ragged, False),
             ("padded raw values", raw, True), ("ragged raw lists", raw_ragged, True)]
    times = {name: [] for name, _, _ in forms}
    reference = model.input_columns(x)
    for _ in range(args.repeats):
        for name, data, with_vocab in forms:  # alternate the forms within each repeat
            model.encoders = encoders if with_vocab else {}
            t0 = time.perf_counter()
            cols = model.input_columns(data)
            times[name].append(time.perf_counter() - t0)
            for f in seqs:  # every form gives the same validated columns
                assert torch.equal(cols[f.name] > 0, reference[f.name] > 0)
    model.encoders = {}
    base = statistics.median(times[forms[0][0]])
    print(f"{args.rows} rows, maxlen {args.maxlen}, {len(seqs)} sequences; median of "
          f"{args.repeats} runs, one thread (a shared machine: compare ratios)")
    for name, _, _ in forms:
        t = statistics.median(times[name])
        print(f"  {name:22s} {t:8.3f} s   {t / base:6.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
