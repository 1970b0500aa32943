"""History: records every epoch's logs; returned by ``fit``."""
from __future__ import annotations

import weakref
from typing import Any, Dict, List, Optional, Sequence

from ..registry import CALLBACKS
from .base import Callback


@CALLBACKS.register("history")
class History(Callback):
    """Records epoch logs: ``history.history['loss']`` is one float per epoch.

    ``fit`` adds one automatically and returns it; each ``fit`` call gets a fresh History.
    ``history.epoch`` holds the epoch indices (they continue from ``initial_epoch``) and
    ``history.params`` the fit parameters (``epochs``, ``steps``, ``batch_size``, ...).
    ``model.history`` is set to it when training begins (as in Keras), unless the model
    already has a ``history`` attribute of its own (which is left alone).

    Example:
        >>> import ctrkit
        >>> from ctrkit.datasets import make_synthetic
        >>> x, y, features = make_synthetic(n_rows=128, maxlen=4, embedding_dim=4)
        >>> model = ctrkit.build("base", features)
        >>> model.compile("adam")
        >>> history = model.fit(x, y, batch_size=64, epochs=3, verbose=0)
        >>> history.epoch, len(history.history["loss"])
        ([0, 1, 2], 3)
    """

    def __init__(self) -> None:
        super().__init__()
        self.history: Dict[str, List[float]] = {}
        self.epoch: List[int] = []

    # model.history -> History is a strong reference, History -> model a weak one: no cycle,
    # so a model is freed as soon as its last user reference goes (a cycle kept DDP-trained
    # models alive until interpreter shutdown, after the process group was gone).
    @property  # type: ignore[override]
    def model(self):
        ref = self.__dict__.get("_model_ref")
        return ref() if ref is not None else self.__dict__.get("_model_strong")

    @model.setter
    def model(self, model) -> None:
        self.__dict__["_model_ref"] = self.__dict__["_model_strong"] = None
        if model is not None:
            try:
                self.__dict__["_model_ref"] = weakref.ref(model)
            except TypeError:  # an object without weak-reference support
                self.__dict__["_model_strong"] = model

    def __getstate__(self) -> Dict[str, Any]:
        # a weak reference cannot be pickled: pickle the model itself (pickle keeps the cycle)
        state = dict(self.__dict__)
        state["_model_ref"], state["_model_strong"] = None, self.model
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        model = state.pop("_model_strong", None)
        self.__dict__.update(state)
        self.model = model

    def on_train_begin(self, logs=None) -> None:
        self.history, self.epoch = {}, []
        # As Keras: model.history is the last fit's History -- unless the model uses the name
        # for something of its own (a model's attribute is never overwritten).
        if self.model is not None and isinstance(getattr(self.model, "history", None),
                                                 (History, type(None))):
            self.model.history = self

    def state_dict(self) -> Dict[str, Any]:
        return {"history": {k: list(v) for k, v in self.history.items()}, "epoch": list(self.epoch)}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.history = {k: list(v) for k, v in state.get("history", {}).items()}
        self.epoch = list(state.get("epoch", []))

    def on_epoch_end(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)

    def plot(self, keys: Sequence[str] = ("loss",), path: Optional[str] = None):
        """Plot ``keys`` (and their ``val_`` twins) per epoch; save a PNG when ``path`` is given.

        Returns:
            the matplotlib ``Figure``.

        Raises:
            ImportError: matplotlib is not installed (``pip install ctrkit[plot]``).
            KeyError: a key that was never logged (lists the logged keys).
        """
        from ..plot import plot_history
        return plot_history(self, keys=keys, path=path)
