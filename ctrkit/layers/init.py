"""How parameters start: one place that every model and layer asks.

An :class:`Initializer` initialises parameters by their *role* in the network, so a layer
says what a weight is for and the scheme decides how it starts:

============  =======================================================  ===================
role          what it is                                               ``'ctrkit'`` scheme
============  =======================================================  ===================
embedding     rows of an embedding table (one vector per id)           N(0, 0.05)
linear        per-id scalar weights and dense weights of a wide part   zeros
hidden        a dense layer followed by a nonlinearity (MLP layers)    He-uniform, bias 0
interaction   the same inside an interaction block (CIN, transformer)  He-uniform, bias 0
output        a dense layer with no nonlinearity after it (a logit,    Glorot-uniform, bias 0
              a score, a projection)
weight        any other weight matrix (a plug-in's own parameters)     Glorot-uniform
recurrent     a GRU's input and hidden weights (DIEN's extractor and   Glorot-uniform and
              evolution layers), one block per gate                    orthogonal per gate,
                                                                       bias 0 (Keras's GRU)
============  =======================================================  ===================

Two schemes are registered (``ctrkit.build(name, features, init=...)``):

- ``'ctrkit'`` (default): the table above. Under a mean-reduced loss every parameter's first
  Adam step is a real step (gradients well above Adam's eps); see ``docs/defaults.md`` for
  the measurements behind each choice.
- ``'deepctr'``: DeepCTR-Torch 0.3's scheme, for ported runs that want its numbers: embeddings,
  wide weights and hidden weights N(0, init_std) with init_std = 1e-4 unless given; biases,
  output, interaction and recurrent layers keep torch's default initialisation
  (DeepCTR-Torch's ``dnn_linear``, attention output layer, CIN convolutions and GRUs are left
  as torch made them).

``init_std`` (DeepCTR's argument, documented there as "the initialize std of embedding
vector") sets the std of the embeddings in either scheme; in ``'deepctr'`` it also sets the
wide and hidden weights' std, as DeepCTR-Torch's models pass it on to their DNN.

A model plug-in gets this for free: layers built inside a model's ``__init__`` (MLP,
EmbeddingTables, LinearLogit, DIN's attention) use the model's scheme. For its own parameters
a plug-in calls ``self.initializer.output_(linear)``, ``.hidden_(linear)``,
``.interaction_(layer)``, ``.recurrent_(gru)``, ``.weight_(tensor)`` or ``.embedding_(tensor)``.

Example:
    >>> from torch import nn
    >>> init = create_initializer("ctrkit")
    >>> lin = nn.Linear(8, 4); init.hidden_(lin); float(lin.bias.detach().abs().sum())
    0.0
"""
from __future__ import annotations

import contextlib
import contextvars
import math
from typing import Iterator, Optional, Union

import torch
from torch import nn

from ..errors import ConfigError
from ..registry import Registry

#: initialisation schemes by name (``'ctrkit'``, ``'deepctr'``).
INITIALIZERS = Registry("initializer")

#: std of the embedding rows in the ``'ctrkit'`` scheme (see docs/defaults.md).
DEFAULT_EMBEDDING_STD = 0.05
#: std of everything in DeepCTR-Torch's scheme (its ``init_std`` default).
DEEPCTR_STD = 1e-4


