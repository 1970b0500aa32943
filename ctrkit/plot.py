"""Plots (matplotlib is an optional extra: ``pip install ctrkit[plot]``)."""
from __future__ import annotations

import os
from typing import Optional, Sequence


def _pyplot():
    try:
        import matplotlib
        if not os.environ.get("DISPLAY") and not os.environ.get("MPLBACKEND"):
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("Plotting needs matplotlib: pip install 'ctrkit[plot]'.") from e
    return plt


def save_figure(fig, path: str) -> None:
    """Write ``fig`` as a PNG atomically (temp file, then rename).

    Example:
        >>> import os, tempfile
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import matplotlib.pyplot as plt
        >>> fig, ax = plt.subplots()
        >>> path = os.path.join(tempfile.mkdtemp(), "fig.png")
        >>> save_figure(fig, path)
        >>> with open(path, "rb") as fh:
        ...     fh.read(4)[1:]
        b'PNG'
        >>> plt.close(fig)
    """
    from .persistence import atomic_write
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=100, bbox_inches="tight"))


def plot_history(history, keys: Sequence[str] = ("loss",), path: Optional[str] = None):
    """One panel per key with its ``val_`` twin; returns the Figure, saves a PNG at ``path``.

    Args:
        history: the :class:`~ctrkit.callbacks.History` that ``fit`` returned.
        keys: the logged keys to draw (``'loss'``, ``'auc'``, ...).
        path: also write a PNG there.

    Raises:
        KeyError: a key that was not logged (lists the logged keys).

    Example:
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import ctrkit
        >>> from ctrkit.datasets import make_synthetic
        >>> x, y, features = make_synthetic(n_rows=128, maxlen=4, embedding_dim=4)
        >>> model = ctrkit.build("base", features)
        >>> model.compile("adam", metrics=["auc"])
        >>> history = model.fit(x, y, epochs=2, verbose=0, validation_split=0.25)
        >>> fig = plot_history(history, keys=("loss", "auc"))
        >>> [ax.get_ylabel() for ax in fig.axes]           # each with its val_ curve
        ['loss', 'auc']
    """
    plt = _pyplot()
    if isinstance(keys, str):
        keys = [keys]
    logged = history.history
    missing = [k for k in keys if k not in logged]
    if missing:
        raise KeyError(f"History has no {missing}; logged keys are {sorted(logged)}.")
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.5), squeeze=False)
    epochs = [e + 1 for e in history.epoch]
    for ax, key in zip(axes[0], keys):
        ax.plot(epochs, logged[key], marker="o", label=key)
        if "val_" + key in logged:
            ax.plot(epochs, logged["val_" + key], marker="o", label="val_" + key)
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig


