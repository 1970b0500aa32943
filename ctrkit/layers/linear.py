"""The linear ("wide") logit over sparse ids, pooled sequences and dense values."""
from __future__ import annotations

from typing import Dict, Mapping, Optional, Sequence

import torch
from torch import nn

from ..features import DenseFeat, Feature, VarLenSparseFeat
from ..registry import LAYERS
from .init import InitSpec, resolve_init
from .pooling import masked_pool, sequence_mask


@LAYERS.register("linear_logit")
class LinearLogit(nn.Module):
    """``sum_f w_f[id_f] + w_dense · dense``: one scalar weight per id, as in Wide&Deep/DeepFM.

    Each sparse feature looks up a 1-wide table (features sharing a table name share weights,
    as their embeddings do); a sequence pools its weights over valid positions with its
    ``combiner``; dense features enter through one linear map without bias (the model's head
    holds the bias).

    Args:
        features: the features of the linear part.
        table_of: feature name -> table name (default: each feature's ``embedding_name``).
        init: how the weights start (see :mod:`ctrkit.layers.init`; None: the model's scheme,
            default zeros; a float: DeepCTR's N(0, float)).
        l2_reg: strength of the L2 penalty on all linear weights (``l2_reg_linear``).

    Shapes: ``forward(batch)`` -> (B,).
    """

    def __init__(self, features: Sequence[Feature], table_of: Optional[Mapping[str, str]] = None,
                 init: InitSpec = None, l2_reg: float = 0.0) -> None:
        super().__init__()
        self.sparse = [f for f in features if not isinstance(f, DenseFeat)]
        self.dense = [f for f in features if isinstance(f, DenseFeat)]
        # plain str keys (state-dict keys; see layers/embedding.py)
        self.table_of: Dict[str, str] = {f.name: str((table_of or {}).get(f.name,
                                                                         f.embedding_name))
                                         for f in self.sparse}
        vocab: Dict[str, int] = {}
        for f in self.sparse:
            t = self.table_of[f.name]
            vocab[t] = max(vocab.get(t, 0), f.vocabulary_size)
        self.tables = nn.ModuleDict({t: nn.Embedding(v, 1) for t, v in vocab.items()})
        dense_dim = sum(f.dimension for f in self.dense)
        self.dense_weight = nn.Linear(dense_dim, 1, bias=False) if dense_dim else None
        initializer = resolve_init(init)
        for p in self.parameters():
            initializer.linear_(p)
        self.l2_reg = float(l2_reg)

    def forward(self, batch: Dict[str, torch.Tensor]) -> torch.Tensor:
        terms = []
        for f in self.sparse:
            w = self.tables[self.table_of[f.name]](batch[f.name])
            if isinstance(f, VarLenSparseFeat):
                lengths = batch[f.length_name] if f.length_name else None
                w = masked_pool(w, sequence_mask(batch[f.name], lengths), f.combiner)
            terms.append(w.squeeze(-1))
        if self.dense_weight is not None:
            terms.append(self.dense_weight(torch.cat([batch[f.name] for f in self.dense],
                                                     dim=-1)).squeeze(-1))
        return torch.stack(terms, dim=0).sum(dim=0)

    def l2_penalty(self) -> torch.Tensor:
        """``l2_reg * sum(w**2)`` over every linear weight."""
        return self.l2_reg * sum((p ** 2).sum() for p in self.parameters())
