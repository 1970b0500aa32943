"""Dtype policies, the Keras 3 way: ``"float32"`` (the default), ``"mixed_bfloat16"`` and
``"mixed_float16"``.

A mixed policy runs the model's forward under torch's autocast: matrix multiplications (the
MLPs, DIN's attention unit, DCN's cross layers) compute in the 16-bit type, while the weights
stay float32 (the optimizer updates float32 master weights), embedding lookups return float32
rows, and logits, losses and metrics are float32. ``mixed_bfloat16`` works on every CPU and
GPU; it is fast where the hardware has bf16 units (CPUs with AVX-512-BF16 or AMX-BF16, NVIDIA
Ampere and later) and slower than float32 elsewhere. ``mixed_float16`` is for CUDA only and
scales the loss (``torch.amp.GradScaler``) so small gradients survive float16.

Set it for one model with ``model.compile(..., dtype_policy="mixed_bfloat16")``, or for every
model built afterwards with :func:`set_global_policy` (Keras's
``keras.mixed_precision.set_global_policy``). ``float32`` adds no autocast at all: results are
bit-identical to a model that never heard of policies. ``export`` always writes a float32
artefact; a policy is a training and prediction setting and is not saved with the model.

    >>> import ctrkit
    >>> from ctrkit import mixed_precision
    >>> mixed_precision.global_policy().name
    'float32'
    >>> mixed_precision.DTypePolicy("mixed_bfloat16").compute_dtype
    'bfloat16'
"""
from __future__ import annotations

import contextlib
from typing import Any, ContextManager, Optional, Union

import torch

from .errors import ConfigError

#: policy name -> compute dtype (None: no autocast)
POLICIES = {"float32": None, "mixed_bfloat16": torch.bfloat16, "mixed_float16": torch.float16}


class DTypePolicy:
    """A named dtype policy: the compute dtype of the forward and the (always float32)
    variable dtype, as Keras's ``DTypePolicy``.

    Args:
        name: ``"float32"``, ``"mixed_bfloat16"`` or ``"mixed_float16"``.

    Raises:
        ConfigError: any other name (lists the valid ones).

    Example:
        >>> p = DTypePolicy("mixed_bfloat16")
        >>> p.name, p.compute_dtype, p.variable_dtype
        ('mixed_bfloat16', 'bfloat16', 'float32')
    """

    def __init__(self, name: str = "float32") -> None:
        if name not in POLICIES:
            raise ConfigError(f"dtype_policy={name!r} is not one of {sorted(POLICIES)}: "
                              f"'float32' (default), 'mixed_bfloat16' (CPU or GPU) or "
                              f"'mixed_float16' (CUDA).")
        self.name = name
        self.torch_compute_dtype: Optional[torch.dtype] = POLICIES[name]

    @property
    def compute_dtype(self) -> str:
        return "float32" if self.torch_compute_dtype is None else \
            str(self.torch_compute_dtype).replace("torch.", "")

    @property
    def variable_dtype(self) -> str:
        return "float32"

    @property
    def is_mixed(self) -> bool:
        return self.torch_compute_dtype is not None

    def check_device(self, device: torch.device) -> None:
        """Refuse a policy the device cannot run.

        Raises:
            ConfigError: ``mixed_float16`` on a CPU (use ``mixed_bfloat16`` there).
        """
        if self.name == "mixed_float16" and device.type != "cuda":
            raise ConfigError(f"dtype_policy='mixed_float16' needs a CUDA device (float16 "
                              f"loss scaling), but the model is on {device}; use "
                              f"'mixed_bfloat16' on a CPU.")

    def autocast(self, device: torch.device) -> ContextManager[Any]:
        """The context the forward runs in: torch's autocast for a mixed policy, else none."""
        if self.torch_compute_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=self.torch_compute_dtype)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DTypePolicy) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f'<DTypePolicy "{self.name}">'


Policy = DTypePolicy  # Keras 2's name

_GLOBAL = DTypePolicy("float32")


def dtype_policy(policy: Union[None, str, DTypePolicy]) -> DTypePolicy:
    """``policy`` as a :class:`DTypePolicy` (None: the global policy).

    Example:
        >>> dtype_policy("mixed_bfloat16").is_mixed
        True
    """
    if policy is None:
        return _GLOBAL
    if isinstance(policy, DTypePolicy):
        return policy
    if isinstance(policy, str):
        return DTypePolicy(policy)
    raise ConfigError(f"dtype_policy must be a name such as 'mixed_bfloat16' or a "
                      f"DTypePolicy, got {policy!r}.")


def set_global_policy(policy: Union[None, str, DTypePolicy]) -> None:
    """The policy of every model compiled from now on without its own ``dtype_policy``
    (None resets to ``"float32"``).

    Example:
        >>> set_global_policy("mixed_bfloat16"); global_policy().name
        'mixed_bfloat16'
        >>> set_global_policy(None); global_policy().name
        'float32'
    """
    global _GLOBAL
    _GLOBAL = DTypePolicy("float32") if policy is None else dtype_policy(policy)


def global_policy() -> DTypePolicy:
    """The global policy (``"float32"`` unless :func:`set_global_policy` changed it)."""
    return _GLOBAL


set_dtype_policy = set_global_policy  # keras.config's name


def model_policy(model: Any) -> DTypePolicy:
    """The policy ``model`` runs under: its compiled one, else the global policy."""
    return getattr(getattr(model, "trainer", None), "dtype_policy", None) or _GLOBAL


__all__ = ["DTypePolicy", "Policy", "POLICIES", "dtype_policy", "global_policy",
           "model_policy", "set_dtype_policy", "set_global_policy"]
