"""DIEN's attentional GRUs (Zhou et al., AAAI 2019, arXiv 1809.03672, §4.3) and the packed
layout its recurrences run over.

With update gate ``u_t``, reset gate ``r_t`` and attention score ``a_t`` of step t:

- GRU:   ``h_t = (1 − u_t) ⊙ h_{t−1} + u_t ⊙ h̃_t``
- AGRU:  ``h_t = (1 − a_t) · h_{t−1} + a_t · h̃_t``             (attention replaces the gate)
- AUGRU: ``h_t = (1 − a_t u_t) ⊙ h_{t−1} + a_t u_t ⊙ h̃_t``     (attention scales the gate)

where ``u_t = σ(W_u i_t + U_u h_{t−1} + b_u)``, ``r_t = σ(W_r i_t + U_r h_{t−1} + b_r)``,
``h̃_t = tanh(W_h i_t + r_t ⊙ (U_h h_{t−1}) + b_h)`` (the paper's equations 2-4 and 7-8).
"""
from __future__ import annotations

from typing import NamedTuple, Optional, Sequence, Tuple

import torch
from torch import nn

from ...errors import ConfigError
from ...registry import LAYERS

GRU_TYPES = ("GRU", "AIGRU", "AGRU", "AUGRU")


class Packed(NamedTuple):
    """The valid positions of a (B, T) prefix-padded batch in time-major packed order.

    Rows with a history are sorted by length (longest first, ties by row); element ``i`` is
    step ``cols[i]`` of row ``rows[i]``. Step t holds the first ``batch_sizes[t]`` sorted rows.

    Fields: ``rows, cols (M,)`` int64; ``flat (M,)`` = rows·T + cols; ``batch_sizes (T',)``
    int64 on the CPU (T' the longest length); ``sorted_rows (B',)`` the rows with a history,
    longest first; ``step_size (M,)`` = ``batch_sizes[cols]`` (offset of the next step's
    element of the same row); ``lengths (M,)`` each element's row length.
    """

    rows: torch.Tensor
    cols: torch.Tensor
    flat: torch.Tensor
    batch_sizes: torch.Tensor
    sorted_rows: torch.Tensor
    step_size: torch.Tensor
    lengths: torch.Tensor


def pack_positions(lengths: torch.Tensor, t: int) -> Packed:
    """:class:`Packed` positions of rows with ``lengths`` (B,) in a layout of width ``t``."""
    sorted_len, order = torch.sort(lengths, descending=True, stable=True)
    n_rows = int((sorted_len > 0).sum())
    longest = int(sorted_len[0]) if n_rows else 0
    steps = torch.arange(longest, device=lengths.device)
    batch_sizes = (sorted_len.unsqueeze(0) > steps.unsqueeze(1)).sum(1)  # (T',)
    grid = torch.arange(n_rows, device=lengths.device).unsqueeze(0) < batch_sizes.unsqueeze(1)
    cols, j = grid.nonzero(as_tuple=True)  # row-major over steps: the packed order
    sorted_rows = order[:n_rows]
    rows = sorted_rows.index_select(0, j)
    return Packed(rows, cols, rows * t + cols, batch_sizes.cpu(), sorted_rows,
                  batch_sizes.index_select(0, cols), lengths.index_select(0, rows))


