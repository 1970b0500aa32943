"""Serving artefacts: a model exported to ONNX or a ``torch.export`` program, dynamic batch axis.

Formats (``format=`` of :func:`export_model`; by default the file's suffix decides):

- ``'onnx'`` (``.onnx``): torch's current ONNX exporter, built on ``torch.export``; run it with
  onnxruntime (``pip install "ctrkit[onnx]"``: onnx, onnxscript, onnxruntime).
- ``'pt2'`` (``.pt2``): a ``torch.export`` program (``torch.export.save``); load it with
  ``torch.export.load(path).module()``; no Python model code is needed to run it.
- ``'torchscript'`` (legacy, only when named): ``torch.jit.trace``, which torch deprecates;
  kept for servers that can only load TorchScript (LibTorch in C++, older TorchServe). Its
  deprecation notices are silenced inside the call because asking for the format is the
  switch.

The artefact's signature (the same for every format)::

    forward(*inputs) -> probabilities float32 (B, 1)

``inputs`` are tensors in ``get_feature_names(model.features)`` order (DeepCTR's input order):
int64 (B,) for a SparseFeat, int64 (B, T) for a VarLenSparseFeat (T = maxlen, padding id 0),
int64 (B,) for a sequence's ``length_name`` column and float32 (B, D) for a DenseFeat. ONNX
inputs carry those names. Inputs are *encoded, padded ids*: the artefact carries no
vocabulary, no hashing and no padding policy. ``model.input_columns(x)`` turns what
``predict`` takes (raw values encoded with each embedding table's vocabulary, ``use_hash``
applied, unpadded histories padded by :mod:`ctrkit.data.padding`'s policy, length columns
derived) into exactly these tensors::

    cols = model.input_columns(raw_x)          # or input_columns(ids, encoded=True)
    served(*[cols[n] for n in get_feature_names(model.features)])

For ``task='regression'`` the output is the prediction itself.

The model runs in eval mode (Dice uses its running statistics, dropout is off), so one row's
output never depends on the rest of its batch. Layers whose fast path has data-dependent
shapes (DIN's packed attention, DIEN's packed GRUs) take their dense path while the graph is
captured: :func:`ctrkit.layers.tracing.is_tracing` is the one switch, so what is exported is
the function ``predict`` computes (checked for every registered model in the tests).

Example:
    >>> model.export("din.pt2")                                  # doctest: +SKIP
    >>> served = torch.export.load("din.pt2").module()           # doctest: +SKIP
    >>> served(*[x[n] for n in get_feature_names(features)])     # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import torch
from torch import nn

from .errors import ConfigError
from .features import DenseFeat, VarLenSparseFeat, get_feature_names
from .layers.tracing import tracing
from .models.din.attention import AttentionPooling
from .persistence import atomic_write

FORMATS = ("pt2", "onnx", "torchscript")
#: the file suffix that names each format when ``format`` is not given
SUFFIXES = {".pt2": "pt2", ".onnx": "onnx"}


def dense_attention_pooling(pool: nn.Module) -> Callable[..., Any]:
    """The dense (static-shape) forward of a DIN ``AttentionPooling``: its ``pool_dense``.

    Kept for code written against the round-2 export API; the layers now choose their dense
    path themselves while a graph is captured (:mod:`ctrkit.layers.tracing`).
    """
    return pool.pool_dense


#: layer class -> factory of its static-shape forward (see :func:`dense_attention_pooling`).
DENSE_EQUIVALENTS: Dict[type, Callable[[nn.Module], Callable[..., Any]]] = {
    AttentionPooling: dense_attention_pooling,
}


@contextlib.contextmanager
def dense_layers(model: Optional[nn.Module] = None) -> Iterator[None]:
    """Within the block every layer takes its dense, export path (``model`` is not needed).

    The same as :func:`ctrkit.layers.tracing.tracing`, under its round-2 name.
    """
    with tracing():
        yield


class ServingModule(nn.Module):
    """Wraps a model as ``forward(*inputs in get_feature_names order) -> (B, 1) probabilities``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.input_names: List[str] = get_feature_names(model.features)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        batch = dict(zip(self.input_names, inputs))
        out = self.model.head.output(self.model(batch))
        # (B, 1); a multi-task model: (B, T), one column per task in model.task_names order
        return out if out.dim() == 2 else out.unsqueeze(-1)


