"""Save / load / export figures for DIN on the synthetic data: ``python benchmarks/persistence.py``.

Prints the file size, the median save and load time over 5 runs, and the largest difference
between model.predict and the exported artefacts (TorchScript; ONNX when onnxruntime is
installed) on 20,000 rows.
"""
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import ctrkit  # noqa: E402
from ctrkit import get_feature_names  # noqa: E402
from ctrkit.datasets import make_synthetic  # noqa: E402


def timed(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=20000, help="synthetic rows (default 20,000)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per figure (median)")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    repeats = args.repeats
    x, y, features = make_synthetic(n_rows=args.rows, seed=0)
    model = ctrkit.build("din", features)
    model.compile("adam")
    model.fit(x, y, batch_size=1024, epochs=1, verbose=0)
    t_pred, pred = timed(lambda: model.predict(x, batch_size=len(y)), repeats)
    print(f"model.predict: {len(pred):,} rows in {t_pred * 1e3:.0f} ms (one batch)")
    names = get_feature_names(features)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "din.ctrkit"
        t_save, _ = timed(lambda: model.save(path), repeats)
        t_load, loaded = timed(lambda: ctrkit.load(path), repeats)
        same = np.array_equal(loaded.predict(x, batch_size=4096), pred)
        print(f"params {sum(p.numel() for p in model.parameters()):,}  file "
              f"{path.stat().st_size / 1e6:.2f} MB  save {t_save * 1e3:.0f} ms  "
              f"load {t_load * 1e3:.0f} ms  reloaded predictions identical: {same}")
        served = torch.export.load(str(model.export(Path(d) / "din.pt2"))).module()
        inputs = [torch.as_tensor(x[n]) for n in names]
        t_ts, out = timed(lambda: served(*inputs).detach(), repeats)
        print(f"pt2: max |export - predict| = {np.abs(out.numpy() - pred).max():.2e}  "
              f"({len(pred):,} rows in {t_ts * 1e3:.0f} ms)")
        try:
            import onnxruntime as ort
        except ImportError:
            print("onnx: onnxruntime not installed, skipped")
            return 0
        sess = ort.InferenceSession(str(model.export(Path(d) / "din.onnx")),
                                    providers=["CPUExecutionProvider"])
        feeds = {n: t.numpy() for n, t in zip(names, inputs)}
        t_ox, (out,) = timed(lambda: sess.run(None, feeds), repeats)
        print(f"onnx: max |export - predict| = {np.abs(out - pred).max():.2e}  "
              f"({len(pred):,} rows in {t_ox * 1e3:.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
