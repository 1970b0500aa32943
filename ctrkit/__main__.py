"""The main job: ``python -m ctrkit`` trains DIN on the built-in synthetic data and evaluates it.

Options: ``--rows N``, ``--epochs N``, ``--plot PATH`` (loss curve PNG), ``--seed N``.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def main(argv=None) -> int:
    import torch

    import ctrkit
    from ctrkit.datasets import make_synthetic

    p = argparse.ArgumentParser(prog="python -m ctrkit", description=__doc__)
    p.add_argument("--rows", type=int, default=40000)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", default="din_loss.png", help="where to write the loss plot")
    args = p.parse_args(argv)
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))

    x, y, features = make_synthetic(n_rows=args.rows, seed=args.seed)
    n_test = len(y) // 5
    train = {k: v[:-n_test] for k, v in x.items()}
    test = {k: v[-n_test:] for k, v in x.items()}
    print(f"synthetic data: {len(y) - n_test} train rows, {n_test} test rows")
    model = ctrkit.build("din", features, seed=args.seed)
    model.compile("adam", "binary_crossentropy", metrics=["auc", "logloss"])
    t0 = time.perf_counter()
    history = model.fit(train, y[:-n_test], batch_size=args.batch_size, epochs=args.epochs,
                        verbose=2, validation_split=0.1)
    secs = time.perf_counter() - t0
    result = model.evaluate(test, y[-n_test:], batch_size=4096)
    print(f"din: test auc {result['auc']:.4f}, logloss {result['logloss']:.4f}, "
          f"trained in {secs:.1f}s")
    try:
        history.plot(keys=("loss", "auc"), path=args.plot)
        print(f"loss plot written to {args.plot}")
    except ImportError as e:
        print(f"(no plot: {e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