def _row_of(x, row: int):
    """Row ``row`` of ``x`` (dict of arrays, DataFrame or list of arrays), keeping 2-D shapes."""
    import numpy as np
    if hasattr(x, "iloc"):
        return x.iloc[row:row + 1]
    if isinstance(x, dict) or hasattr(x, "keys"):
        return {k: np.asarray(v)[row:row + 1] for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [np.asarray(v)[row:row + 1] for v in x]
    return x


def _weight_scale(shown):
    """``(uniform, (vmin, vmax), note)`` for the colour scale of one row's weights.

    Weights whose spread is below 0.1% of their magnitude carry no ranking worth colouring:
    the scale is widened to ±50% around their mean (the cells look equal) and ``note`` says why.
    """
    import numpy as np
    if not len(shown):
        return False, (None, None), ""
    lo, hi = float(np.min(shown)), float(np.max(shown))
    size = max(abs(lo), abs(hi))
    if hi - lo > 1e-3 * size and hi - lo > 1e-12:
        return False, (lo, hi), ""
    mid = (lo + hi) / 2
    half = max(0.5 * size, 1e-6)
    note = (f"all weights ≈ {mid:.3g} (spread {hi - lo:.1g}):\nthe attention does not tell "
            f"these behaviours apart (e.g. untrained)")
    return True, (mid - half, mid + half), note


def attention_heatmap(model_or_weights, x=None, row: int = 0, path: Optional[str] = None,
                      title: Optional[str] = None, annotate: bool = True):
    """Draw one row's history against its attention weights; returns the Figure.

    Args:
        model_or_weights: a model with ``explain`` (e.g. DIN), or weights (N, T) from
            ``model.explain(x)``.
        x: with a model, its inputs (only row ``row`` is used); with weights, the history ids
            as an (N, T) array or a dict ``{name: (N, T) ids}`` (optional: positions are
            numbered without it).
        row: which row to draw.
        path: write a PNG there as well.
        title: the figure title (default names the row).
        annotate: print each weight in its cell.

    What you see: the weight DIN gives each behaviour when it pools the history for this
    candidate: a softmax over the valid positions (DIN's default and
    ``att_weight_normalization=True``), the unit's raw scores with ``False`` (they need not sum
    to 1 and may be negative), or their sigmoid with ``"sigmoid"``. The colour scale
    spans the row's own weights, so any difference between behaviours shows. When the weights
    are all (nearly) equal, as in an untrained model started from DeepCTR's N(0, 1e-4)
    (``init="deepctr"``: every behaviour scores about the unit's output bias), the scale is widened around that value so the cells look
    equal, and the title says so with the spread, instead of colouring differences of 1e-5.

    Returns:
        A matplotlib Figure: one cell per valid history position (padding is left out),
        coloured by its weight, labelled with the position's ids.

    Raises:
        ConfigError: ``row`` outside the data, or a model without attention.

    Example:
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import numpy as np
        >>> weights = np.array([[0.5, 0.2, 0.9, 0.0]])            # model.explain(x)
        >>> fig = attention_heatmap(weights, {"item": np.array([[4, 5, 6, 0]])}, row=0)
        >>> [t.get_text().split() for t in fig.axes[0].get_xticklabels()]   # no padding
        [['t=0', 'item=4'], ['t=1', 'item=5'], ['t=2', 'item=6']]
    """
    import numpy as np

    from .errors import ConfigError
    plt = _pyplot()
    history = {}
    if hasattr(model_or_weights, "explain"):
        model = model_or_weights
        if x is None:
            raise ConfigError("attention_heatmap(model, x): pass the inputs x to explain.")
        n = len(model.input_columns(x))
        if not 0 <= row < n:
            raise ConfigError(f"row={row} is outside the {n} rows of x.")
        x_row = _row_of(x, row)
        weights = np.asarray(model.explain(x_row))[0]
        cols = model.input_columns(x_row)
        pairs = getattr(model, "pairs", [])
        for cand, seq in pairs:
            history[cand.name] = cols[seq.name].numpy()[0]
        valid = (model.sequence_mask(cols.tensors, pairs[0][1]).numpy()[0] if pairs
                 else np.ones(len(weights), dtype=bool))
    else:
        all_w = np.asarray(model_or_weights, dtype=float)
        if all_w.ndim != 2:
            raise ConfigError(f"attention weights must have shape (N, T), got {all_w.shape}.")
        if not 0 <= row < all_w.shape[0]:
            raise ConfigError(f"row={row} is outside the {all_w.shape[0]} rows of the weights.")
        weights = all_w[row]
        if x is not None:
            ids = x if isinstance(x, dict) else {"id": x}
            history = {k: np.asarray(v)[row] for k, v in ids.items()}
            valid = next(iter(history.values())) != 0
        else:
            valid = np.ones(len(weights), dtype=bool)
    pooling = getattr(getattr(model_or_weights, "attention", None), "pooling", None)
    pos = np.flatnonzero(valid)
    shown = weights[pos]
    labels = ["\n".join([f"t={t}"] + [f"{k}={int(v[t])}" for k, v in history.items()])
              for t in pos]
    uniform, limits, note = _weight_scale(shown)
    fig, ax = plt.subplots(figsize=(max(5.5 if note else 3.0, 0.9 * len(pos) + 1.5),
                                    2.8 if note else 2.2))
    im = ax.imshow(shown[None, :] if len(pos) else np.zeros((1, 0)), aspect="auto",
                   cmap="viridis", vmin=limits[0], vmax=limits[1])
    ax.set_yticks([])
    ax.set_xticks(range(len(pos)))
    ax.set_xticklabels(labels, fontsize=8)
    if annotate:
        for i, v in enumerate(shown):
            ax.text(i, 0, f"{v:.3g}" if uniform else f"{v:.4g}", ha="center", va="center",
                    color="w", fontsize=8)
    kind = {"none": " (raw score)", "sigmoid": " (sigmoid of the score)"}.get(
        pooling, " (softmax)" if pooling else "")
    fig.colorbar(im, ax=ax, label="attention weight" + kind)
    ax.set_title((title or f"attention over the history of row {row}")
                 + ("" if len(pos) else " (no history)") + (f"\n{note}" if note else ""),
                 fontsize=9 if note else None)
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig
