"""Serving artefacts: a model exported to TorchScript or ONNX, with a dynamic batch axis.

The artefact's signature (the same for both formats)::

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
output never depends on the rest of its batch. Layers whose forward has data-dependent shapes
are exported through a dense-masked equivalent (:data:`DENSE_EQUIVALENTS`): DIN's attention
pooling gathers the valid positions with ``nonzero`` and sums them with ``index_add``, which
ONNX cannot express faithfully (its scatter drops repeated row indices); in eval mode scoring
every position and zeroing the padded ones is the same function with static shapes. The
artefact is checked on other batch sizes and history lengths than the traced example.

Example:
    >>> model.export("din.pt")                              # doctest: +SKIP
    >>> served = torch.jit.load("din.pt")                   # doctest: +SKIP
    >>> served(*[x[n] for n in get_feature_names(features)])  # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Tuple

import torch
from torch import nn

from .errors import ConfigError
from .features import DenseFeat, VarLenSparseFeat, get_feature_names
from .models.din.attention import AttentionPooling, masked_softmax
from .persistence import atomic_write

FORMATS = ("torchscript", "onnx")


def dense_attention_pooling(pool: nn.Module) -> Callable[..., Any]:
    """A forward for a DIN ``AttentionPooling`` that scores all T positions and masks after.

    Same function as the layer's own forward in eval mode (per-position activations), with
    shapes that depend on the batch size only. Shapes: ``q (B, E), keys (B, T, E), mask (B, T)
    -> (B, E)``.
    """
    def forward(q: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor,
                return_weights: bool = False):
        b, t, e = keys.shape
        rows = torch.arange(b, device=keys.device).unsqueeze(1).expand(b, t).reshape(-1)
        scores = pool.unit.score_rows(q, keys.reshape(b * t, e), rows).reshape(b, t)
        if pool.weight_normalization:
            weights = masked_softmax(scores, mask)
        else:
            weights = scores * mask.to(scores.dtype)
        pooled = (weights.unsqueeze(-1) * keys).sum(1)
        return (pooled, weights) if return_weights else pooled
    return forward


#: layer class -> factory of an export-friendly forward for one instance of it.
DENSE_EQUIVALENTS: Dict[type, Callable[[nn.Module], Callable[..., Any]]] = {
    AttentionPooling: dense_attention_pooling,
}


@contextlib.contextmanager
def dense_layers(model: nn.Module) -> Iterator[None]:
    """Within the block, layers listed in :data:`DENSE_EQUIVALENTS` use their dense forward."""
    swapped = [m for m in model.modules() if type(m) in DENSE_EQUIVALENTS]
    try:
        for m in swapped:
            m.forward = DENSE_EQUIVALENTS[type(m)](m)
        yield
    finally:
        for m in swapped:
            m.__dict__.pop("forward", None)


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


def export_model(model: Any, path: Any, format: str = "torchscript") -> Path:
    """Export ``model`` for serving to ``path`` (written atomically).

    Args:
        model: a ctrkit model.
        path: the output file (``.pt`` for TorchScript, ``.onnx`` for ONNX by convention).
        format: ``'torchscript'`` (load with ``torch.jit.load``) or ``'onnx'`` (needs the
            ``onnx`` package: ``pip install ctrkit[onnx]``; run with onnxruntime).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ConfigError: an unknown format, or ``onnx`` not installed.

    Example:
        >>> import os, tempfile, numpy as np, torch, ctrkit
        >>> from ctrkit import SparseFeat
        >>> model = ctrkit.build("base", [SparseFeat("user", 3)])
        >>> path = export_model(model, os.path.join(tempfile.mkdtemp(), "m.pt"))  # model.export
        >>> import warnings
        >>> with warnings.catch_warnings():   # torch deprecates TorchScript in favour of torch.export
        ...     warnings.simplefilter("ignore", DeprecationWarning)
        ...     served = torch.jit.load(str(path))
        >>> ids = torch.tensor([0, 2])
        >>> np.allclose(served(ids).numpy(), model.predict({"user": ids.numpy()}), atol=1e-6)
        True
    """
    fmt = str(format).lower()
    if fmt not in FORMATS:
        raise ConfigError(f"Unknown export format {format!r}; use one of {list(FORMATS)}.")
    wrapper = ServingModule(model)
    example = example_inputs(model)
    was_training = model.training
    wrapper.eval()  # also the model: Dice on running statistics, no dropout
    try:
        with torch.no_grad(), warnings.catch_warnings(), dense_layers(model):
            warnings.filterwarnings("ignore", message=".*deprecated.*")
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            if fmt == "torchscript":
                traced = torch.jit.freeze(torch.jit.trace(wrapper, example, check_trace=False))
                return atomic_write(path, lambda fh: torch.jit.save(traced, fh))
            return atomic_write(path, lambda fh: fh.write(_onnx_bytes(wrapper, example)))
    finally:
        model.train(was_training)


def _onnx_bytes(wrapper: ServingModule, example: Tuple[torch.Tensor, ...]) -> bytes:
    try:
        import onnx  # noqa: F401  (torch's exporter needs it)
    except ImportError as e:
        raise ConfigError("format='onnx' needs the onnx package: pip install 'ctrkit[onnx]' "
                          "(onnx, and onnxruntime to run the file).") from e
    names = wrapper.input_names
    buf = io.BytesIO()
    warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.onnx.*")
    # The TorchScript-based exporter takes dynamic_axes directly; the torch.export-based one
    # (the default since torch 2.9) needs the extra onnxscript package.
    torch.onnx.export(wrapper, example, buf, input_names=names, output_names=["probability"],
                      dynamic_axes={**{n: {0: "batch"} for n in names},
                                    "probability": {0: "batch"}},
                      dynamo=False)
    return buf.getvalue()


__all__ = ["export_model", "ServingModule", "example_inputs", "dense_layers",
           "dense_attention_pooling", "DENSE_EQUIVALENTS", "FORMATS"]
