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
    """Write ``fig`` as a PNG atomically (temp file, then rename)."""
    path = os.fspath(path)
    tmp = f"{path}.tmp-{os.getpid()}.png"
    try:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def plot_history(history, keys: Sequence[str] = ("loss",), path: Optional[str] = None):
    """One panel per key with its ``val_`` twin; returns the Figure, saves a PNG at ``path``."""
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
