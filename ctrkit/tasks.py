"""Several outputs (tasks) in one model: their names and types, labels and output head.

A multi-task model's ``forward`` returns logits of shape (B, T), one column per task in
``model.task_names`` order; ``model.task`` is then a :class:`Tasks` (names and types) instead
of the single-task string. Labels come as a dict keyed by task name, an (n, T) array in task
order, or a list of T arrays; a NaN label means "no label for this task in this row": the row
adds nothing to that task's loss or metrics (:func:`prepare_targets`).
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from .errors import ConfigError, InputError, InputTypeError

TASK_TYPES = ("binary", "regression")


class Tasks:
    """The tasks of a multi-task model: names and types (``'binary'``/``'regression'``).

    Args:
        names: two or more distinct task names, e.g. ``("ctr", "cvr")``.
        types: one type per task (DeepCTR-Torch's ``task_types``), or one string for all.

    Raises:
        ConfigError: fewer than two tasks, a repeated or non-string name, an unknown type, or
            ``types`` of another length than ``names``.

    Example:
        >>> t = Tasks(("ctr", "cvr"), "binary")
        >>> t.names, t.types
        (('ctr', 'cvr'), ('binary', 'binary'))
    """

    def __init__(self, names: Sequence[str], types: Any = "binary") -> None:
        if isinstance(names, str) or not isinstance(names, (list, tuple)):
            raise ConfigError(f"task_names must be a list or tuple of task names, e.g. "
                              f"('ctr', 'cvr'), got {names!r}.")
        names = tuple(names)
        if len(names) < 2:
            raise ConfigError(f"task_names {names!r} names {len(names)} task(s); a multi-task "
                              f"model needs at least 2 (leave task_names out for one output).")
        if not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
            raise ConfigError(f"task_names must be distinct non-empty strings, got {names!r}.")
        if isinstance(types, str):
            types = (types,) * len(names)
        types = tuple(types)
        if len(types) != len(names):
            raise ConfigError(f"task_types {types!r} has {len(types)} entries for "
                              f"{len(names)} task_names {names!r}; give one type per task.")
        bad = [t for t in types if t not in TASK_TYPES]
        if bad:
            raise ConfigError(f"task_types must each be one of {list(TASK_TYPES)}, got "
                              f"{bad[0]!r}.")
        self.names: Tuple[str, ...] = names
        self.types: Tuple[str, ...] = types

    def __len__(self) -> int:
        return len(self.names)

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, Tasks) and (self.names, self.types) == (other.names, other.types)

    def __hash__(self) -> int:
        return hash((self.names, self.types))

    def __repr__(self) -> str:
        return f"Tasks({self.names!r}, {self.types!r})"


def is_multitask(model: Any) -> bool:
    """True when ``model`` has several outputs (its ``task`` is a :class:`Tasks`)."""
    return isinstance(getattr(model, "task", None), Tasks)


def per_task(value: Any, tasks: Tasks, what: str, nested: bool = False) -> List[Any]:
    """One entry per task from ``value``: one value for all tasks, a dict keyed by task
    name, or a list/tuple in task order.

    With ``nested`` (metrics, whose one value is itself a list), a list is per task only
    when it holds exactly T lists/tuples/None; otherwise it is the one value for all tasks.

    Raises:
        ConfigError: a dict naming an unknown task or missing one, or a per-task list of
            another length than the tasks.

    Example:
        >>> t = Tasks(("ctr", "cvr"))
        >>> per_task({"ctr": 1.0, "cvr": 0.5}, t, "loss_weights")
        [1.0, 0.5]
        >>> per_task(["auc"], t, "metrics", nested=True)
        [['auc'], ['auc']]
    """
    names = tasks.names
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - set(names))
        missing = [n for n in names if n not in value]
        if unknown or missing:
            raise ConfigError(f"{what} is a dict keyed by task name; it must name exactly the "
                              f"tasks {list(names)}, got unknown {unknown} and missing "
                              f"{missing}.")
        return [value[n] for n in names]
    if isinstance(value, (list, tuple)):
        if nested:
            if len(value) == len(names) and all(
                    v is None or isinstance(v, (list, tuple)) for v in value):
                return list(value)
            return [value] * len(names)
        if len(value) != len(names):
            raise ConfigError(f"{what} is a list of {len(value)} entries but the model has "
                              f"{len(names)} tasks {list(names)}; give one per task in that "
                              f"order, a dict keyed by task name, or one value for all.")
        return list(value)
    return [value] * len(names)


def _as_array(value: Any, name: str) -> np.ndarray:
    """Labels as numpy: a tensor, a pandas object (``to_numpy``) or anything array-like."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if hasattr(value, "to_numpy"):
        value = value.to_numpy()
    return np.asarray(value)


def prepare_targets(y: Any, n: int, tasks: Tasks, *, name: str = "y") -> torch.Tensor:
    """Labels of a multi-task model as a float32 (n, T) tensor in task order (NaN: no label).

    Args:
        y: a dict of arrays keyed by task name, an (n, T) array in task order, or a list of
            T arrays of n labels.
        n: rows of ``x``.
        tasks: the model's tasks.
        name: the argument's name in error messages.

    Raises:
        InputError: a missing or unknown task, a wrong shape or row count, an infinite label,
            a binary task's label outside {0, 1}, or a task with no label at all.

    Example:
        >>> import numpy as np
        >>> t = Tasks(("ctr", "cvr"))
        >>> prepare_targets({"cvr": [np.nan, 1], "ctr": [0, 1]}, 2, t).tolist()
        [[0.0, nan], [1.0, 1.0]]
    """
    if y is None:
        raise InputError(f"{name} is None; pass labels for the tasks {list(tasks.names)}.")
    if hasattr(y, "columns") and set(tasks.names) <= {str(c) for c in y.columns}:
        cols = [y[t] for t in tasks.names]  # a DataFrame with the task columns, by name
    elif isinstance(y, Mapping):
        try:
            cols = per_task(y, tasks, name)
        except ConfigError as e:
            raise InputError(str(e)) from e
    elif isinstance(y, (list, tuple)) and len(y) == len(tasks) and all(
            isinstance(c, (np.ndarray, torch.Tensor)) or hasattr(c, "to_numpy") for c in y):
        cols = list(y)  # a list of T label arrays (a nested Python list is read as rows)
    else:
        arr = _as_array(y, name)
        if arr.ndim != 2 or arr.shape[1] != len(tasks):
            raise InputError(f"{name} has shape {arr.shape}; a model with tasks "
                             f"{list(tasks.names)} takes an ({n}, {len(tasks)}) array in "
                             f"task order, a dict of arrays keyed by task name, or a list "
                             f"of {len(tasks)} arrays.")
        cols = [arr[:, i] for i in range(arr.shape[1])]
    out = np.empty((n, len(tasks)), dtype=np.float32)
    for i, (task, kind, col) in enumerate(zip(tasks.names, tasks.types, cols)):
        arr = _as_array(col, f"{name}['{task}']")
        if arr.dtype.kind not in "fiub":
            raise InputTypeError(f"{name}['{task}'] must be numeric, got dtype {arr.dtype}.")
        arr = arr.astype(np.float32).reshape(-1) if arr.ndim == 2 and arr.shape[1:] == (1,) \
            else arr.astype(np.float32)
        if arr.ndim != 1 or arr.shape[0] != n:
            raise InputError(f"{name}['{task}'] has shape {arr.shape}; x has {n} rows, so "
                             f"pass {n} labels for task '{task}'.")
        if np.isinf(arr).any():
            r = int(np.argmax(np.isinf(arr)))
            raise InputError(f"{name}['{task}'] has an infinite label at row {r}; use NaN for "
                             f"'no label for this task in this row'.")
        labelled = ~np.isnan(arr)
        if kind == "binary":
            bad = labelled & (arr != 0) & (arr != 1)
            if bad.any():
                r = int(np.argmax(bad))
                raise InputError(f"{name}['{task}'] has label {arr[r]} at row {r}, but task "
                                 f"'{task}' is binary: labels must be 0, 1 or NaN (no label).")
        out[:, i] = arr
    return torch.from_numpy(out)


class MultiTaskHead(nn.Module):
    """One learned bias per task on (B, T) logits; :meth:`output` applies each task's output
    transform (sigmoid for ``binary``, identity for ``regression``).

    Args:
        tasks: the model's tasks.
        use_bias: learn the biases (initialised to 0).

    Example:
        >>> import torch
        >>> head = MultiTaskHead(Tasks(("ctr", "rating"), ("binary", "regression")))
        >>> head.output(head(torch.tensor([[0.0, 2.0]]))).tolist()
        [[0.5, 2.0]]
    """

    def __init__(self, tasks: Tasks, use_bias: bool = True) -> None:
        super().__init__()
        self.task = tasks
        self.bias = nn.Parameter(torch.zeros(len(tasks))) if use_bias else None
        self.register_buffer("binary", torch.tensor([t == "binary" for t in tasks.types]),
                             persistent=False)
        # a Python flag, not the buffer: an exported graph cannot branch on a tensor's value
        self.all_binary = all(t == "binary" for t in tasks.types)

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return logits + self.bias if self.bias is not None else logits

    def output(self, logits: torch.Tensor) -> torch.Tensor:
        if self.all_binary:
            return torch.sigmoid(logits)
        return torch.where(self.binary.to(logits.device), torch.sigmoid(logits), logits)

    def output_of(self, logits: torch.Tensor, t: int) -> torch.Tensor:
        """Task ``t``'s output transform of its (n,) logits."""
        return torch.sigmoid(logits) if self.task.types[t] == "binary" else logits


def as_task_dict(pred: np.ndarray, tasks: Tasks) -> Dict[str, np.ndarray]:
    """``{task: (n,) predictions}`` from an (n, T) array in task order."""
    return {name: pred[:, i] for i, name in enumerate(tasks.names)}


__all__ = ["Tasks", "MultiTaskHead", "is_multitask", "per_task", "prepare_targets",
           "as_task_dict", "TASK_TYPES"]
