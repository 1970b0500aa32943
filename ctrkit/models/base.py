"""The contract every ctrkit model meets, and the Keras-style methods it inherits.

A model subclasses :class:`BaseModel`, builds its layers in ``__init__`` and implements
``forward(batch) -> logits (B,)`` where ``batch`` maps feature names to tensors (ids int64
(B,) or (B, T), lengths int64 (B,), dense float32 (B, D)). ``compile``/``fit``/``evaluate``/
``predict`` delegate to the generic :class:`~ctrkit.training.trainer.Trainer`.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from ..features import DenseFeat, Feature, SparseFeat, VarLenSparseFeat, validate_features
from ..layers.dense_transform import DenseTransforms
from ..layers.embedding import EmbeddingTables
from ..layers.init import _CURRENT as _INIT_SCOPE, Initializer, create_initializer
from ..layers.head import PredictionHead, check_task
from ..layers.pooling import masked_pool, sequence_mask
from ..regularizers import create_regularizer
from ..training import modes
from ..training.keras_methods import KerasMethods
# round-2 names of this module, kept importable from it (the Keras methods now live in
# ctrkit.training.keras_methods)
from ..callbacks import CallbackList, History, check_callbacks  # noqa: F401
from ..training.data_adapters import get_data_adapter, is_batch_source  # noqa: F401
from ..training.trainer import (Trainer, check_verbose, predict_logits,  # noqa: F401
                                require_trainer)


def resolve_device(device: Any) -> torch.device:
    """'cpu' | 'cuda' | 'cuda:N' | 'auto' | torch.device -> torch.device (checked)."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ConfigError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}.") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={device!r} but CUDA is not available here; use device='cpu' "
                          f"or device='auto'.")
    return dev


def _clear_auxiliary_losses(model: nn.Module, args: Any) -> None:
    model._auxiliary_losses = []


def _apply_dense_transforms(model: nn.Module, args: Any) -> Any:
    """The batch with its fitted dense transforms applied (tensor ops: exported too)."""
    return (model.dense_transforms(args[0]),) + tuple(args[1:])


def _feature_names(value: Any) -> Any:
    """A hyperparameter with feature declarations in it (DeepCTR's ``linear_feature_columns``)
    as their names: models resolve names against their features, and names save as plain data
    (whatever ``build`` accepts, ``save`` saves)."""
    if isinstance(value, (SparseFeat, DenseFeat, VarLenSparseFeat)):
        return value.name
    if isinstance(value, (list, tuple)) and any(
            isinstance(v, (SparseFeat, DenseFeat, VarLenSparseFeat)) for v in value):
        return [_feature_names(v) for v in value]
    return value


