"""DeepCTR-Torch's model class names with DeepCTR-Torch's positional argument order.

``from ctrkit.models import DeepFM`` then ``DeepFM(linear_feature_columns,
dnn_feature_columns, use_fm=True, ...)`` means what it means in DeepCTR-Torch: each positional
argument binds to the parameter at the same place in DeepCTR-Torch's signature, and the model
built is ctrkit's registered one (``ctrkit.build(name, dnn_feature_columns, **keywords)``), so
it saves, loads and exports like any other. ``isinstance(model, DeepFM)`` holds for it.

A call that cannot be bound the DeepCTR way (a model that takes both lists given only one
positionally; more positional arguments than DeepCTR-Torch's signature has; a keyword given
twice) is refused with a :class:`~ctrkit.errors.ConfigError` that shows the keyword form.
Keywords that only ctrkit knows (``init``, ``embedding_regularizer``, ...) are passed through.
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

from ..errors import ConfigError
from ..registry import MODELS

_COMMON = ("init_std", "seed", "task", "device", "gpus")
_LINEAR_DNN = ("linear_feature_columns", "dnn_feature_columns")

#: DeepCTR-Torch 0.3.0's positional order (deepctr_torch/models/*.py); BST from DeepCTR (TF)
SIGNATURES: Dict[str, Tuple[str, Tuple[str, ...], Dict[str, Any]]] = {
    "DIN": ("din", ("dnn_feature_columns", "history_feature_list", "dnn_use_bn",
                    "dnn_hidden_units", "dnn_activation", "att_hidden_size", "att_activation",
                    "att_weight_normalization", "l2_reg_dnn", "l2_reg_embedding", "dnn_dropout",
                    *_COMMON), {}),
    "DIEN": ("dien", ("dnn_feature_columns", "history_feature_list", "gru_type",
                      "use_negsampling", "alpha", "use_bn", "dnn_hidden_units", "dnn_activation",
                      "att_hidden_units", "att_activation", "att_weight_normalization",
                      "l2_reg_dnn", "l2_reg_embedding", "dnn_dropout", *_COMMON), {}),
    "DeepFM": ("deepfm", (*_LINEAR_DNN, "use_fm", "dnn_hidden_units", "l2_reg_linear",
                          "l2_reg_embedding", "l2_reg_dnn", "init_std", "seed", "dnn_dropout",
                          "dnn_activation", "dnn_use_bn", "task", "device", "gpus"), {}),
    "WDL": ("wdl", (*_LINEAR_DNN, "dnn_hidden_units", "l2_reg_linear", "l2_reg_embedding",
                    "l2_reg_dnn", "init_std", "seed", "dnn_dropout", "dnn_activation",
                    "dnn_use_bn", "task", "device", "gpus"), {}),
    "DCN": ("dcn", (*_LINEAR_DNN, "cross_num", "cross_parameterization", "dnn_hidden_units",
                    "l2_reg_linear", "l2_reg_embedding", "l2_reg_cross", "l2_reg_dnn",
                    "init_std", "seed", "dnn_dropout", "dnn_activation", "dnn_use_bn", "task",
                    "device", "gpus"), {}),
    "DCNMix": ("dcnv2", (*_LINEAR_DNN, "cross_num", "dnn_hidden_units", "l2_reg_linear",
                         "l2_reg_embedding", "l2_reg_cross", "l2_reg_dnn", "init_std", "seed",
                         "dnn_dropout", "low_rank", "num_experts", "dnn_activation",
                         "dnn_use_bn", "task", "device", "gpus"),
               {"low_rank": 32, "num_experts": 4}),  # DeepCTR-Torch's DCNMix defaults
    "AutoInt": ("autoint", (*_LINEAR_DNN, "att_layer_num", "att_head_num", "att_res",
                            "dnn_hidden_units", "dnn_activation", "l2_reg_dnn",
                            "l2_reg_embedding", "dnn_use_bn", "dnn_dropout", *_COMMON), {}),
    "xDeepFM": ("xdeepfm", (*_LINEAR_DNN, "dnn_hidden_units", "cin_layer_size",
                            "cin_split_half", "cin_activation", "l2_reg_linear",
                            "l2_reg_embedding", "l2_reg_dnn", "l2_reg_cin", "init_std", "seed",
                            "dnn_dropout", "dnn_activation", "dnn_use_bn", "task", "device",
                            "gpus"), {}),
    "PNN": ("pnn", ("dnn_feature_columns", "dnn_hidden_units", "l2_reg_embedding",
                    "l2_reg_dnn", "init_std", "seed", "dnn_dropout", "dnn_activation",
                    "use_inner", "use_outter", "kernel_type", "task", "device", "gpus"), {}),
    "BST": ("bst", ("dnn_feature_columns", "history_feature_list"), {}),
}


def bind(port: str, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Dict[str, Any]:
    """DeepCTR-Torch's binding of ``port(*args, **kwargs)`` as keyword arguments.

    Args:
        port: a DeepCTR-Torch class name, a key of :data:`SIGNATURES`.
        args: the positional arguments, in DeepCTR-Torch's order.
        kwargs: the keyword arguments.

    Returns:
        every argument by name (ctrkit's defaults fill the rest).

    Raises:
        ConfigError: the call cannot be bound the DeepCTR-Torch way (the message shows the
            keyword form).

    Example:
        >>> bind("DeepFM", (["a"], ["a", "b"]), {"use_fm": False})
        {'linear_feature_columns': ['a'], 'dnn_feature_columns': ['a', 'b'], 'use_fm': False}
    """
    _, order, _ = SIGNATURES[port]
    keyword_form = (f"{port}({', '.join(f'{n}=...' for n in order[:2])}, ...)"
                    if order[1].endswith("_columns") or order[1].endswith("_list")
                    else f"{port}(dnn_feature_columns=..., ...)")
    if len(args) > len(order):
        raise ConfigError(f"{port} takes at most {len(order)} positional arguments in "
                          f"DeepCTR-Torch's order {list(order)}, got {len(args)}. Pass the "
                          f"rest by keyword: {keyword_form}.")
    bound = dict(zip(order, args))
    twice = sorted(set(bound) & set(kwargs))
    if twice:
        raise ConfigError(f"{port} got {twice} both by position and by keyword (DeepCTR-Torch's "
                          f"positional order is {list(order[:len(args)])}). Use the keyword "
                          f"form: {keyword_form}.")
    bound.update(kwargs)
    if order[:2] == _LINEAR_DNN and (("linear_feature_columns" in bound)
                                      != ("dnn_feature_columns" in bound)):
        given = "linear_feature_columns" if "linear_feature_columns" in bound else \
            "dnn_feature_columns"
        raise ConfigError(f"{port} takes two feature lists, linear_feature_columns then "
                          f"dnn_feature_columns (DeepCTR-Torch's order), but only {given} was "
                          f"given, so which part it is meant for is ambiguous. Pass both: "
                          f"{keyword_form} (linear_feature_columns=[] for no linear part), or "
                          f"ctrkit.build('{SIGNATURES[port][0]}', features).")
    if "dnn_feature_columns" not in bound:
        raise ConfigError(f"{port} needs dnn_feature_columns: {keyword_form}.")
    return bound


class _PortMeta(type):
    """Calling a port builds the registered ctrkit model; isinstance looks at that class."""

    _name: str

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        name, _, defaults = SIGNATURES[cls._name]
        bound = {**defaults, **bind(cls._name, args, kwargs)}
        features = bound.pop("dnn_feature_columns")
        from ..factory import build
        return build(name, features, **bound)

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, MODELS.get(SIGNATURES[cls._name][0]))


def _port(port: str) -> type:
    name, order, _ = SIGNATURES[port]
    call = ("features, features" if order[0] == "linear_feature_columns" else
            "features, ['item']" if order[1] == "history_feature_list" else "features")
    doc = (f"DeepCTR-Torch's ``{port}({', '.join(order[:3])}, ...)``: builds ctrkit's "
           f"``'{name}'`` model (:func:`ctrkit.build`), binding positional arguments in "
           f"DeepCTR-Torch's order {list(order)}. See :mod:`ctrkit.models.ports`.\n\n"
           f"Raises:\n    ConfigError: a call that cannot be bound the DeepCTR-Torch way.\n\n"
           f"Example:\n"
           f"    >>> from ctrkit import SparseFeat, VarLenSparseFeat\n"
           f"    >>> from ctrkit.models import {port}\n"
           f"    >>> features = [SparseFeat('item', 5, 4), VarLenSparseFeat(\n"
           f"    ...     SparseFeat('hist_item', 5, 4), 3, length_name='len')]\n"
           f"    >>> model = {port}({call})\n"
           f"    >>> isinstance(model, {port}), model.registered_name\n"
           f"    (True, '{name}')\n")
    return _PortMeta(port, (), {"_name": port, "__doc__": doc, "__module__": __name__})


DIN, DIEN, DeepFM, WDL, DCN, DCNMix, AutoInt, xDeepFM, PNN, BST = (
    _port(n) for n in ("DIN", "DIEN", "DeepFM", "WDL", "DCN", "DCNMix", "AutoInt", "xDeepFM",
                       "PNN", "BST"))

__all__: List[str] = list(SIGNATURES)
