"""DIN's local activation unit and attention pooling.

The unit scores each behaviour k against the candidate q with an MLP over
``[q, k, q − k, q ⊙ k]``. Its first layer is evaluated with the exact identity
``W·[q, k, q−k, q⊙k] = (W2−W3)k + W4(q⊙k) + (W1+W3)q`` (one GEMM over ``[k, q⊙k]`` per
behaviour, the ``q`` term once per row, no ``q − k``). DIN has two paths through it, chosen in
``DIN.forward``: packed (only the valid positions are embedded and scored, so padding costs
nothing; training and inference) and dense (every position scored, padding masked, Dice's
statistics from the valid positions; export and the reference the tests compare against).
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...registry import LAYERS
from ...layers.activations import create_activation
from ...layers.frozen import derived  # noqa: F401  (round-2 name)
from ...layers.tracing import is_tracing
from ...layers.init import InitSpec, resolve_init


@LAYERS.register("din_local_activation_unit")
class LocalActivationUnit(nn.Module):
    """Scores behaviours against a candidate.

    Args:
        emb_dim: E, the width of q and k.
        hidden_units: widths of the MLP (paper/DeepCTR default (64, 16)).
        activation: activation name or module class (default Dice).
        dropout: dropout after each hidden layer.
        init: how the weights start (see :mod:`ctrkit.layers.init`; None: the model's
            scheme; a float: DeepCTR's N(0, float) hidden weights).
        fused: use the split-weight identity (exact); False evaluates the plain concat.

    Shapes: ``forward(q (N, E), k (N, E)) -> (N,)`` for N (query, key) pairs;
    ``score_rows(q (B, E), keys (M, E), rows (M,)) -> (M,)`` pairs key i with ``q[rows[i]]``.

    Example:
        >>> import torch
        >>> unit = LocalActivationUnit(emb_dim=4, hidden_units=(8,), activation="sigmoid")
        >>> unit(torch.randn(6, 4), torch.randn(6, 4)).shape     # one score per pair
        torch.Size([6])
    """

    def __init__(self, emb_dim: int, hidden_units: Sequence[int] = (64, 16),
                 activation: Union[str, type] = "dice", dropout: float = 0.0,
                 init: InitSpec = None, fused: bool = True) -> None:
        super().__init__()
        from ...errors import ConfigError
        hidden_units = list(hidden_units)
        if not hidden_units or any(int(h) < 1 for h in hidden_units):
            raise ConfigError(f"att_hidden_size must be a non-empty list of positive widths, "
                              f"got {hidden_units!r}.")
        self.emb_dim = int(emb_dim)
        dims = [4 * self.emb_dim] + [int(h) for h in hidden_units]
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.activations = nn.ModuleList(create_activation(activation, d) for d in dims[1:])
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.out = nn.Linear(dims[-1], 1)
        self.fused = fused
        initializer = resolve_init(init)
        for lin in self.linears:
            initializer.hidden_(lin)
        initializer.output_(self.out)

    def _first_layer_weight(self) -> torch.Tensor:
        """(3E, H1) weight of the first layer over ``[k, q⊙k, q]``: since
        ``[q, k, q − k, q⊙k] W1..4ᵀ = k (W2 − W3)ᵀ + (q⊙k) W4ᵀ + q (W1 + W3)ᵀ``, one GEMM with
        K = 3E instead of 4E, and no q − k."""
        w1, w2, w3, w4 = self.linears[0].weight.split(self.emb_dim, dim=1)
        return torch.cat([w2 - w3, w4, w1 + w3], dim=1).t()

    #: without autograd, score at most this many behaviours per pass, so each pass's
    #: activations stay in cache; None: all at once
    inference_chunk: Optional[int] = 8192

    def score_rows(self, q: torch.Tensor, keys: torch.Tensor, rows: torch.Tensor,
                   valid: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Score key ``i`` against ``q[rows[i]]``: the one scoring function of both DIN paths
        (packed: the valid keys only; dense: every position, with ``valid`` its mask).

        The first layer's query term ``q (W1 + W3)ᵀ + b`` is computed once per ROW and
        gathered, so the per-behaviour GEMM runs over ``[k, q⊙k]`` only (K = 2E). Without
        autograd, behaviours are scored in chunks of :attr:`inference_chunk`. ``valid`` (M,)
        bool: activations that take a mask (Dice) see the valid entries' statistics only.
        """
        if not self.fused:  # the plain concat formula (the reference the identity replaces)
            q_rows = q.index_select(0, rows)
            h = self.linears[0](torch.cat([q_rows, keys, q_rows - keys, q_rows * keys], dim=-1))
            return self._hidden_and_out(h, valid)
        w = self._first_layer_weight()
        n_kq = 2 * self.emb_dim
        q_term = torch.addmm(self.linears[0].bias, q, w[n_kq:])  # (B, H1)
        w_kq = w[:n_kq]
        m = keys.shape[0]
        step = self.inference_chunk
        if (step is None or m <= step or torch.is_grad_enabled() or valid is not None
                or is_tracing()):
            return self._scores(q, q_term, w_kq, keys, rows, valid)
        return torch.cat([self._scores(q, q_term, w_kq, keys[i:i + step], rows[i:i + step])
                          for i in range(0, m, step)])

    def _scores(self, q: torch.Tensor, q_term: torch.Tensor, w_kq: torch.Tensor,
                keys: torch.Tensor, rows: torch.Tensor,
                valid: Optional[torch.Tensor] = None) -> torch.Tensor:
        # without autograd (and autocast, which has no in-place forms) the buffers are reused
        # in place: the same values, fewer (M, H) allocations on the predict path
        inplace = not torch.is_grad_enabled() and not torch.is_autocast_enabled(q.device.type)
        q_rows = q.index_select(0, rows)
        kq = torch.cat([keys, q_rows.mul_(keys) if inplace else q_rows * keys], dim=1)
        h = q_term.index_select(0, rows)
        h = h.addmm_(kq, w_kq) if inplace else torch.addmm(h, kq, w_kq)
        return self._hidden_and_out(h, valid, inplace)

    def _hidden_and_out(self, h: torch.Tensor, valid: Optional[torch.Tensor],
                        inplace: bool = False) -> torch.Tensor:
        for i, act in enumerate(self.activations):
            if i:
                h = self.linears[i](h)
            masked = valid is not None and getattr(act, "accepts_mask", False)
            h = self.dropout(act(h, valid) if masked else act(h))
        # a row-wise dot product: a behaviour's score never depends on how many share its
        # batch (mv and addmm with one output column round by the number of rows here)
        w = self.out.weight.reshape(-1)
        return (h.mul_(w) if inplace else h * w).sum(1).add_(self.out.bias)

    def forward(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        return self.score_rows(q, k, torch.arange(q.shape[0], device=q.device))


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over valid positions of each row; rows with no valid position give zeros.

    Example:
        >>> import torch
        >>> scores = torch.tensor([[0.0, 0.0, 9.0], [1.0, 2.0, 3.0]])
        >>> mask = torch.tensor([[True, True, False], [False, False, False]])
        >>> masked_softmax(scores, mask).tolist()
        [[0.5, 0.5, 0.0], [0.0, 0.0, 0.0]]
    """
    empty = ~mask.any(1, keepdim=True)
    filled = scores.masked_fill(~mask, float("-inf")).masked_fill(empty, 0.0)
    return torch.softmax(filled, dim=1) * mask


def segment_softmax(scores: torch.Tensor, rows: torch.Tensor, n_rows: int) -> torch.Tensor:
    """Softmax of the valid scores (M,) within each row; ``rows`` (M,) says whose each is.

    Equal to :func:`masked_softmax` on the padded (B, T) layout, but it only ever touches the
    M valid entries, so the result does not depend (not even in the last bit) on how much
    padding the batch carries.

    Example:
        >>> import torch
        >>> segment_softmax(torch.tensor([0.0, 0.0, 5.0]), torch.tensor([0, 0, 1]), 2).tolist()
        [0.5, 0.5, 1.0]
    """
    row_max = scores.new_full((n_rows,), float("-inf")).scatter_reduce(
        0, rows, scores.detach(), reduce="amax")
    e = torch.exp(scores - row_max.index_select(0, rows))
    return e / scores.new_zeros(n_rows).index_add(0, rows, e).index_select(0, rows)


def weighted_row_sum(values: torch.Tensor, weights: torch.Tensor, rows: torch.Tensor,
                     n_rows: int) -> torch.Tensor:
    """``out[r] = Σ_{i: rows[i] = r} weights[i]·values[i]``: (M, E), (M,), (M,) -> (n_rows, E).

    ``rows`` must be non-decreasing (the packed row-major layout). Without autograd this is
    one ``embedding_bag`` over consecutive bags (faster than ``index_add``; see
    ``docs/performance.md``); with autograd, ``index_add``, whose backward is the faster one. The two agree
    up to float rounding; rows without entries give zeros.
    """
    if (torch.is_grad_enabled() and (values.requires_grad or weights.requires_grad)
            or is_tracing()):  # exported graphs keep the shape-generic index_add
        return values.new_zeros(n_rows, values.shape[1]).index_add(
            0, rows, values * weights.unsqueeze(-1))
    offsets = torch.searchsorted(rows, torch.arange(n_rows, device=rows.device))
    return F.embedding_bag(torch.arange(len(rows), device=rows.device), values, offsets,
                           mode="sum", per_sample_weights=weights.to(values.dtype))


def stable_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """``sigmoid(x)`` whose rounding does not depend on where ``x`` sits in its tensor.

    torch's float32 ``sigmoid`` (and ``log1p``) round the tail of a vector that does not fill
    a SIMD register differently from its body, so a behaviour's weight would change in the
    last bit with the batch it shares; ``exp`` and the arithmetic here do not. Finite
    gradients everywhere (``exp`` only ever of ``-|x|``).

    Example:
        >>> import torch
        >>> x = torch.tensor([-100.0, 0.0, 3.0])
        >>> torch.allclose(stable_sigmoid(x), torch.sigmoid(x))
        True
    """
    e = torch.exp(-x.abs())
    return torch.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def soft_count(scores: torch.Tensor) -> torch.Tensor:
    """``log(1 + Σ sigmoid(score))`` of rows already summed: ``scores`` is the per-row sum of
    :func:`stable_sigmoid` weights (``log`` rather than ``log1p``, for the reason above)."""
    return torch.log(1.0 + scores)


#: what ``att_weight_normalization`` may name (False is ``"none"``, True is ``"softmax"``)
POOLINGS = ("none", "softmax", "sigmoid", "softmax+count", "softmax+sum")


def pooling_mode(value: Union[bool, str]) -> str:
    """The attention pooling that an ``att_weight_normalization`` value selects.

    ``False`` and ``True`` keep DeepCTR-Torch's meaning (raw scores; softmax over the valid
    positions); a string names one of :data:`POOLINGS`:

    - ``"none"``: raw scores weight the behaviours (the paper; counts, unbounded);
    - ``"softmax"``: softmax over the valid positions (weights sum to 1; ranks, cannot count);
    - ``"sigmoid"``: ``sigmoid(score)`` weights, each in (0, 1), so the pooled vector still
      adds up matching behaviours (counts) but no single one dominates; the unit's output
      layer is the gate's learned scale and bias;
    - ``"softmax+count"``: the softmax-pooled vector plus one feature
      ``log1p(Σ_valid sigmoid(score))``, a soft count of the matching behaviours (E + 1 wide);
    - ``"softmax+sum"``: the softmax-pooled and the raw-score-pooled vectors side by side
      (2E wide), from the same scores.

    Args:
        value: an ``att_weight_normalization`` value (a bool or a name above).

    Returns:
        the pooling's name, one of :data:`POOLINGS`.

    Raises:
        ConfigError: any other value.

    Example:
        >>> pooling_mode(True), pooling_mode(False), pooling_mode("softmax+count")
        ('softmax', 'none', 'softmax+count')
    """
    from ...errors import ConfigError
    if isinstance(value, (bool, np.bool_)):
        return "softmax" if value else "none"
    if isinstance(value, str) and value in POOLINGS:
        return value
    raise ConfigError(f"att_weight_normalization must be True, False or one of {list(POOLINGS)}, "
                      f"got {value!r}.")


@LAYERS.register("din_attention_pooling")
class AttentionPooling(nn.Module):
    """Weighted sum of behaviour embeddings, weights from a :class:`LocalActivationUnit`.

    ``weight_normalization`` picks how scores become weights (see :func:`pooling_mode`):
    False (paper default) the raw scores, True a softmax over the valid positions
    (:func:`segment_softmax`), or a string of :data:`POOLINGS` (``"sigmoid"``,
    ``"softmax+count"``, ``"softmax+sum"``). Padded positions get weight exactly 0 and are never
    fed to the unit; a row with no history pools to a zero vector (and a zero count).

    Shapes: ``q (B, E), keys (B, T, E), mask (B, T) -> (B, output_dim)``, and with
    ``return_weights=True`` also the (B, T) weights of the first (E-wide) block: the softmax
    weights for the ``"softmax…"`` poolings. ``output_dim`` is E, E + 1 for
    ``"softmax+count"`` and 2E for ``"softmax+sum"``.

    Example:
        >>> import torch
        >>> pool = AttentionPooling(emb_dim=4, hidden_units=(8,), weight_normalization=True)
        >>> mask = torch.tensor([[True, True, False], [False, False, False]])
        >>> out, w = pool(torch.randn(2, 4), torch.randn(2, 3, 4), mask, return_weights=True)
        >>> out.shape, [round(s, 4) for s in w.sum(1).tolist()]  # softmax; no history -> 0
        (torch.Size([2, 4]), [1.0, 0.0])
        >>> AttentionPooling(4, (8,), weight_normalization="softmax+count").output_dim
        5
    """

    def __init__(self, emb_dim: int, hidden_units: Sequence[int] = (64, 16),
                 activation: Union[str, type] = "dice",
                 weight_normalization: Union[bool, str] = False,
                 dropout: float = 0.0, init: InitSpec = None, fused: bool = True) -> None:
        super().__init__()
        self.unit = LocalActivationUnit(emb_dim, hidden_units, activation, dropout, init, fused)
        self.emb_dim = int(emb_dim)
        self.pooling = pooling_mode(weight_normalization)

    @property
    def output_dim(self) -> int:
        """Width of the pooled output: E, E + 1 (``"softmax+count"``), 2E (``"softmax+sum"``)."""
        extra = {"softmax+count": 1, "softmax+sum": self.emb_dim}.get(self.pooling, 0)
        return self.emb_dim + extra

    @property
    def weight_normalization(self) -> bool:
        """True when the (first block's) weights are a softmax: each row with history sums to 1.

        Setting it takes any :func:`pooling_mode` value whose output width equals the current
        one (a wider pooling would not fit the layer that reads it).
        """
        return self.pooling.startswith("softmax")

    @weight_normalization.setter
    def weight_normalization(self, value: Union[bool, str]) -> None:
        from ...errors import ConfigError
        was, width = self.pooling, self.output_dim
        self.pooling = pooling_mode(value)
        new_width = self.output_dim
        if new_width != width:
            self.pooling = was
            raise ConfigError(f"att_weight_normalization={value!r} changes the pooled width "
                              f"({width} -> {new_width}) that the next layer reads; build a "
                              f"new model with it instead.")

    def forward(self, q: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor,
                return_weights: bool = False
                ) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
        if is_tracing():
            return self.pool_dense(q, keys, mask, return_weights)
        b, t, _ = keys.shape
        rows, cols = mask.nonzero(as_tuple=True)
        return self.pool_packed(q, keys[rows, cols], rows, cols, t, return_weights)

    def pool_dense(self, q: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor,
                   return_weights: bool = False
                   ) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
        """The same pooling with static shapes: score all T positions, then mask.

        The export path (see :mod:`ctrkit.layers.tracing`) and DIN's reference path: the same
        function as :meth:`pool_packed` (each position's score depends on its own (q, k) only,
        and in training Dice's batch statistics come from the valid positions only). Shapes as
        :meth:`forward`.
        """
        b, t, e = keys.shape
        rows = torch.arange(b, device=keys.device).unsqueeze(1).expand(b, t).reshape(-1)
        scores = self.unit.score_rows(q, keys.reshape(b * t, e), rows,
                                      valid=mask.reshape(-1)).reshape(b, t)
        valid = mask.to(scores.dtype)
        if self.pooling.startswith("softmax"):
            weights = masked_softmax(scores, mask)
        elif self.pooling == "sigmoid":
            weights = stable_sigmoid(scores) * valid
        else:
            weights = scores * valid
        pooled = (weights.unsqueeze(-1) * keys).sum(1)
        if self.pooling == "softmax+count":
            count = (stable_sigmoid(scores) * valid).sum(1, keepdim=True)
            pooled = torch.cat([pooled, soft_count(count)], dim=1)
        elif self.pooling == "softmax+sum":
            pooled = torch.cat([pooled, ((scores * valid).unsqueeze(-1) * keys).sum(1)], dim=1)
        return (pooled, weights) if return_weights else pooled

    def pool_packed(self, q: torch.Tensor, k_valid: torch.Tensor, rows: torch.Tensor,
                    cols: torch.Tensor, t: int, return_weights: bool = False
                    ) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
        """The same pooling from the valid keys only (what :meth:`forward` does after packing).

        Args:
            q: (B, E) candidates.
            k_valid: (M, E) the valid behaviours, row-major (``rows`` non-decreasing).
            rows: (M,) int64 row of each valid behaviour in the (B, T) layout.
            cols: (M,) int64 position of each valid behaviour in its row.
            t: T, the padded length (for the weights' shape).
            return_weights: also return the (B, T) weights (0 at padded positions).
        """
        b, e = q.shape
        s_valid = self.unit.score_rows(q, k_valid, rows)
        if self.pooling.startswith("softmax"):
            w_valid = segment_softmax(s_valid, rows, b)
        elif self.pooling == "sigmoid":
            w_valid = stable_sigmoid(s_valid)
        else:
            w_valid = s_valid
        pooled = weighted_row_sum(k_valid, w_valid, rows, b)
        if self.pooling == "softmax+count":
            count = s_valid.new_zeros(b).index_add(0, rows, stable_sigmoid(s_valid))
            pooled = torch.cat([pooled, soft_count(count).unsqueeze(1)], dim=1)
        elif self.pooling == "softmax+sum":
            pooled = torch.cat([pooled, weighted_row_sum(k_valid, s_valid, rows, b)], dim=1)
        if not return_weights:
            return pooled
        return pooled, k_valid.new_zeros(b, t).index_put((rows, cols), w_valid)
