"""Small helpers shared by the trainer and callback tests (not a test module)."""
from __future__ import annotations

from typing import Dict, Iterable, List

import numpy as np
import torch

import ctrkit
from ctrkit.callbacks import Callback
from ctrkit.metrics.base import Metric


def rows(x: Dict[str, np.ndarray], y: np.ndarray, stop: int, start: int = 0):
    """Rows ``start:stop`` of a dict-of-arrays data set."""
    return {k: v[start:stop] for k, v in x.items()}, y[start:stop]


def small_din(features, **kw) -> ctrkit.BaseModel:
    """A DIN small enough to train in milliseconds, with weights large enough to learn."""
    kw.setdefault("dnn_hidden_units", (8,))
    kw.setdefault("att_hidden_size", (8,))
    kw.setdefault("seed", 0)
    kw.setdefault("init_std", 0.05)
    return ctrkit.build("din", features, **kw)


def scripted_metric(name: str, values: Iterable[float], direction: str = "min") -> Metric:
    """A metric that ignores the data and returns ``values`` one per call (one call/epoch)."""
    it = iter(list(values))
    return Metric(name, lambda y, p, sample_weight=None, groups=None: next(it), direction)


def snapshot(model) -> Dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_state(a: Dict[str, torch.Tensor], b: Dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class WeightsPerEpoch(Callback):
    """Records the model's weights at every epoch end."""

    def __init__(self) -> None:
        super().__init__()
        self.states: List[Dict[str, torch.Tensor]] = []

    def on_train_begin(self, logs=None) -> None:
        self.states = []

    def on_epoch_end(self, epoch, logs=None) -> None:
        self.states.append(snapshot(self.model))