class Initializer:
    """Base class: initialise a parameter by its role (methods work in place, no autograd).

    Args:
        init_std: std of the normal initialisation of embedding rows; None: the scheme's
            default.

    Raises:
        ConfigError: a negative or non-finite ``init_std``.
    """

    #: the scheme's registered name.
    name = "base"
    #: embedding std used when ``init_std`` is None.
    default_std = DEFAULT_EMBEDDING_STD

    def __init__(self, init_std: Optional[float] = None) -> None:
        if init_std is not None:
            if isinstance(init_std, bool) or not isinstance(init_std, (int, float)) or not (
                    math.isfinite(float(init_std)) and float(init_std) >= 0):
                raise ConfigError(f"init_std must be a finite number >= 0 (the std of the "
                                  f"embeddings' normal initialisation) or None for the "
                                  f"'{self.name}' scheme's default, got {init_std!r}.")
        self.init_std = self.default_std if init_std is None else float(init_std)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(init_std={self.init_std!r})"

    @torch.no_grad()
    def embedding_(self, weight: torch.Tensor) -> None:
        """Rows of an embedding table (V, E): N(0, init_std)."""
        nn.init.normal_(weight, mean=0.0, std=self.init_std)

    @torch.no_grad()
    def linear_(self, weight: torch.Tensor) -> None:  # pragma: no cover - abstract
        """Weights of a linear ("wide") logit: per-id scalars (V, 1) and dense weights."""
        raise NotImplementedError

    @torch.no_grad()
    def hidden_(self, layer: nn.Linear) -> None:  # pragma: no cover - abstract
        """A dense layer followed by a nonlinearity."""
        raise NotImplementedError

    @torch.no_grad()
    def interaction_(self, layer: nn.Module) -> None:  # pragma: no cover - abstract
        """A dense or 1x1-convolution layer (``weight``, ``bias``) followed by a nonlinearity
        inside a feature-interaction block (xDeepFM's CIN, a transformer's FFN)."""
        raise NotImplementedError

    @torch.no_grad()
    def output_(self, layer: nn.Module) -> None:  # pragma: no cover - abstract
        """A dense layer with no nonlinearity after it: a logit, a score, a projection."""
        raise NotImplementedError

    @torch.no_grad()
    def weight_(self, weight: torch.Tensor) -> None:
        """Any other weight of 2 or more dimensions (Glorot-uniform)."""
        nn.init.xavier_uniform_(weight)

    @torch.no_grad()
    def recurrent_(self, layer: nn.Module, gates: int = 3) -> None:
        """A recurrent layer whose own parameters are input-to-hidden weights (names starting
        ``weight_i``: torch's ``weight_ih_l0``, :class:`AttentionalGRU`'s ``weight_i``),
        hidden-to-hidden weights (``weight_h``) and biases (``bias``), each stacking
        ``gates`` blocks along dim 0 (a GRU: 3). This base version checks the names and leaves
        the layer's own initialisation (torch's GRU: U(−1/√H, 1/√H) everywhere).

        Raises:
            ConfigError: a parameter of none of these kinds (so none is left unnoticed), or
                a first dimension that ``gates`` does not divide.
        """
        self._recurrent_parts(layer, gates)

    @staticmethod
    def _recurrent_parts(layer: nn.Module, gates: int) -> dict:
        parts: dict = {"input": [], "hidden": [], "bias": []}
        for name, p in layer.named_parameters(recurse=False):
            kind = ("input" if name.startswith("weight_i") else
                    "hidden" if name.startswith("weight_h") else
                    "bias" if name.startswith("bias") else None)
            if kind is None:
                raise ConfigError(f"recurrent_: parameter {name!r} of {type(layer).__name__} is "
                                  f"not an input weight ('weight_i...'), a hidden weight "
                                  f"('weight_h...') or a bias ('bias...'); initialise it "
                                  f"with another role.")
            if p.shape[0] % gates:
                raise ConfigError(f"recurrent_: parameter {name!r} of {type(layer).__name__} "
                                  f"has {p.shape[0]} rows, not a multiple of gates={gates}.")
            parts[kind].append(p)
        return parts


