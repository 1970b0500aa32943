"""The main job: ``python -m ctrkit`` trains DIN and the Embedding&MLP base model and compares them.

Without a data path it uses the built-in synthetic behaviour data (a planted signal that only
matching the candidate against the history reveals; the last 20% of rows are the test set).
With ``--data PATH`` (or ``$CTRKIT_ML100K``) it runs the MovieLens-100K protocol of
:func:`ctrkit.datasets.movielens_ctr` (label rating >= 4, history = earlier positively rated
movies, each user's last 10 ratings as test, validation from the training part).

Prints test AUC, GAUC (user-weighted AUC over users), logloss and training time per model, and
writes the loss curves of both models to ``--plot`` (default ``din_loss.png``). Each model is
scored with the weights of its epoch with the best validation AUC (``--keep best``, the
default, as the MovieLens benchmark does; Keras's ``EarlyStopping(restore_best_weights=True)``
with no early stop), or of its last epoch (``--keep last``).

Options: ``--data PATH``, ``--synthetic`` (ignore ``$CTRKIT_ML100K``), ``--rows N``,
``--epochs N``, ``--batch-size N``, ``--models din,base``, ``--seed N``, ``--threads N``,
``--keep best|last``, ``--plot PATH``.

Threads: the job calls ``torch.set_num_threads(--threads)``, 1 by default: these models are
small, and on a shared machine torch's default (one thread per core) can be much slower (see
``docs/performance.md``). Your own scripts run with torch's default unless they set it too.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Dict, List, Optional, Tuple

import numpy as np

from ctrkit.metrics import gauc


def synthetic_splits(rows: int, seed: int):
    """(splits, features) of the synthetic default: last 20% test, 10% before it validation."""
    from ctrkit.datasets import make_synthetic
    x, y, features = make_synthetic(n_rows=rows, seed=seed)
    n = len(y)
    a, b = int(n * 0.7), int(n * 0.8)
    part = lambda lo, hi: ({k: v[lo:hi] for k, v in x.items()}, y[lo:hi])  # noqa: E731
    return {"train": part(0, a), "val": part(a, b), "test": part(b, n)}, features


def train_and_evaluate(name: str, splits, features, *, epochs: int, batch_size: int,
                       seed: int, verbose: int = 0, keep: str = "best", lr: Optional[float] = None,
                       **hparams) -> Tuple[Dict[str, float], object]:
    """Build ``name``, fit on train (validating on val), score test. Returns (results, history).

    ``keep="best"`` scores the weights of the epoch with the best validation AUC,
    ``keep="last"`` those of the last epoch; ``results["epoch"]`` is the kept epoch (0-based).
    ``lr`` None is the optimizer's default rate."""
    import ctrkit
    from ctrkit.callbacks import EarlyStopping
    from ctrkit.errors import ConfigError
    if keep not in ("best", "last"):
        raise ConfigError(f"keep must be 'best' or 'last', got {keep!r}")
    model = ctrkit.build(name, features, seed=seed, **hparams)
    model.compile("adam", "binary_crossentropy", metrics=["auc"], lr=lr)  # docs/defaults.md
    xtr, ytr = splits["train"]
    # patience=epochs never stops training; it only restores the best epoch's weights at the end
    callbacks = ([EarlyStopping(monitor="val_auc", mode="max", patience=epochs,
                                restore_best_weights=True)] if keep == "best" else [])
    t0 = time.perf_counter()
    history = model.fit(xtr, ytr, batch_size=batch_size, epochs=epochs, verbose=verbose,
                        validation_data=splits["val"], callbacks=callbacks)
    secs = time.perf_counter() - t0
    epoch = callbacks[0].best_epoch if callbacks else len(history.epoch) - 1
    xte, yte = splits["test"]
    pred = model.predict(xte, batch_size=4096).ravel()
    from sklearn.metrics import log_loss, roc_auc_score
    res = {"auc": roc_auc_score(yte, pred), "gauc": gauc(yte, pred, xte["user"]),
           "logloss": log_loss(yte, np.clip(pred, 1e-7, 1 - 1e-7)), "seconds": secs,
           "epoch": epoch}
    return res, history


def plot_losses(histories: Dict[str, object], path: str) -> None:
    """One panel: training (solid) and validation (dashed) loss per model."""
    from ctrkit.plot import _pyplot, save_figure
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, h in histories.items():
        epochs = [e + 1 for e in h.epoch]
        line, = ax.plot(epochs, h.history["loss"], marker="o", label=f"{name} train")
        if "val_loss" in h.history:
            ax.plot(epochs, h.history["val_loss"], marker="o", linestyle="--",
                    color=line.get_color(), label=f"{name} validation")
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("logloss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)


def main(argv: List[str] = None) -> int:
    import torch

    p = argparse.ArgumentParser(prog="python -m ctrkit", description=__doc__.split("\n")[0])
    p.add_argument("--data", default=None, help="MovieLens-100K folder (default $CTRKIT_ML100K)")
    p.add_argument("--synthetic", action="store_true", help="use synthetic data even if "
                                                             "$CTRKIT_ML100K is set")
    p.add_argument("--rows", type=int, default=50000, help="synthetic rows")
    p.add_argument("--epochs", type=int, default=None, help="default 3 synthetic, 2 MovieLens")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--models", default="din,base")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1,
                   help="torch.set_num_threads for the job (default 1: these small models gain "
                        "little from more threads, and lose a lot when other jobs share the cores)")
    p.add_argument("--keep", choices=("best", "last"), default="best",
                   help="score each model with the weights of its epoch with the best "
                        "validation AUC (default) or of its last epoch")
    p.add_argument("--plot", default="din_loss.png", help="where to write the loss plot")
    args = p.parse_args(argv)
    if args.threads < 1:
        p.error(f"--threads must be >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)

    data = None if args.synthetic else (args.data or os.environ.get("CTRKIT_ML100K"))
    if data:
        from ctrkit.datasets import movielens_ctr
        splits, features = movielens_ctr(data, maxlen=20, embedding_dim=8)
        where, epochs = f"MovieLens-100K ({data})", args.epochs or 2
    else:
        splits, features = synthetic_splits(args.rows, args.seed)
        where, epochs = "synthetic behaviour data", args.epochs or 3
        from ctrkit.datasets import synthetic_click_probability
        from sklearn.metrics import roc_auc_score
        truth = synthetic_click_probability(n_rows=args.rows, seed=args.seed)
        best = roc_auc_score(splits["test"][1], truth[-len(splits["test"][1]):])
        where += f" (best reachable test AUC, from the true probabilities: {best:.4f})"
    sizes = ", ".join(f"{k} {len(v[1])}" for k, v in splits.items())
    print(f"{where}: {sizes} rows")
    histories = {}
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        res, histories[name] = train_and_evaluate(name, splits, features, epochs=epochs,
                                                  batch_size=args.batch_size, seed=args.seed,
                                                  keep=args.keep)
        kept = (f"; kept epoch {res['epoch'] + 1}, best val AUC "
                f"{histories[name].history['val_auc'][res['epoch']]:.4f}"
                if args.keep == "best" else "")
        print(f"{name:>6}: test AUC {res['auc']:.4f}  GAUC {res['gauc']:.4f}  "
              f"logloss {res['logloss']:.4f}  ({epochs} epochs in {res['seconds']:.1f}s{kept})")
    try:
        plot_losses(histories, args.plot)
        print(f"loss plot written to {args.plot}")
    except ImportError as e:
        print(f"(no plot: {e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