def example_inputs(model: Any, n: int = 3) -> Tuple[torch.Tensor, ...]:
    """A valid example batch of ``n`` rows with distinct ids and history lengths 0..maxlen.

    Varied lengths (including an empty and a full history) make sure tracing sees the general
    case rather than one that a constant could stand for.
    """
    batch: Dict[str, torch.Tensor] = {}
    for f in model.features:
        if isinstance(f, DenseFeat):
            batch[f.name] = torch.linspace(0.0, 1.0, n * f.dimension).reshape(n, f.dimension)
        elif isinstance(f, VarLenSparseFeat):
            lengths = torch.arange(n) % (f.maxlen + 1)
            ids = (torch.arange(n * f.maxlen).reshape(n, f.maxlen) % (f.vocabulary_size - 1)) + 1 \
                if f.vocabulary_size > 1 else torch.zeros(n, f.maxlen, dtype=torch.long)
            valid = torch.arange(f.maxlen).unsqueeze(0) < lengths.unsqueeze(1)
            batch[f.name] = torch.where(valid, ids, torch.zeros_like(ids))
            if f.length_name:
                batch[f.length_name] = lengths
        else:
            batch[f.name] = torch.arange(n) % f.vocabulary_size
    names = get_feature_names(model.features)
    return tuple(batch[k].to(model.device) for k in names)


def resolve_format(path: Any, format: Optional[str]) -> str:
    """The export format: ``format`` if given (it must agree with a ``.onnx``/``.pt2`` suffix),
    else the one the suffix names.

    Raises:
        ConfigError: an unknown format, a suffix that names none while ``format`` is None, or
            a format that contradicts the suffix.

    Example:
        >>> resolve_format("din.onnx", None), resolve_format("din.pt", "torchscript")
        ('onnx', 'torchscript')
    """
    suffix = Path(str(path)).suffix.lower()
    by_suffix = SUFFIXES.get(suffix)
    if format is None:
        if by_suffix is None:
            raise ConfigError(
                f"Cannot tell the export format from {str(path)!r}: name the file '.pt2' "
                f"(a torch.export program, torch.export.load) or '.onnx' (onnxruntime), or pass "
                f"format= one of {list(FORMATS)} ('torchscript' is the legacy "
                f"torch.jit.trace format).")
        return by_suffix
    fmt = str(format).lower()
    if fmt not in FORMATS:
        raise ConfigError(f"Unknown export format {format!r}; use one of {list(FORMATS)}.")
    if by_suffix is not None and by_suffix != fmt:
        raise ConfigError(f"format={format!r} but the file is named {str(path)!r}, the suffix of "
                          f"format {by_suffix!r}; rename the file or change format.")
    return fmt