class BaseModel(KerasMethods, nn.Module):
    """Base of every model: features, embedding tables, head, regularization, Keras methods.

    Args:
        features: the feature declarations.
        task: ``'binary'`` (sigmoid output, logloss) or ``'regression'``.
        l2_reg_embedding: strength of the embedding regularizer.
        embedding_regularizer: name in the regularizer registry (``'l2'``: whole-table L2 each
            step, DeepCTR's behaviour) or a Regularizer instance.
        init: initialisation scheme, a name in the initializer registry (``'ctrkit'``, the
            default: embeddings N(0, 0.05), He/Glorot dense layers; ``'deepctr'``:
            DeepCTR-Torch's N(0, 1e-4) everywhere) or an Initializer; see
            :mod:`ctrkit.layers.init`. ``self.initializer`` holds it; layers built inside the
            model's ``__init__`` use it.
        init_std: std of the embeddings' normal initialisation (DeepCTR's meaning; in the
            ``'deepctr'`` scheme also of the wide and hidden weights); None: the scheme's
            default.
        seed: makes construction and training reproducible, without touching the global RNG.
        device: ``'cpu'``, ``'cuda'``, ``'cuda:N'`` or ``'auto'``.
        table_of: feature name -> embedding table, overriding ``embedding_name``.

    Example:
        >>> import ctrkit
        >>> from ctrkit.datasets import make_synthetic
        >>> x, y, features = make_synthetic(n_rows=256, maxlen=4, embedding_dim=4, seed=0)
        >>> model = ctrkit.build("din", features, seed=0)       # a BaseModel
        >>> model.compile("adam", "binary_crossentropy", metrics=["auc"], lr=1e-3)
        >>> history = model.fit(x, y, batch_size=64, epochs=2, verbose=0, validation_split=0.25)
        >>> sorted(history.history)
        ['auc', 'loss', 'val_auc', 'val_loss']
        >>> model.predict(x).shape
        (256, 1)
        >>> sorted(model.evaluate(x, y))
        ['auc', 'loss']
    """

    #: the registered name (set by ``ctrkit.build``/``register_model``).
    registered_name: Optional[str] = None
    #: a multi-task model's task names and types (set by :meth:`set_tasks`); None: one output.
    task_names: Optional[tuple] = None
    task_types: Optional[tuple] = None
    #: the final ``nn.Linear(D, 1)`` layer(s) whose outputs are added into the logit: built
    #: with ``task_names``, each becomes one head per task (see :mod:`ctrkit.models.towers`).
    logit_layers: tuple = ("dnn_linear",)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" not in cls.__dict__:
            return
        init = cls.__init__
        sig = inspect.signature(init)

        @functools.wraps(init)
        def wrapped(self, *args: Any, **kw: Any) -> None:
            if self.__dict__.get("_ctrkit_in_init"):
                return init(self, *args, **kw)
            bound = sig.bind(self, *args, **kw)
            bound.apply_defaults()
            params = dict(bound.arguments)
            params.pop("self", None)
            extra = params.pop(next(k for k, p in sig.parameters.items()
                                    if p.kind is p.VAR_KEYWORD), {}) if any(
                p.kind is p.VAR_KEYWORD for p in sig.parameters.values()) else {}
            params.update(extra)
            seed = params.get("seed", 1024)
            object.__setattr__(self, "_ctrkit_in_init", True)
            scope = _INIT_SCOPE.set(None)  # BaseModel.__init__ sets the model's scheme
            try:
                with torch.random.fork_rng(devices=[]):
                    # seed=None: fresh random weights (the global RNG state is still restored)
                    torch.manual_seed(int(seed) if seed is not None else torch.seed())
                    init(self, *args, **kw)
            finally:
                _INIT_SCOPE.reset(scope)
                object.__setattr__(self, "_ctrkit_in_init", False)
            first = next(iter(params), None)  # None: an __init__ without arguments
            self.hparams = {k: _feature_names(v) for k, v in params.items() if k != first}
            self.to(self.device)

        cls.__init__ = wrapped

    def __init__(self, features: Sequence[Feature], *, task: str = "binary",
                 l2_reg_embedding: float = 1e-6, embedding_regularizer: Any = "l2",
                 init_std: Optional[float] = None, seed: Optional[int] = 1024, device: Any = "cpu",
                 table_of: Optional[Dict[str, str]] = None, init: Any = "ctrkit") -> None:
        super().__init__()
        self.features: List[Feature] = validate_features(features)
        self.task = check_task(task)
        if float(l2_reg_embedding) < 0:
            raise ConfigError(f"l2_reg_embedding must be >= 0, got {l2_reg_embedding!r}.")
        self.device = resolve_device(device)
        self.seed = seed
        self.rng = torch.Generator()
        self.rng.manual_seed(int(seed) if seed is not None else int(torch.seed() % 2 ** 62))
        #: how every parameter starts (layers built in ``__init__`` follow it).
        self.initializer: Initializer = create_initializer(init, init_std)
        #: the embeddings' std (the value in effect, also when ``init_std`` was None).
        self.init_std = self.initializer.init_std
        if self.__dict__.get("_ctrkit_in_init"):  # the wrapper resets it after __init__
            _INIT_SCOPE.set(self.initializer)
        self.embeddings = EmbeddingTables(self._sorted(self.features), table_of, self.initializer)
        self.regularizer = create_regularizer(embedding_regularizer, float(l2_reg_embedding))
        self.head = PredictionHead(self.task)
        self.trainer: Optional[Trainer] = None
        self.stop_training = False
        #: feature or embedding-table name -> fitted encoder (``transform``/``to_dict``/
        #: ``from_dict``). An encoder serves every feature of its table (candidate and history
        #: alike); with encoders attached, fit/evaluate/predict/explain take raw values unless
        #: called with ``encoded=True``. Saved by ``save``. See :mod:`ctrkit.vocabulary`.
        self.encoders: Dict[str, Any] = {}
        #: a call whose values of one feature fall outside its vocabulary more often than this
        #: raises (1.0 turns the check off); see :mod:`ctrkit.vocabulary`.
        self.max_oov_fraction: float = 0.5
        # the ``encoded`` argument of the fit/evaluate/predict/explain call in progress, for
        # batch sources that encode batch by batch through encode_inputs
        self._call_encoded: Optional[bool] = None
        self._auxiliary_losses: List[torch.Tensor] = []
        # each forward starts with no auxiliary losses: they belong to ONE forward pass
        self.register_forward_pre_hook(_clear_auxiliary_losses)
        #: fitted dense transforms (``DenseFeat(transform=...)``), applied first in forward
        # (None without any: no empty module in summaries or state dicts)
        transforms = DenseTransforms(self.features)
        self.dense_transforms: Optional[DenseTransforms] = transforms if len(transforms) else None
        if self.dense_transforms is not None:
            self.register_forward_pre_hook(_apply_dense_transforms)

    def set_tasks(self, task_names: Sequence[str], task_types: Any = "binary",
                  use_bias: bool = True) -> None:
        """Make this model a multi-task model: ``forward`` then returns (B, T) logits, one
        column per task in ``task_names`` order, and ``self.head`` is a
        :class:`~ctrkit.tasks.MultiTaskHead` (a bias and output transform per task).

        Call it in ``__init__`` after ``super().__init__``. ``self.task`` becomes a
        :class:`~ctrkit.tasks.Tasks`; ``compile``/``fit``/``evaluate``/``predict`` then take
        and report every task (see docs/training.md).

        Args:
            task_names: two or more distinct names, e.g. ``("ctr", "cvr")``.
            task_types: ``'binary'``/``'regression'`` per task, or one for all.
            use_bias: learn a bias per task on its logit.

        Raises:
            ConfigError: bad names or types (see :class:`~ctrkit.tasks.Tasks`).
        """
        from ..tasks import MultiTaskHead, Tasks
        tasks = Tasks(task_names, task_types)
        self.task = tasks
        self.task_names, self.task_types = tasks.names, tasks.types
        self.head = MultiTaskHead(tasks, use_bias)

    def add_task_towers(self, task_names: Sequence[str], task_types: Any = "binary") -> None:
        """One linear tower per task over this single-task model's body output (what
        ``ctrkit.build(name, features, task_names=...)`` does; see
        :func:`ctrkit.models.towers.add_task_towers`)."""
        from .towers import add_task_towers
        add_task_towers(self, task_names, task_types)

    # ----------------------------------------------------------------- helpers for models
    @staticmethod
    def _sorted(features: Sequence[Feature]) -> List[Feature]:
        """Features in name order: layouts never depend on the order of the feature list."""
        return sorted(features, key=lambda f: f.name)

    def features_of(self, kind: type) -> List[Feature]:
        return [f for f in self._sorted(self.features) if type(f) is kind]

    def sequence_mask(self, batch: Dict[str, torch.Tensor], f: VarLenSparseFeat) -> torch.Tensor:
        """(B, T) valid positions of sequence ``f`` (from its length column, else ids != 0)."""
        return sequence_mask(batch[f.name], batch[f.length_name] if f.length_name else None)

    def embed_sparse(self, batch, feats: Sequence[SparseFeat]) -> List[torch.Tensor]:
        return [self.embeddings.lookup(f.name, batch[f.name]) for f in feats]

    def pool_sequences(self, batch, feats: Sequence[VarLenSparseFeat]) -> List[torch.Tensor]:
        return [masked_pool(self.embeddings.lookup(f.name, batch[f.name]),
                            self.sequence_mask(batch, f), f.combiner) for f in feats]

    def dense_values(self, batch, feats: Sequence[DenseFeat]) -> List[torch.Tensor]:
        return [batch[f.name] for f in feats]

    def regularization_loss(self, batch: Dict[str, torch.Tensor]) -> Optional[torch.Tensor]:
        """Embedding regularizer + every sub-module's ``l2_penalty()`` (None when all are 0)."""
        terms = [self.regularizer.penalty(self, batch)]
        terms += [m.l2_penalty() for m in self.modules() if hasattr(m, "l2_penalty")
                  and getattr(m, "l2_reg", 0.0)]
        terms = [t for t in terms if t is not None]
        return sum(terms) if terms else None

    def add_auxiliary_loss(self, loss: torch.Tensor, alpha: float = 1.0) -> None:
        """Add ``alpha * loss`` to the training objective of the current forward pass.

        The one mechanism for a model's extra training losses (DIEN's next-behaviour loss,
        DeepCTR's ``add_auxiliary_loss``). Call it inside ``forward``; the trainer adds the
        sum of this forward's terms to the data loss it minimises (scaled like the data loss
        under DDP), and logs it apart as ``aux_loss``: ``loss`` stays the data loss, so it
        equals what ``evaluate`` reports. Terms count in training mode only: an auxiliary loss
        is a training objective, and ``evaluate``/``predict``/``export`` run in eval mode,
        where this call records nothing (as regularization, it is not part of ``evaluate``'s
        loss).

        Args:
            loss: a scalar tensor (a mean over whatever the term averages).
            alpha: its weight in the objective.

        Raises:
            ConfigError: ``loss`` is not a scalar tensor, or ``alpha`` is not a finite number.
        """
        if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
            raise ConfigError(f"add_auxiliary_loss takes a scalar tensor (e.g. a mean), got "
                              f"{type(loss).__name__}"
                              f"{tuple(loss.shape) if isinstance(loss, torch.Tensor) else ''}.")
        if isinstance(alpha, bool) or not np.isfinite(float(alpha)):
            raise ConfigError(f"add_auxiliary_loss alpha must be a finite number, got {alpha!r}.")
        if self.training:
            self._auxiliary_losses.append(loss if float(alpha) == 1.0 else loss * float(alpha))

    def auxiliary_loss(self) -> Optional[torch.Tensor]:
        """The sum of the auxiliary losses added by the last forward pass (None: none added)."""
        terms = self.__dict__.get("_auxiliary_losses")
        if not terms:
            return None
        return terms[0] if len(terms) == 1 else torch.stack(terms).sum()

    def forward(self, batch: Dict[str, torch.Tensor]) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError(f"{type(self).__name__} must implement forward(batch).")

    def attention_weights(self, batch: Dict[str, torch.Tensor]) -> torch.Tensor:
        """Hook for :meth:`explain`: the (B, T) attention weight of every history position of
        a batch (0 at padded positions). A model with attention over a behaviour sequence
        overrides it; :meth:`explain` runs it in eval mode without autograd over all rows."""
        name = self.registered_name or type(self).__name__
        raise ConfigError(f"Model '{name}' has no attention weights to explain; explain() "
                          f"needs a model with attention over a behaviour sequence, such as "
                          f"'din' or 'dien'.")

    def explain(self, x, batch_size: int = 1024, encoded: Optional[bool] = None) -> np.ndarray:
        """Per-position attention weights, shape (N, T), for models with attention (e.g. DIN,
        DIEN): :meth:`attention_weights` over all rows, in eval mode.

        Args:
            x: inputs as for :meth:`predict`.
            batch_size: rows per forward pass.
            encoded: as for :meth:`predict`.

        Raises:
            ConfigError: this model has no attention to show.
        """
        if type(self).attention_weights is BaseModel.attention_weights:
            return self.attention_weights({})  # raises the explanation
        if isinstance(batch_size, bool) or int(batch_size) < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}.")
        with self._encoding(encoded):  # a batch source is encoded as it is read
            data = self.input_source(x, encoded=encoded)
            out = []
            try:
                with modes.inference(self, "explain"), torch.inference_mode():
                    for b in data.batches(int(batch_size)):
                        batch = b.x if self.device.type == "cpu" else {
                            k: v.to(self.device) for k, v in b.x.items()}
                        out.append(self.attention_weights(batch).float().cpu())
            finally:
                data.close()
            return torch.cat(out).numpy()

    def vocabularies(self) -> Dict[str, Any]:
        """Feature name -> :class:`ctrkit.vocabulary.Vocabulary`, resolved per embedding table.

        ``self.encoders`` may be keyed by feature or by table; every feature looking up a table
        that has an encoder (a candidate and its history sequences) is encoded with it.

        Raises:
            ConfigError: an encoder for an unknown feature/table, two encoders for one table,
                or an encoder larger than its table.
        """
        from ..vocabulary import table_vocabularies
        emb = self.embeddings
        sizes = {t: int(m.num_embeddings) for t, m in emb.tables.items()}
        return table_vocabularies(self.encoders, emb.table_of, sizes,
                                  getattr(self, "max_oov_fraction", 0.5))

    def encode_inputs(self, x: Any, encoded: Optional[bool] = None) -> Any:
        """``x`` marked with what turns it into ids: a :class:`ctrkit.inputs.RawColumns`.

        Args:
            x: inputs as for :meth:`predict` (a batch source is returned as it is: it is
                encoded batch by batch through this same method).
            encoded: None: raw values if the model carries vocabularies (``self.encoders``),
                else ids; True: ``x`` holds ids; False: ``x`` holds raw values. Inside a
                fit/evaluate/predict/explain call, None means that call's ``encoded``.

        Returns:
            a :class:`~ctrkit.inputs.RawColumns` that :func:`~ctrkit.inputs.prepare_inputs`
            encodes while validating (indexing one of its columns encodes that column).

        Raises:
            ConfigError: a bad ``encoded`` or inconsistent encoders.
        """
        from ..inputs import Columns, RawColumns, _as_mapping
        from ..vocabulary import check_encoded
        if x is None or is_batch_source(x) or isinstance(x, (Columns, RawColumns)):
            return x
        if encoded is None:
            encoded = self._call_encoded
        vocabs = self.vocabularies()
        ids = check_encoded(encoded, bool(vocabs))
        hint = ""
        if vocabs:
            hint = (" (encoded=True: the columns are taken as ids; pass raw values with "
                    "encoded=False or the default.)" if ids else
                    " (Features without a vocabulary take ids; pass already-encoded ids for "
                    "every feature with encoded=True.)")
        return RawColumns(_as_mapping(self.features, x), {} if ids else vocabs, hint)

    def input_columns(self, x: Any, encoded: Optional[bool] = None,
                      extra: Sequence[str] = ()) -> Any:
        """In-memory ``x`` validated once into :class:`ctrkit.inputs.Columns` of ids.

        This is what :meth:`predict` feeds the network (and what an exported model takes):
        raw values encoded per embedding table, ragged histories padded by
        :mod:`ctrkit.data.padding`'s policy, length columns derived. ``encoded`` as in
        :meth:`encode_inputs`; ``extra``: further columns to carry (e.g. the GAUC group).

        Raises:
            ConfigError: a bad ``encoded`` or inconsistent encoders; InputError: bad data.
        """
        from ..inputs import prepare_inputs
        return prepare_inputs(self.features, self.encode_inputs(x, encoded), extra=extra)

    @contextlib.contextmanager
    def _encoding(self, encoded: Optional[bool]):
        """The call's ``encoded`` switch, resolved to True (ids) or False (raw values).

        In-memory inputs are encoded with the yielded value, passed explicitly (concurrent
        calls on one model, e.g. a threaded server, cannot see each other's switch); batch
        sources encode batch by batch through :meth:`encode_inputs`, which reads the switch
        of the call in progress (so concurrent calls with batch sources and different
        switches on ONE model are not supported).
        """
        from ..vocabulary import check_encoded
        has_vocabularies = bool(self.vocabularies())
        ids = check_encoded(encoded, has_vocabularies)
        before, self._call_encoded = self._call_encoded, ids
        try:
            yield ids
        finally:
            self._call_encoded = before

    def save(self, path: Any) -> Any:
        """Save everything needed to predict (hyperparameters, features, encoders, weights) to
        ONE file, atomically; ``ctrkit.load(path)`` rebuilds the model.

        Raises:
            SerializationError: a hyperparameter is not plain data (e.g. an activation class:
                pass its registered name instead); nothing is written then.
        """
        from ..persistence import save_model
        return save_model(self, path)

    def export(self, path: Any, format: Optional[str] = None) -> Any:
        """Write a serving artefact with a dynamic batch axis (see :mod:`ctrkit.export`).

        ``format``: ``'onnx'``, ``'pt2'`` (a ``torch.export`` program) or the legacy
        ``'torchscript'``; None: the file's suffix (``.onnx``, ``.pt2``) decides.

        It takes the input tensors in ``get_feature_names(model.features)`` order (encoded,
        padded ids: ``model.input_columns(x)`` makes them from what ``predict`` takes) and
        returns probabilities of shape (B, 1).
        """
        from ..export import export_model
        return export_model(self, path, format=format)

    def example_batch(self, n: int = 2) -> Dict[str, torch.Tensor]:
        """A valid all-zeros batch of ``n`` rows (lengths 1), for summaries and tracing."""
        batch: Dict[str, torch.Tensor] = {}
        for f in self.features:
            if isinstance(f, DenseFeat):
                batch[f.name] = torch.zeros(n, f.dimension)
            elif isinstance(f, VarLenSparseFeat):
                batch[f.name] = torch.zeros(n, f.maxlen, dtype=torch.long)
                if f.length_name:
                    batch[f.length_name] = torch.ones(n, dtype=torch.long)
            else:
                batch[f.name] = torch.zeros(n, dtype=torch.long)
        return {k: v.to(self.device) for k, v in batch.items()}

    def summary(self, print_fn: Optional[Callable[[str], Any]] = None, verbose: int = 1):
        """Print and return the layers: every embedding table (rows x dim and the features that
        look it up), attention units, MLPs and the parameter counts.

        It reads the module tree (no forward pass), so layers that the forward calls
        functionally, such as the embedding lookups, are listed too.

        Args:
            print_fn: where the table goes (default ``print``); e.g. ``logger.info``.
            verbose: 0 returns the summary without printing it.

        Returns:
            A :class:`~ctrkit.models.summary.ModelSummary` (``total_params``,
            ``trainable_params``, ``rows``; ``str()`` gives the table).

        Example:
            >>> import ctrkit
            >>> from ctrkit import SparseFeat, VarLenSparseFeat
            >>> features = [SparseFeat("item", 10, embedding_dim=4),
            ...             VarLenSparseFeat(SparseFeat("hist_item", 10, embedding_dim=4), 5)]
            >>> s = ctrkit.build("din", features, dnn_hidden_units=(8,)).summary(verbose=0)
            >>> s.rows[0]
            ('embeddings.item', 'Embedding', '10 x 4  <- hist_item, item', 40)
            >>> s.rows[2]
            ('attention.unit', 'LocalActivationUnit', '16 -> 64 -> 16 -> 1 (Dice)', 2225)
        """
        from .summary import print_summary
        return print_summary(self, print_fn=print_fn, verbose=verbose)
