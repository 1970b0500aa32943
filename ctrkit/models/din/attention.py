"""DIN's local activation unit and attention pooling.

The unit scores each behaviour k against the candidate q with an MLP over
``[q, k, q − k, q ⊙ k]``. Its first layer is evaluated with the exact identity
``W·[q, k, q−k, q⊙k] = (W2−W3)k + W4(q⊙k) + (W1+W3)q`` (one GEMM over ``[k, q⊙k, q]``, no
``q − k``), and only on valid (non-padded) positions, so padding costs nothing and never
reaches Dice's statistics.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...registry import LAYERS
from ...layers.activations import create_activation
from ...layers.frozen import derived
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

    def _first_layer(self, q_rows: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        lin = self.linears[0]
        if not self.fused:
            return lin(torch.cat([q_rows, k, q_rows - k, q_rows * k], dim=-1))
        return torch.addmm(lin.bias, torch.cat([k, q_rows * k, q_rows], dim=1),
                           self._first_layer_weight())

    #: without autograd in eval mode (rows are independent there) score at most this many
    #: behaviours per pass, so each pass's activations stay in cache; None: all at once
    inference_chunk: Optional[int] = 8192

    def score_rows(self, q: torch.Tensor, keys: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        if (self.fused and not self.training and not torch.is_grad_enabled()
                and not is_tracing()):
            return self._score_inference(q, keys, rows)
        return self._score(q, keys, rows)

    def _inference_constants(self) -> tuple:
        """What :meth:`_score_inference` derives from the weights: the first layer's query
        block (E, H1), its [k, q⊙k] block (2E, H1) and bias, the later layers' (Wᵀ, b), each
        activation as a function with its constants folded, and the output weight (H_last,)."""
        w0 = self._first_layer_weight()
        n_kq = 2 * self.emb_dim
        layers = [(lin.weight.t(), lin.bias) for lin in self.linears[1:]]
        acts = [getattr(act, "inference_gate", lambda a=act: a)() for act in self.activations]
        return (w0[n_kq:], w0[:n_kq], self.linears[0].bias, layers, acts,
                self.out.weight.reshape(-1))

    def _score_inference(self, q: torch.Tensor, keys: torch.Tensor,
                         rows: torch.Tensor) -> torch.Tensor:
        """:meth:`_score` in eval mode without autograd (same values up to float rounding).

        The folded weights and each activation's constants are computed once per call (once
        per predict call inside :func:`~ctrkit.layers.frozen.frozen_weights`). The
        first layer's query term ``q (W1 + W3)ᵀ + b`` is computed once per ROW and gathered,
        so the per-behaviour GEMM runs over ``[k, q⊙k]`` only (K = 2E). Behaviours are scored
        in chunks of :attr:`inference_chunk`.
        """
        w_q, w0, b0, layers, acts, w_out = derived(
            self, "inference", [*self.parameters(), *self.buffers()], self._inference_constants)
        q_term = torch.addmm(b0, q, w_q)  # (B, H1)
        m = keys.shape[0]
        scores = keys.new_empty(m)
        step = self.inference_chunk or max(m, 1)
        for i in range(0, m, step):
            k, r = keys[i:i + step], rows[i:i + step]
            q_rows = q.index_select(0, r)
            h = q_term.index_select(0, r).addmm_(torch.cat([k, q_rows.mul_(k)], dim=1), w0)
            for j, act in enumerate(acts):
                if j:
                    h = torch.addmm(layers[j - 1][1], h, layers[j - 1][0])
                h = act(h)
            torch.mv(h, w_out, out=scores[i:i + step])
        return scores.add_(self.out.bias)

    def _score(self, q: torch.Tensor, keys: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        q_rows = q.index_select(0, rows)
        h = self._first_layer(q_rows, keys)
        for i, act in enumerate(self.activations):
            if i:
                h = self.linears[i](h)
            h = self.dropout(act(h))
        return self.out(h).squeeze(-1)

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
    one ``embedding_bag`` over consecutive bags (about 5x faster than ``index_add`` on
    (26000, 16)); with autograd, ``index_add``, whose backward is the faster one. The two agree
    up to float rounding; rows without entries give zeros.
    """
    if (torch.is_grad_enabled() and (values.requires_grad or weights.requires_grad)
            or is_tracing()):  # exported graphs keep the shape-generic index_add
        return values.new_zeros(n_rows, values.shape[1]).index_add(
            0, rows, values * weights.unsqueeze(-1))
    offsets = torch.searchsorted(rows, torch.arange(n_rows, device=rows.device))
    return F.embedding_bag(torch.arange(len(rows), device=rows.device), values, offsets,
                           mode="sum", per_sample_weights=weights)


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

        The export path (see :mod:`ctrkit.layers.tracing`): in eval mode the same function as
        :meth:`forward` (each position's score depends on its own (q, k) only); in training
        mode Dice's batch statistics would also see the padded positions, so it is for
        inference. Shapes as :meth:`forward`.
        """
        b, t, e = keys.shape
        rows = torch.arange(b, device=keys.device).unsqueeze(1).expand(b, t).reshape(-1)
        scores = self.unit.score_rows(q, keys.reshape(b * t, e), rows).reshape(b, t)
        valid = mask.to(scores.dtype)
        if self.pooling.startswith("softmax"):
            weights = masked_softmax(scores, mask)
        elif self.pooling == "sigmoid":
            weights = torch.sigmoid(scores) * valid
        else:
            weights = scores * valid
        pooled = (weights.unsqueeze(-1) * keys).sum(1)
        if self.pooling == "softmax+count":
            count = (torch.sigmoid(scores) * valid).sum(1, keepdim=True)
            pooled = torch.cat([pooled, torch.log1p(count)], dim=1)
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
            w_valid = torch.sigmoid(s_valid)
        else:
            w_valid = s_valid
        pooled = weighted_row_sum(k_valid, w_valid, rows, b)
        if self.pooling == "softmax+count":
            count = s_valid.new_zeros(b).index_add(0, rows, torch.sigmoid(s_valid))
            pooled = torch.cat([pooled, torch.log1p(count).unsqueeze(1)], dim=1)
        elif self.pooling == "softmax+sum":
            pooled = torch.cat([pooled, weighted_row_sum(k_valid, s_valid, rows, b)], dim=1)
        if not return_weights:
            return pooled
        return pooled, k_valid.new_zeros(b, t).index_put((rows, cols), w_valid)