def export_model(model: Any, path: Any, format: Optional[str] = None) -> Path:
    """Export ``model`` for serving to ``path`` (written atomically).

    Args:
        model: a ctrkit model.
        path: the output file.
        format: ``'onnx'``, ``'pt2'`` or the legacy ``'torchscript'``; None (default): the
            suffix decides (``.onnx``, ``.pt2``). See the module docstring.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ConfigError: an unknown or ambiguous format, or ``onnx``/``onnxscript`` not installed;
            nothing is written then.

    Example:
        >>> import os, tempfile, numpy as np, torch, ctrkit
        >>> from ctrkit import SparseFeat
        >>> model = ctrkit.build("base", [SparseFeat("user", 3)])
        >>> path = export_model(model, os.path.join(tempfile.mkdtemp(), "m.pt2"))  # model.export
        >>> served = torch.export.load(str(path)).module()
        >>> ids = torch.tensor([0, 2])
        >>> np.allclose(served(ids).numpy(), model.predict({"user": ids.numpy()}), atol=1e-6)
        True
    """
    fmt = resolve_format(path, format)
    if fmt == "onnx":
        _require_onnx()
    wrapper = ServingModule(model)
    example = example_inputs(model)
    was_training = model.training
    wrapper.eval()  # also the model: Dice on running statistics, no dropout
    try:
        with torch.no_grad(), tracing(), _frozen_parameters(wrapper):
            if fmt == "torchscript":
                return atomic_write(path, lambda fh: fh.write(_torchscript_bytes(wrapper, example)))
            program = _exported_program(wrapper, example)
            if fmt == "pt2":
                return atomic_write(path, lambda fh: torch.export.save(program, fh))
            return atomic_write(path, lambda fh: fh.write(_onnx_bytes(program, wrapper)))
    finally:
        model.train(was_training)


def _torchscript_bytes(wrapper: ServingModule, example: Tuple[torch.Tensor, ...]) -> bytes:
    with warnings.catch_warnings():
        # the legacy format was asked for by name: torch's notices that TorchScript is
        # deprecated (and the tracer's notes on Python values) are the documented trade-off
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.jit")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        traced = torch.jit.freeze(torch.jit.trace(wrapper, example, check_trace=False))
        buf = io.BytesIO()
        torch.jit.save(traced, buf)
        return buf.getvalue()


@contextlib.contextmanager
def _quiet_torch_export() -> Iterator[None]:
    """Silence what torch's exporters say about torch itself, nothing about the model.

    - nn.GRU (DIEN) re-assigns its ``_flat_weights`` list while it runs, which torch.export
      reports as "tensor attributes ... assigned during export"; the values are the module's
      own parameters, so the program is right (the tests compare it with ``predict``);
    - torch's ONNX exporter deep-copies pytree specs through a deprecated ``LeafSpec``
      constructor (a FutureWarning from inside torch);
    - its registry logs one line per torchvision op it skips when torchvision is absent.
    """
    log = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = log.level
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning,
                                message=r"The tensor attributes .*_flat_weights")
        warnings.filterwarnings("ignore", category=FutureWarning,
                                message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
        log.setLevel(logging.ERROR)
        try:
            yield
        finally:
            log.setLevel(level)


@contextlib.contextmanager
def _frozen_parameters(module: nn.Module) -> Iterator[None]:
    """Parameters do not require grad within the block (then their flags are restored).

    An exported program records each parameter's flag when it is captured and saved; frozen,
    the served module's output carries no autograd graph (an inference artefact).
    """
    params = list(module.parameters())
    flags = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)


def _exported_program(wrapper: ServingModule, example: Tuple[torch.Tensor, ...]) -> Any:
    """The ``torch.export`` program of ``wrapper`` with a dynamic batch axis."""
    dims = {"inputs": tuple({0: torch.export.Dim.DYNAMIC} for _ in example)}
    with _quiet_torch_export():
        return torch.export.export(wrapper, example, dynamic_shapes=dims, strict=False)


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401  (torch's exporter needs both)
        import onnxscript  # noqa: F401
    except ImportError as e:
        raise ConfigError("format='onnx' needs the onnx and onnxscript packages: "
                          "pip install 'ctrkit[onnx]' (onnx, onnxscript, and onnxruntime to "
                          "run the file).") from e


def _onnx_bytes(program: Any, wrapper: ServingModule) -> bytes:
    with _quiet_torch_export():
        onnx_program = torch.onnx.export(program, (), None, dynamo=True, verbose=False,
                                         input_names=wrapper.input_names,
                                         output_names=["probability"])
    return onnx_program.model_proto.SerializeToString()


__all__ = ["export_model", "resolve_format", "ServingModule", "example_inputs", "dense_layers",
           "dense_attention_pooling", "DENSE_EQUIVALENTS", "FORMATS", "SUFFIXES"]
