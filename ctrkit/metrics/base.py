"""Metrics by name, each with a direction, computed once over a whole epoch's predictions.

A metric is a :class:`Metric`: ``fn(y_true, y_pred, sample_weight=None, groups=None) -> float``
on numpy arrays of probabilities (binary task) or values (regression), plus ``direction``
(``'max'`` or ``'min'``) that ``EarlyStopping(mode='auto')`` and friends read.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, List, Optional, Sequence, Union

import numpy as np

from ..errors import ConfigError, InputError
from ..registry import METRICS

EPS = 1e-15  # probabilities are float64 (computed from logits), as sklearn's log_loss clips


@dataclass(frozen=True)
class Metric:
    """A named metric.

    Args:
        name: the key under which it is logged (``val_`` is prefixed for validation).
        fn: ``fn(y_true, y_pred, sample_weight=None, groups=None) -> float``.
        direction: ``'max'`` if higher is better, ``'min'`` otherwise.
        needs_groups: the metric needs a group id per row (e.g. GAUC's user).
        group: the feature that supplies the groups, when ``needs_groups``.
        accumulator: optional factory of a bounded-memory accumulator (``update(y, p, w)``,
            ``state()``/``load_state(t)`` to sum it over processes, ``result() -> (value,
            error bound)``) that computes the same metric batch by batch, e.g.
            :class:`~ctrkit.metrics.approx_auc.AUCHistogram`. When every metric has one, a
            streamed pass keeps no per-row predictions.

    Example:
        >>> import numpy as np
        >>> hit_rate = Metric("hit_rate", lambda y, p, **kw: float(np.mean((p >= 0.5) == y)))
        >>> hit_rate(np.array([1, 0, 1]), np.array([0.9, 0.2, 0.3]))
        0.666...
    """

    name: str
    fn: Callable[..., float]
    direction: str = "max"
    needs_groups: bool = False
    group: Optional[str] = None
    accumulator: Optional[Callable[[], Any]] = None

    def __call__(self, y_true: np.ndarray, y_pred: np.ndarray, sample_weight=None,
                 groups=None) -> float:
        return float(self.fn(y_true, y_pred, sample_weight=sample_weight, groups=groups))


def _auc(y, p, sample_weight=None, groups=None):
    # Exact and tie-aware (sklearn's roc_auc_score, weighted or not), in little memory: the
    # epoch-end AUC over a streamed pass of 10^7 rows must not need several times the
    # per-row store (see ctrkit/metrics/exact_auc.py).
    from .exact_auc import exact_auc
    p = np.asarray(p).reshape(-1)
    finite = np.isfinite(p)
    if not finite.all():
        r = int(np.argmin(finite))
        raise InputError(f"AUC: y_pred has the non-finite score {p[r]} at row {r}.")
    del finite
    value, P, N = exact_auc(y, p, sample_weight)
    if not (P > 0 and N > 0):
        warnings.warn("AUC is undefined when all labels are one class; logging NaN.",
                      RuntimeWarning, stacklevel=3)
        return float("nan")
    return value


class MeanAccumulator:
    """The bounded-memory form of a (weighted) mean of per-row values, e.g. logloss: sums
    updated batch by batch (the same value as the epoch-end metric up to the order of the
    float64 sums), so a streamed pass whose metrics all have accumulators keeps no per-row
    predictions (see :class:`Metric`).

    Example:
        >>> import numpy as np
        >>> acc = MeanAccumulator(lambda y, p: (y - p) ** 2)
        >>> acc.update(np.array([1.0, 0.0]), np.array([0.5, 0.5]))
        >>> acc.update(np.array([1.0]), np.array([1.0]), np.array([2.0]))
        >>> acc.result()                                   # (0.25 + 0.25 + 2 * 0) / 4
        (0.125, 0.0)
    """

    def __init__(self, rows: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
        self.rows = rows
        self.total, self.weight = 0.0, 0.0

    def update(self, y: np.ndarray, p: np.ndarray, w: Optional[np.ndarray] = None) -> None:
        part = self.rows(np.asarray(y, dtype=np.float64).reshape(-1),
                         np.asarray(p, dtype=np.float64).reshape(-1))
        if w is None:
            self.total += float(part.sum())
            self.weight += float(len(part))
        else:
            w = np.asarray(w, dtype=np.float64).reshape(-1)
            self.total += float(np.dot(part, w))
            self.weight += float(w.sum())

    def state(self):
        import torch
        return torch.tensor([self.total, self.weight], dtype=torch.float64)

    def load_state(self, state) -> None:
        self.total, self.weight = float(state[0]), float(state[1])

    def result(self):
        """``(mean, 0.0)``: exact up to float64 rounding; NaN when the weights sum to 0."""
        return (self.total / self.weight if self.weight else float("nan")), 0.0


#: rows per piece of the chunked averages below (no full-size float64 temporaries)
_CHUNK = 1 << 20


def _average(loss, y, p, sample_weight=None) -> float:
    """``np.average(loss(y, p), weights=sample_weight)`` computed :data:`_CHUNK` rows at a
    time by a :class:`MeanAccumulator`: the same value (up to the order of the float64 sums)
    without the full-size temporaries (an epoch-end metric over 10^7 rows would otherwise
    need several 80 MB arrays)."""
    y = np.asarray(y).reshape(-1)
    p = np.asarray(p).reshape(-1)
    w = None if sample_weight is None else np.asarray(sample_weight).reshape(-1)
    acc = MeanAccumulator(loss)
    for a in range(0, len(p), _CHUNK):
        acc.update(y[a:a + _CHUNK], p[a:a + _CHUNK], None if w is None else w[a:a + _CHUNK])
    if w is not None and acc.weight == 0:
        raise ZeroDivisionError("Weights sum to zero, can't be normalized")
    return acc.result()[0]


def _logloss_rows(y, p):
    p = np.clip(p, EPS, 1 - EPS)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def _squared_rows(y, p):
    return (y - p) ** 2


def _absolute_rows(y, p):
    return np.abs(y - p)


def _hit_rows(y, p):
    return ((p >= 0.5) == (y >= 0.5)).astype(np.float64)


def _mean_of(rows, y, p, sample_weight=None, groups=None):
    return _average(rows, y, p, sample_weight)


# module-level partials: a whole fitted model (its metrics included) still pickles
_logloss, _logloss_acc = partial(_mean_of, _logloss_rows), partial(MeanAccumulator, _logloss_rows)
_mse, _mse_acc = partial(_mean_of, _squared_rows), partial(MeanAccumulator, _squared_rows)
_mae, _mae_acc = partial(_mean_of, _absolute_rows), partial(MeanAccumulator, _absolute_rows)
_accuracy, _accuracy_acc = partial(_mean_of, _hit_rows), partial(MeanAccumulator, _hit_rows)


def _hinge(y, p, sample_weight=None, groups=None):
    # Keras's hinge: labels in {0, 1} are read as {-1, +1}; mean of max(1 - y * p, 0)
    y = np.asarray(y, dtype=np.float64)
    if np.isin(y, (0.0, 1.0)).all():
        y = 2.0 * y - 1.0
    return float(np.average(np.maximum(1.0 - y * p, 0.0), weights=sample_weight))


for _m in (Metric("auc", _auc, "max"),
           Metric("binary_crossentropy", _logloss, "min", accumulator=_logloss_acc),
           Metric("logloss", _logloss, "min", accumulator=_logloss_acc),
           Metric("mse", _mse, "min", accumulator=_mse_acc),
           Metric("mae", _mae, "min", accumulator=_mae_acc),
           Metric("accuracy", _accuracy, "max", accumulator=_accuracy_acc),
           Metric("hinge", _hinge, "min")):
    METRICS.register(_m.name, _m)

#: the other names DeepCTR-Torch and Keras users write for the same metrics. A metric is
#: logged under the name it was asked for (``metrics=['acc']`` logs ``acc`` and ``val_acc``).
METRIC_ALIASES = {"acc": "accuracy", "binary_accuracy": "accuracy",
                  "mean_squared_error": "mse", "mean_absolute_error": "mae",
                  "log_loss": "logloss"}
for _alias, _target in METRIC_ALIASES.items():
    METRICS.register(_alias, METRICS.get(_target))


def get_metric(spec: Union[str, Metric, Callable[..., float]]) -> Metric:
    """Resolve a metric name, :class:`Metric` or plain callable ``fn(y_true, y_pred)``.

    Args:
        spec: a registered name (``'auc'``, ``'logloss'``, ``'gauc'``, ...), a Metric, or a
            callable (logged under its ``__name__``, direction ``'max'``).

    Returns:
        The :class:`Metric`.

    Raises:
        UnknownNameError: unknown name (never silently dropped).

    Example:
        >>> m = get_metric("logloss")
        >>> m.name, m.direction
        ('logloss', 'min')
    """
    if isinstance(spec, Metric):
        return spec
    if isinstance(spec, str):
        m = METRICS.get(spec)
        if isinstance(m, Metric):
            return m if m.name == spec else Metric(spec, m.fn, m.direction, m.needs_groups, m.group,
                                                   m.accumulator)
        if callable(m):  # a factory such as a GAUC class: build it with defaults
            built = m()
            if not isinstance(built, Metric):
                raise ConfigError(f"Metric factory '{spec}' returned {built!r}, not a Metric.")
            return built
    if callable(spec):
        name = getattr(spec, "__name__", type(spec).__name__)

        def _call(y, p, sample_weight=None, groups=None, _f=spec):
            return _f(y, p)
        return Metric(name, _call, "max")
    raise ConfigError(f"A metric must be a name, a ctrkit Metric or a callable, got {spec!r}.")


def get_metrics(specs: Optional[Sequence[Any]]) -> List[Metric]:
    """:func:`get_metric` for each of ``specs`` (a list, one spec, or None for none).

    Raises:
        UnknownNameError: an unknown name.
        ConfigError: a metric listed twice.

    Example:
        >>> [m.name for m in get_metrics(["auc", "logloss"])]
        ['auc', 'logloss']
    """
    if specs is None:
        return []
    if isinstance(specs, (str, Metric)) or callable(specs):
        specs = [specs]
    out = [get_metric(s) for s in specs]
    names = [m.name for m in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"metrics lists {dup} more than once; list each metric once.")
    return out


def metric_direction(key: str) -> Optional[str]:
    """Direction of a logged key (``val_auc`` -> ``'max'``, ``loss`` -> ``'min'``), or None.

    Example:
        >>> metric_direction("val_auc"), metric_direction("loss"), metric_direction("lr")
        ('max', 'min', None)
    """
    base = key[4:] if key.startswith("val_") else key
    if base in ("loss", "reg_loss"):
        return "min"
    if base in METRICS:
        m = METRICS.get(base)
        if isinstance(m, Metric):
            return m.direction
        return getattr(m, "direction", None)
    return None


__all__ = ["Metric", "MeanAccumulator", "get_metric", "get_metrics", "metric_direction"]
