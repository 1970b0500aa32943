"""The Keras methods of every model: ``compile``, ``fit``, ``evaluate``, ``predict`` (and
``adapt``), as a mixin the model class takes, as Keras's ``Model(Trainer, Layer)``.

:class:`~ctrkit.models.base.BaseModel` is ``KerasMethods`` plus ``nn.Module``: the module
holds the network, these methods encode the inputs and hand them to the model's
:class:`~ctrkit.training.trainer.Trainer` (made by ``compile``).
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

import torch

from ..callbacks import CallbackList, History, check_callbacks
from ..errors import ConfigError
from ..features import DenseFeat
from .data_adapters import get_data_adapter, is_batch_source
from .trainer import Trainer, check_verbose, predict_logits, require_trainer


class KerasMethods:
    """``compile`` / ``fit`` / ``evaluate`` / ``predict`` / ``adapt`` of a model (mixed into
    :class:`~ctrkit.models.base.BaseModel`; see there for the model's other methods)."""

    def compile(self, optimizer: Any = "adam", loss: Any = "binary_crossentropy",
                metrics: Optional[Sequence[Any]] = None, lr: Optional[float] = None,
                clipnorm: Optional[float] = None, gauc_group: Optional[str] = None,
                strategy: Optional[str] = None, learning_rate: Optional[float] = None,
                loss_weights: Any = None, dtype_policy: Any = None,
                jit_compile: Any = "auto") -> None:
        """Choose optimizer, loss and metrics (names or objects). See :class:`Trainer`.

        ``learning_rate`` is Keras's name for ``lr`` (give one of them). Metric and loss names
        accept the aliases DeepCTR-Torch and Keras users write (``'acc'``,
        ``'binary_accuracy'``, ``'mean_squared_error'``, ...); a metric is logged under the
        name it was given. ``strategy=None`` trains data-parallel when the script is launched
        with torchrun (``'ddp'`` demands it); see :mod:`ctrkit.strategies`.

        A multi-task model (``model.task_names``) takes ``loss``, ``loss_weights`` and
        ``metrics`` as one value for all tasks, a dict keyed by task name, or a list in task
        order (see :class:`~ctrkit.training.multitask.MultiTaskTrainer`).

        ``dtype_policy``: ``'mixed_bfloat16'`` (or ``'mixed_float16'`` on CUDA) computes the
        forward in 16 bits with float32 weights, losses and metrics, for training and
        prediction; None takes the global policy (``'float32'`` unless
        :func:`ctrkit.mixed_precision.set_global_policy` changed it).

        ``jit_compile`` (Keras's argument): ``'auto'`` and False run eagerly; True is refused,
        since ``torch.compile`` did not pay for itself here (see ``docs/performance.md``).

        Raises:
            ConfigError: ``lr`` and ``learning_rate`` both given with different values;
                ``loss_weights`` for a model with one output; ``jit_compile=True``.
        """
        if jit_compile is True:
            raise ConfigError(
                "compile(jit_compile=True) is not supported: wrapping the steps in "
                "torch.compile gave the same results but took 2-3 minutes to compile DIN or "
                "the base model on a 2-core CPU (docs/performance.md), more than it saves on "
                "most runs. Pass jit_compile='auto' or False (the eager steps, which are "
                "already fused by hand where it pays).")
        if jit_compile not in ("auto", False, None):
            raise ConfigError(f"jit_compile must be 'auto', False or True, got {jit_compile!r}.")
        if learning_rate is not None:
            if lr is not None and float(lr) != float(learning_rate):
                raise ConfigError(f"compile got lr={lr!r} and learning_rate={learning_rate!r}; "
                                  f"they are the same setting, pass only one.")
            lr = learning_rate
        if self.task_names is not None:
            from ..training.multitask import MultiTaskTrainer
            self.trainer = MultiTaskTrainer(self, optimizer, loss, metrics, lr=lr,
                                            clipnorm=clipnorm, gauc_group=gauc_group,
                                            strategy=strategy, loss_weights=loss_weights,
                                            dtype_policy=dtype_policy)
            return
        if loss_weights is not None:
            raise ConfigError(f"loss_weights={loss_weights!r} weighs the tasks of a "
                              f"multi-task model, but this model has one output; drop it "
                              f"(or build the model with task_names=...).")
        if self.task == "regression" and loss == "binary_crossentropy":
            loss = "mse"
        self.trainer = Trainer(self, optimizer, loss, metrics, lr=lr, clipnorm=clipnorm,
                               gauc_group=gauc_group, strategy=strategy,
                               dtype_policy=dtype_policy)

    def _dense_columns(self, x: Any) -> Dict[str, torch.Tensor]:
        """The raw values of the dense features that declare a transform, validated."""
        from ..inputs import Columns, RawColumns, _as_mapping, prepare_inputs
        feats = [f for f in self.features if isinstance(f, DenseFeat) and f.transform]
        if isinstance(x, Columns):
            return {f.name: x[f.name] for f in feats}
        data = x.data if isinstance(x, RawColumns) else _as_mapping(self.features, x)
        return prepare_inputs(feats, data).tensors

    def adapt(self, x: Any) -> Any:
        """Fit the dense transforms (``DenseFeat(transform=...)``) on training inputs ``x``.

        ``fit`` calls it on its training rows when the transforms were never adapted; call it
        yourself before training from a batch source (Parquet, a generator) or to adapt on
        other data. Adapting again replaces the statistics (the weights were trained on the
        old ones).

        Args:
            x: in-memory inputs as for :meth:`predict` (only the transformed dense columns are
                read).

        Returns:
            self.

        Raises:
            InputError: bad dense values (e.g. ``<= -1`` under ``log1p``).

        Example:
            >>> import ctrkit, numpy as np
            >>> from ctrkit import DenseFeat, SparseFeat
            >>> m = ctrkit.build("wdl", [SparseFeat("u", 3), DenseFeat("n", transform="normalize")])
            >>> float(m.adapt({"u": [1, 2], "n": [1.0, 3.0]}).dense_transforms.by_index[0].mean)
            2.0
        """
        if self.dense_transforms is not None:
            self.dense_transforms.adapt(self._dense_columns(x))
        return self

    def fit(self, x=None, y=None, batch_size: Optional[int] = None, epochs: int = 1,
            verbose: int = 1, initial_epoch: int = 0, validation_split: float = 0.0,
            validation_data=None, shuffle: bool = True, callbacks=None,
            sample_weight=None, steps_per_epoch: Optional[int] = None,
            validation_steps: Optional[int] = None, encoded: Optional[bool] = None,
            validation_freq: int = 1) -> History:
        """Train; returns a :class:`History` (``history.history['loss']``: one float/epoch).

        Calling ``fit`` again continues from the current weights and optimizer state.
        ``validation_split`` holds out the *last* fraction of rows, before shuffling.
        ``encoded``: None takes raw values when the model carries vocabularies
        (``model.encoders``) and ids otherwise; True: ``x`` (and ``validation_data``) hold
        ids; False: raw values (see :mod:`ctrkit.vocabulary`).
        ``validation_freq=N`` validates after every N-th epoch only (epochs N, 2N, ...; as
        Keras); callbacks watching a ``val_*`` key skip the epochs without validation.

        ``x`` may also be a batch source (with ``y=None``): a
        :class:`ctrkit.data.ParquetDataset`, or an iterable (generator, DataLoader) of
        ``(x_batch, y_batch[, w_batch])``; ``steps_per_epoch`` batches make an epoch (Keras
        semantics; default: one pass). See ``docs/streaming.md``.

        Raises:
            NotCompiledError: ``compile`` was not called.
            InputError: bad data (nothing is trained then).
        """
        trainer = require_trainer(self)
        if self.dense_transforms is not None and not self.dense_transforms.adapted:
            self._adapt_on_training_rows(x, validation_split)
        with self._encoding(encoded) as encoded:
            ex = self.encode_inputs(x, encoded)
            if (isinstance(validation_data, (tuple, list)) and validation_data
                    and not is_batch_source(validation_data)):
                # the training x itself stays the same object (the leakage check skips it)
                vx = validation_data[0]
                validation_data = (ex if vx is x else self.encode_inputs(vx, encoded),
                                   *validation_data[1:])
            return trainer.fit(
                ex, y, batch_size=batch_size, epochs=epochs,
                verbose=verbose, initial_epoch=initial_epoch, validation_split=validation_split,
                validation_data=validation_data, shuffle=shuffle, callbacks=callbacks,
                sample_weight=sample_weight, steps_per_epoch=steps_per_epoch,
                validation_steps=validation_steps, validation_freq=validation_freq)

    def _check_dense(self, x: Any) -> None:
        """Unadapted transforms are refused; in-memory raw dense values far outside the
        training range are counted and reported (a DataRangeWarning)."""
        if self.dense_transforms is None:
            return
        if x is None or is_batch_source(x):
            for t in self.dense_transforms.by_index:
                if not bool(t.adapted):
                    t.check(torch.zeros(0, 1))  # raises NotFittedError naming the feature
            return
        self.dense_transforms.check(self._dense_columns(x))

    def _adapt_on_training_rows(self, x: Any, validation_split: Any) -> None:
        if x is None or is_batch_source(x):
            raise ConfigError(
                "The model's dense transforms (DenseFeat(transform=...)) were never adapted, "
                "and fit reads a batch source: call model.adapt(x_sample) with in-memory "
                "training rows first (e.g. a large sample of the Parquet files as a DataFrame).")
        cols = self._dense_columns(x)
        n = len(next(iter(cols.values())))
        split = float(validation_split or 0.0)
        keep = int(n * (1.0 - split)) if 0.0 < split < 1.0 else n  # as the trainer holds out
        self.dense_transforms.adapt({k: v[:keep] for k, v in cols.items()})

    def evaluate(self, x, y=None, batch_size: int = 256, sample_weight=None, verbose: int = 0,
                 callbacks=None, steps: Optional[int] = None,
                 encoded: Optional[bool] = None) -> Dict[str, float]:
        """``{'loss': ..., <metric>: ...}`` over all rows of ``x`` (arrays with ``y``, or a
        batch source with ``y=None``; ``steps`` batches of an iterable, default all;
        ``encoded`` as in :meth:`fit`)."""
        trainer = require_trainer(self)
        self._check_dense(x)
        with self._encoding(encoded) as encoded:
            return trainer.evaluate(self.encode_inputs(x, encoded), y, batch_size=batch_size,
                                    sample_weight=sample_weight, verbose=verbose,
                                    callbacks=callbacks, steps=steps)

    def predict(self, x, batch_size: int = 256, callbacks=None,
                steps: Optional[int] = None, encoded: Optional[bool] = None,
                verbose: int = 0, as_dict: bool = False) -> Any:
        """Predictions as a float64 numpy array of shape (N, 1), as DeepCTR returns them
        (probabilities for ``task='binary'``). Runs in eval mode without autograd.

        ``x`` may be a batch source (a :class:`ctrkit.data.ParquetDataset`, an iterable of
        ``x_batch`` or ``(x_batch, ...)``); rows come back in the order it yields them.
        ``encoded`` as in :meth:`fit`: by default raw values when the model carries
        vocabularies, ids otherwise. ``verbose`` (Keras's argument, 0, 1 or 2) is checked,
        but predict prints nothing at any verbosity.

        A multi-task model returns (N, T) in ``model.task_names`` order (DeepCTR-Torch's
        form); ``as_dict=True`` returns ``{task: (N,) array}`` instead.

        Raises:
            ConfigError: ``as_dict=True`` for a model with one output."""
        check_verbose(verbose)
        if as_dict and self.task_names is None:
            raise ConfigError("predict(as_dict=True) returns one array per task of a "
                              "multi-task model; this model has one output.")
        if isinstance(batch_size, bool) or int(batch_size) < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}.")
        self._check_dense(x)
        with self._encoding(encoded) as encoded:
            data = self.input_source(x, steps=steps, encoded=encoded)
            try:
                cbs = CallbackList(check_callbacks(callbacks))
                cbs.set_model(self)
                cbs.on_predict_begin()
                logits = predict_logits(self, data, int(batch_size), cbs)
                cbs.on_predict_end()
            finally:
                data.close()
        if self.task_names is not None:
            from ..tasks import as_task_dict
            pred = self.head.output(logits.double()).numpy()
            return as_task_dict(pred, self.task) if as_dict else pred
        return self.head.output(logits.double()).numpy().reshape(-1, 1)

    def input_source(self, x, steps: Optional[int] = None, encoded: Optional[bool] = None):
        """``x`` as a source of validated batches without labels (predict/explain); the
        caller closes it. ``encoded`` as in :meth:`fit`; a batch source is encoded batch by
        batch as it is read, so read it inside ``with self._encoding(encoded):``."""
        return get_data_adapter(self, self.encode_inputs(x, encoded), need_y=False,
                                steps=steps, what="x")


__all__ = ["KerasMethods"]