@INITIALIZERS.register("ctrkit")
class CtrkitInit(Initializer):
    """The default: embeddings N(0, 0.05), wide weights 0, hidden layers He-uniform, outputs
    Glorot-uniform, biases 0 (the reasons and measurements are in docs/defaults.md)."""

    name = "ctrkit"

    @torch.no_grad()
    def linear_(self, weight: torch.Tensor) -> None:
        nn.init.zeros_(weight)

    @torch.no_grad()
    def hidden_(self, layer: nn.Module) -> None:
        nn.init.kaiming_uniform_(layer.weight, nonlinearity="relu")
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)

    interaction_ = hidden_

    @torch.no_grad()
    def output_(self, layer: nn.Module) -> None:
        nn.init.xavier_uniform_(layer.weight)
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)

    @torch.no_grad()
    def recurrent_(self, layer: nn.Module, gates: int = 3) -> None:
        """Keras's GRU initialisation, per gate: each gate's input weights Glorot-uniform,
        its hidden weights orthogonal, biases 0. torch's U(−1/√H, 1/√H) biases (0.25 at H=16)
        dwarf the inputs' 0.05-scale embeddings; see docs/defaults.md."""
        parts = self._recurrent_parts(layer, gates)
        for w in parts["input"]:
            for block in w.chunk(gates, 0):
                nn.init.xavier_uniform_(block)
        for w in parts["hidden"]:
            for block in w.chunk(gates, 0):
                nn.init.orthogonal_(block)
        for b in parts["bias"]:
            nn.init.zeros_(b)


@INITIALIZERS.register("deepctr")
class DeepCTRInit(Initializer):
    """DeepCTR-Torch 0.3's scheme: embeddings, wide and hidden weights N(0, init_std)
    (default 1e-4); biases and output layers keep torch's default initialisation.

    With a mean-reduced loss this starts almost dead (first-step gradients below Adam's eps);
    it exists so a ported run can reproduce DeepCTR-Torch's starting point.
    """

    name = "deepctr"
    default_std = DEEPCTR_STD

    @torch.no_grad()
    def linear_(self, weight: torch.Tensor) -> None:
        nn.init.normal_(weight, mean=0.0, std=self.init_std)

    @torch.no_grad()
    def hidden_(self, layer: nn.Linear) -> None:
        nn.init.normal_(layer.weight, mean=0.0, std=self.init_std)

    @torch.no_grad()
    def output_(self, layer: nn.Module) -> None:
        """Left as torch initialised it (``nn.Linear``'s default), as DeepCTR-Torch does."""

    @torch.no_grad()
    def interaction_(self, layer: nn.Module) -> None:
        """Left as torch initialised it, as DeepCTR-Torch's CIN does."""


InitSpec = Union[None, str, float, Initializer]

_CURRENT: contextvars.ContextVar[Optional[Initializer]] = contextvars.ContextVar(
    "ctrkit_initializer", default=None)


def create_initializer(init: Union[str, Initializer, None] = None,
                       init_std: Optional[float] = None) -> Initializer:
    """An :class:`Initializer` from a scheme name (None: ``'ctrkit'``) or an instance.

    Raises:
        UnknownNameError: unknown scheme name (lists the registered ones).
        ConfigError: ``init_std`` together with an Initializer instance (set it on the
            instance), or an invalid ``init_std``.
    """
    if isinstance(init, Initializer):
        if init_std is not None:
            raise ConfigError(f"init_std={init_std!r} was passed with the initializer "
                              f"instance {init!r}; set the std on the instance instead.")
        return init
    if init is None:
        init = "ctrkit"
    if not isinstance(init, str):
        raise ConfigError(f"init must be a scheme name {INITIALIZERS.list()} or an "
                          f"Initializer, got {init!r}.")
    return INITIALIZERS.get(init)(init_std)


@contextlib.contextmanager
def initializer_scope(init: Initializer) -> Iterator[Initializer]:
    """Within the block, layers built without an explicit ``init`` use ``init`` (models use
    this while they build, so a plug-in's layers follow the model's scheme)."""
    token = _CURRENT.set(init)
    try:
        yield init
    finally:
        _CURRENT.reset(token)


def current_initializer() -> Initializer:
    """The scheme of the model being built, else the default ``'ctrkit'`` scheme."""
    init = _CURRENT.get()
    return init if init is not None else CtrkitInit()


def resolve_init(init: InitSpec) -> Initializer:
    """What a layer's ``init`` argument means: an Initializer or scheme name as given; a float
    is the legacy ``init_std`` of these layers (DeepCTR's N(0, init_std) scheme); None is
    :func:`current_initializer`."""
    if init is None:
        return current_initializer()
    if isinstance(init, (int, float)) and not isinstance(init, bool):
        return DeepCTRInit(float(init))
    return create_initializer(init)