@LAYERS.register("attentional_gru")
class AttentionalGRU(nn.Module):
    """A GRU whose step is steered by an attention score per position (AGRU or AUGRU).

    Args:
        input_size: I, the width of the inputs ``i_t``.
        hidden_size: H.
        gru_type: ``'AUGRU'`` (attention scales the update gate) or ``'AGRU'`` (attention
            replaces it).

    Weights (the paper's names): ``weight_i`` (3H, I) = [W_u; W_r; W_h], ``weight_h`` (3H, H)
    = [U_u; U_r; U_h], ``bias`` (3H,) = [b_u; b_r; b_h]; initialised U(−1/√H, 1/√H) as torch's
    GRU (DIEN then applies its scheme's ``recurrent_`` role, as to its ``nn.GRU``).

    Shapes: ``cell(x_proj (N, 3H), h (N, H), a (N,)) -> (N, H)`` with ``x_proj = input_proj(x)``;
    ``forward_packed(x (M, I), a (M,), packed) -> (B', H)``, the last state of every row with a
    history, in ``packed.sorted_rows`` order; ``forward_dense(x (B, T, I), a (B, T), mask (B, T))
    -> (B, H)``, the state after the last valid position (zeros for an empty row).
    """

    def __init__(self, input_size: int, hidden_size: int, gru_type: str = "AUGRU") -> None:
        super().__init__()
        if gru_type not in ("AGRU", "AUGRU"):
            raise ConfigError(f"AttentionalGRU implements 'AGRU' and 'AUGRU', got {gru_type!r}.")
        self.gru_type = gru_type
        self.hidden_size = int(hidden_size)
        h = self.hidden_size
        self.weight_i = nn.Parameter(torch.empty(3 * h, int(input_size)))
        self.weight_h = nn.Parameter(torch.empty(3 * h, h))
        self.bias = nn.Parameter(torch.empty(3 * h))
        bound = h ** -0.5
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def input_proj(self, x: torch.Tensor) -> torch.Tensor:
        """``[W_u; W_r; W_h] x + b`` for all positions at once (one GEMM, outside the loop)."""
        return torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight_i.t()).reshape(
            *x.shape[:-1], 3 * self.hidden_size)

    def cell(self, x_proj: torch.Tensor, h: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        xu, xr, xh = x_proj.chunk(3, dim=-1)
        hu, hr, hh = (h @ self.weight_h.t()).chunk(3, dim=-1)
        r = torch.sigmoid(xr + hr)
        cand = torch.tanh(xh + r * hh)
        a = a.unsqueeze(-1)
        u = a * torch.sigmoid(xu + hu) if self.gru_type == "AUGRU" else a
        return h + u * (cand - h)  # (1 − u) h + u h̃

    def forward_packed(self, x: torch.Tensor, a: torch.Tensor, packed: Packed) -> torch.Tensor:
        sizes = packed.batch_sizes.tolist()
        # one split (one backward) instead of a slice per step: each slice's backward would
        # write a gradient as large as the whole input, T times
        steps_x = self.input_proj(x).split(sizes)
        steps_a = a.split(sizes)
        h = x.new_zeros(sizes[0] if sizes else 0, self.hidden_size)
        done = []  # final states of the rows that ended, shortest first
        for t, n in enumerate(sizes):  # one step per position, all active rows at once
            if n < h.shape[0]:  # rows are sorted by length: the last ones have ended
                h, ended = h.split([n, h.shape[0] - n])  # one split: its backward is one cat
                done.append(ended)
            h = self.cell(steps_x[t], h, steps_a[t])
        return torch.cat([h] + done[::-1]) if done else h

    def forward_dense(self, x: torch.Tensor, a: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        proj = self.input_proj(x)
        h = x.new_zeros(x.shape[0], self.hidden_size)
        for t in range(x.shape[1]):  # static T: a traced graph serves any batch
            h = torch.where(mask[:, t:t + 1], self.cell(proj[:, t], h, a[:, t]), h)
        return h


def gru_packed(gru: nn.GRU, x: torch.Tensor, batch_sizes: Sequence[int],
               states: bool = True) -> Tuple[Optional[torch.Tensor], torch.Tensor]:
    """torch's one-layer ``nn.GRU`` (its weights and equations) over a packed time-major
    input, as a loop of whole-step tensor operations.

    It computes what ``gru(PackedSequence(x, batch_sizes))`` computes (same weights, same
    equations: ``r, z = σ(W_i[r,z] x + b_i[r,z] + W_h[r,z] h + b_h[r,z])``, ``n = tanh(W_in x +
    b_in + r ⊙ (W_hn h + b_hn))``, ``h' = (1 − z) ⊙ n + z ⊙ h``) up to floating-point
    rounding, with one input GEMM for all positions and one split (one backward) instead of
    torch's CPU packed path, whose backward writes an input-sized gradient for every step's
    slice (tests/models/test_dien.py compares values and gradients).

    Args:
        gru: a one-layer, unidirectional ``nn.GRU`` with biases (its parameters are used).
        x: (M, I) packed inputs, time-major (``batch_sizes[t]`` rows at step t, longest first).
        batch_sizes: active rows per step, non-increasing.
        states: also return every step's state.

    Returns:
        ``(states (M, H) in x's packed order or None, last (B', H))`` with ``last`` the final
        state of every row in the packed (longest-first) row order.
    """
    if gru.num_layers != 1 or gru.bidirectional or not gru.bias or gru.proj_size:
        raise ConfigError("gru_packed runs a one-layer, unidirectional nn.GRU with biases and "
                          "no projection.")
    h_dim = gru.hidden_size
    sizes = [int(n) for n in batch_sizes]
    w_hh_t, b_hh = gru.weight_hh_l0.t(), gru.bias_hh_l0
    steps = torch.addmm(gru.bias_ih_l0, x, gru.weight_ih_l0.t()).split(sizes)
    h = x.new_zeros(sizes[0] if sizes else 0, h_dim)
    outs, done = [], []
    for t, n in enumerate(sizes):
        if n < h.shape[0]:  # rows sorted by length: the last ones have ended
            h, ended = h.split([n, h.shape[0] - n])
            done.append(ended)
        x_rz, x_n = steps[t].split([2 * h_dim, h_dim], dim=1)
        h_rz, h_n = torch.addmm(b_hh, h, w_hh_t).split([2 * h_dim, h_dim], dim=1)
        r, z = torch.sigmoid(x_rz + h_rz).chunk(2, dim=1)
        cand = torch.tanh(x_n + r * h_n)
        h = cand + z * (h - cand)  # (1 − z) n + z h
        if states:
            outs.append(h)
    last = torch.cat([h] + done[::-1]) if done else h
    if not states:
        return None, last
    return (torch.cat(outs) if outs else x.new_zeros(0, h_dim)), last


def check_gru_type(gru_type: str) -> str:
    if gru_type not in GRU_TYPES:
        raise ConfigError(f"gru_type must be one of {list(GRU_TYPES)}, got {gru_type!r}.")
    return gru_type


def last_valid(states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B, T, H) states of prefix-padded rows -> (B, H) state at position length − 1 (zeros
    for empty rows)."""
    idx = (lengths - 1).clamp_min(0).reshape(-1, 1, 1).expand(-1, 1, states.shape[-1])
    last = states.gather(1, idx).squeeze(1)
    return last * (lengths > 0).unsqueeze(-1).to(last.dtype)


__all__ = ["AttentionalGRU", "Packed", "pack_positions", "GRU_TYPES", "check_gru_type",
           "gru_packed", "last_valid"]

