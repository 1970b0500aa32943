"""Task towers on a single-task model: ``ctrkit.build("din", features, task_names=("ctr", "cvr"))``.

Any single-task model computes its logit as a sum of parts, one of which (or several) is a
*logit layer*: an ``nn.Linear(D, 1)`` over a learned representation (the body output), named in
the class attribute :attr:`~ctrkit.models.base.BaseModel.logit_layers` (``("dnn_linear",)`` by
default, DeepCTR's name; xDeepFM adds ``"cin_linear"``). With task names, each logit layer
becomes one linear head per task over the same body output: the original layer is the first
task's head, and :class:`TowerHead` holds the other tasks' heads. The model's ``forward`` is
not changed: a forward hook on each logit layer hands its input and output to the head and
feeds zeros into the model's own sum, so the model's other logit parts (a wide part, FM) are
shared by every task, and the head returns (B, T) logits::

    logit_t = (the model's logit without its logit layers) + sum over logit layers of head_t(h)

A model built without ``task_names`` is untouched (this module is not even called).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Sequence

import torch
from torch import nn

from ..errors import ConfigError, TrainingError
from ..tasks import MultiTaskHead, Tasks

if TYPE_CHECKING:  # pragma: no cover
    from .base import BaseModel


class TowerHead(MultiTaskHead):
    """A :class:`~ctrkit.tasks.MultiTaskHead` that adds each task's head over the body.

    ``towers[layer]`` is an ``nn.Linear(D, T - 1)``: the heads of tasks 2..T over the input
    of that logit layer (task 1's head is the logit layer itself). Shapes: (B,) shared logit
    -> (B, T) logits.

    Args:
        tasks: the model's tasks.
        widths: logit-layer name -> its input width D.
        initializer: initialises the new heads as the model initialises its output layers.

    Example:
        >>> import ctrkit
        >>> from ctrkit import SparseFeat
        >>> m = ctrkit.build("base", [SparseFeat("u", 5, 4)], task_names=("ctr", "cvr"))
        >>> type(m.head).__name__, m(m.example_batch(3)).shape
        ('TowerHead', torch.Size([3, 2]))
    """

    def __init__(self, tasks: Tasks, widths: Dict[str, int], initializer: Any) -> None:
        super().__init__(tasks)
        self.towers = nn.ModuleDict()
        for name, width in widths.items():
            lin = nn.Linear(width, len(tasks) - 1, bias=False)
            initializer.output_(lin)
            self.towers[name.replace(".", "__")] = lin
        self._captured = None  # (B, T) per-task logit-layer outputs of the forward in progress

    def capture(self, name: str, h: torch.Tensor, out: torch.Tensor) -> None:
        """Record one call of logit layer ``name`` (input ``h``, output ``out`` (..., 1))."""
        z = torch.cat([out, self.towers[name.replace(".", "__")](h)], dim=-1)
        self._captured = z if self._captured is None else self._captured + z

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        captured, self._captured = self._captured, None
        if captured is None:
            raise TrainingError("The model's forward called its head without calling any of "
                                "its logit layers, so the task towers have no input; a model "
                                "built with task_names must call a layer named in its "
                                "logit_layers in every forward.")
        return super().forward(logits.unsqueeze(-1) + captured.reshape(logits.shape[0], -1))


class _Capture:
    """Forward hook of one logit layer: hands (input, output) to the head, returns zeros.

    A callable object rather than a closure, so that ``copy.deepcopy(model)`` points the
    copy's hooks at the copy's head."""

    def __init__(self, head: TowerHead, name: str) -> None:
        self.head, self.name = head, name

    def __call__(self, module: nn.Module, args: Any, out: torch.Tensor) -> torch.Tensor:
        self.head.capture(self.name, args[0], out)
        return torch.zeros_like(out)


def _clear_captured(model: nn.Module, args: Any) -> None:
    model.head._captured = None


def add_task_towers(model: "BaseModel", task_names: Sequence[str], task_types: Any) -> None:
    """Give a built single-task ``model`` one linear head per task over its body output.

    The new heads are drawn from a generator seeded with ``model.seed``, after the model's own
    parameters (which stay exactly as a build without tasks draws them). ``model.hparams``
    gains ``task_names`` and ``task_types``, so ``save``/``load`` rebuild the towers.

    Args:
        model: a freshly built single-task model.
        task_names: two or more distinct task names.
        task_types: ``'binary'``/``'regression'`` per task, or one for all.

    Raises:
        ConfigError: bad task names or types, or the model (with these hyperparameters) has no
            logit layer to put towers on (e.g. DeepFM with ``dnn_hidden_units=()``: its
            remaining parts, wide and FM, have no representation to share).

    Example:
        >>> import ctrkit
        >>> from ctrkit import SparseFeat
        >>> m = ctrkit.build("deepfm", [SparseFeat("u", 5, 4), SparseFeat("i", 5, 4)],
        ...                  task_names=("ctr", "cvr"), task_types="binary")
        >>> m.task_names, sorted(m.head.towers)
        (('ctr', 'cvr'), ['dnn_linear'])
    """
    tasks = Tasks(task_names, task_types)
    declared = tuple(getattr(type(model), "logit_layers", ()) or ())
    name = model.registered_name or type(model).__name__
    layers: Dict[str, nn.Linear] = {}
    for attr in declared:
        try:
            layer = model.get_submodule(attr)
        except AttributeError:
            continue  # absent with these hyperparameters (e.g. no deep part)
        if layer is None:
            continue
        if not isinstance(layer, nn.Linear) or layer.out_features != 1:
            raise ConfigError(f"Model '{name}' names '{attr}' in logit_layers, but it is "
                              f"{type(layer).__name__}, not an nn.Linear(D, 1); logit_layers "
                              f"must name the linear layers whose (B, 1) outputs are added "
                              f"into the logit.")
        layers[attr] = layer
    if not layers:
        raise ConfigError(
            f"Model '{name}' built with these hyperparameters has no logit layer "
            f"(logit_layers={list(declared)}) to put one head per task on, so it cannot be "
            f"built with task_names={tasks.names!r}. Give it a deep part (e.g. "
            f"dnn_hidden_units), use a multi-task model (ctrkit.list_models(multitask=True)), "
            f"or, for a plug-in, name its final nn.Linear(D, 1) in the class attribute "
            f"logit_layers.")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(model.seed) if model.seed is not None else torch.seed())
        head = TowerHead(tasks, {a: lin.in_features for a, lin in layers.items()},
                         model.initializer)
    head.to(model.device)
    model.task = tasks
    model.task_names, model.task_types = tasks.names, tasks.types
    model.head = head
    for attr, layer in layers.items():
        layer.register_forward_hook(_Capture(head, attr))
    model.register_forward_pre_hook(_clear_captured)
    model.hparams.pop("task", None)  # the types are task_types now
    model.hparams["task_names"] = list(tasks.names)
    model.hparams["task_types"] = list(tasks.types)


__all__ = ["TowerHead", "add_task_towers"]
