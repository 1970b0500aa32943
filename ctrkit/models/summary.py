"""``model.summary()``: every embedding table (with the features that look it up), every layer
(attention units included) and the parameter counts, read from the module tree.

torchinfo records only modules that run through ``__call__``; ctrkit's embedding lookups and its
attention path call weights directly for speed, so a forward-hook summary lists little more than
the MLP. This one walks the modules instead, so nothing is left out.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from torch import nn


@dataclass
class ModelSummary:
    """What :meth:`BaseModel.summary` reports; ``str(summary)`` is the printed table.

    Attributes:
        name: the model's registered name and class.
        rows: ``(layer path, type, configuration, parameters)`` per reported layer.
        total_params: parameters of the model (each shared tensor counted once).
        trainable_params: those with ``requires_grad``.
        buffer_values: values held in buffers (e.g. Dice's running statistics).
    """

    name: str
    rows: List[Tuple[str, str, str, int]] = field(default_factory=list)
    total_params: int = 0
    trainable_params: int = 0
    buffer_values: int = 0

    def __str__(self) -> str:
        head = ("Layer", "Type", "Configuration", "Params")
        body = [(p, t, c, f"{n:,}") for p, t, c, n in self.rows]
        widths = [max(len(r[i]) for r in [head] + body) for i in range(4)]
        line = lambda r: "  ".join([r[0].ljust(widths[0]), r[1].ljust(widths[1]),  # noqa: E731
                                    r[2].ljust(widths[2]), r[3].rjust(widths[3])]).rstrip()
        rule = "-" * len(line(head))
        mb = self.total_params * 4 / 2 ** 20
        return "\n".join(
            [f"Model: {self.name}", rule, line(head), rule] + [line(r) for r in body] + [
                rule,
                f"Total params: {self.total_params:,} (trainable {self.trainable_params:,}, "
                f"non-trainable {self.total_params - self.trainable_params:,}); "
                f"{mb:.2f} MB as float32",
                f"Buffers: {self.buffer_values:,} values (not trained, e.g. running statistics)"])


def _count(module: nn.Module, recurse: bool = True) -> int:
    return sum(p.numel() for p in module.parameters(recurse=recurse))


def _activation_name(module: nn.Module) -> str:
    acts = getattr(module, "activations", None)
    if isinstance(acts, nn.ModuleList) and len(acts):
        return type(acts[0]).__name__
    return ""


def _describe(module: nn.Module) -> str:
    if isinstance(module, nn.Embedding):
        return f"{module.num_embeddings} x {module.embedding_dim}"
    if isinstance(module, nn.Linear):
        return f"{module.in_features} -> {module.out_features}"
    linears = getattr(module, "linears", None)
    if isinstance(linears, nn.ModuleList) and len(linears):
        dims = [linears[0].in_features] + [m.out_features for m in linears]
        out = getattr(module, "out", None)
        if isinstance(out, nn.Linear):
            dims.append(out.out_features)
        act = _activation_name(module)
        return " -> ".join(map(str, dims)) + (f" ({act})" if act else "")
    dim = getattr(module, "dim", None)
    if isinstance(dim, int):
        return f"dim {dim}"
    task = getattr(module, "task", None)
    if isinstance(task, str):
        return f"bias, {'sigmoid' if task == 'binary' else 'identity'} output"
    return ""


def _is_layer(module: nn.Module) -> bool:
    """Reported as one row (not opened): torch layers and ctrkit's MLP-like blocks."""
    return (isinstance(module, (nn.Embedding, nn.Linear))
            or isinstance(getattr(module, "linears", None), nn.ModuleList)
            or not any(True for _ in module.children()))


def _walk(module: nn.Module, path: str, rows: List[Tuple[str, str, str, int]]) -> None:
    tables = getattr(module, "tables", None)
    table_of: Optional[Dict[str, str]] = getattr(module, "table_of", None)
    if isinstance(tables, nn.ModuleDict) and isinstance(table_of, dict):
        users: Dict[str, List[str]] = {}
        for feat, table in table_of.items():
            users.setdefault(table, []).append(feat)
        for name, emb in tables.items():
            feats = ", ".join(sorted(users.get(name, [])))
            rows.append((f"{path}.{name}" if path else name, "Embedding",
                         _describe(emb) + (f"  <- {feats}" if feats else ""), _count(emb)))
        for child_name, child in module.named_children():
            if child is not tables:
                _walk(child, f"{path}.{child_name}" if path else child_name, rows)
        return
    if path and _is_layer(module):
        rows.append((path, type(module).__name__, _describe(module), _count(module)))
        return
    own = _count(module, recurse=False)
    if own and path:
        rows.append((path, type(module).__name__, "(own parameters)", own))
    for child_name, child in module.named_children():
        _walk(child, f"{path}.{child_name}" if path else child_name, rows)


def summarize(model: nn.Module) -> ModelSummary:
    """Build the :class:`ModelSummary` of ``model`` (no forward pass, no data needed)."""
    name = getattr(model, "registered_name", None)
    cls = type(model).__name__
    out = ModelSummary(name=f'"{name}" ({cls})' if name else cls)
    _walk(model, "", out.rows)
    own = _count(model, recurse=False)
    if own:
        out.rows.insert(0, (cls, cls, "(own parameters)", own))
    params = list(model.parameters())
    out.total_params = sum(p.numel() for p in params)
    out.trainable_params = sum(p.numel() for p in params if p.requires_grad)
    out.buffer_values = sum(b.numel() for b in model.buffers())
    return out


def print_summary(model: nn.Module, print_fn: Optional[Callable[[str], Any]] = None,
                  verbose: int = 1) -> ModelSummary:
    """:func:`summarize` and print it with ``print_fn`` (default ``print``) unless ``verbose=0``."""
    summary = summarize(model)
    if verbose:
        (print_fn or print)(str(summary))
    return summary
