"""One-file save and safe load of a model, and the atomic, code-free file I/O behind them.

A saved model is one file written with ``torch.save`` that holds only plain containers
(dict, list, tuple, str, int, float, bool, None) and tensors::

    {"format": "ctrkit-model", "format_version": 1, "ctrkit_version": "0.1.0",
     "torch_version": "...", "model": "din", "hparams": {...}, "features": [...],
     "encoders": {feature: {"type": ..., "state": ...}}, "state_dict": {...},
     "rng_state": ByteTensor}

It is read back with ``torch.load(..., weights_only=True)``, which refuses any pickled object
that is not such plain data, so loading a file from someone else cannot run code.

**Integrity.** The zip archive ``torch.save`` writes is sealed: its comment (the last bytes of
the file) holds ``ctrkit-sha256:`` and the SHA-256 of every byte before it, so a damaged
byte anywhere (zip headers, the pickled metadata, a weights or encoder tensor, the directory,
the digest itself) makes :func:`load_plain` raise :class:`SerializationError`, naming the
damaged member where the zip CRCs can tell. A file written before files were sealed still
loads, with a warning that it cannot be verified. The model is
rebuilt through the model registry from its name, hyperparameters and feature declarations,
then its weights (and buffers such as Dice's running statistics) are loaded strictly.

Writes go to a temporary file in the destination folder that replaces ``path`` with
``os.replace`` only once it is complete, so a crash mid-save never leaves a half file at
``path``.

Example:
    >>> model.save("din.ctrkit")                       # doctest: +SKIP
    >>> model = ctrkit.load("din.ctrkit")              # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import zipfile
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Union

import numpy as np
import torch

from .errors import ConfigError, CtrkitError, SerializationError
from .features import feature_from_dict, feature_to_dict
from .registry import ENCODERS, MODELS
from .utils.io import atomic_write

#: Version of the model file layout; a file with a larger number needs a newer ctrkit.
FORMAT_VERSION = 1
MODEL_FORMAT = "ctrkit-model"

PathLike = Union[str, "os.PathLike[str]"]
_SCALARS = (type(None), bool, int, float, str)


# ----------------------------------------------------------------------------- plain data
def to_plain(value: Any, where: str) -> Any:
    """Return ``value`` as plain data that ``torch.load(weights_only=True)`` reads back.

    Tuples stay tuples, numpy scalars become Python scalars, a ``torch.device`` becomes its
    string, tensors are kept (detached, on the CPU).

    Args:
        value: the value to check.
        where: what it is, for the error message (e.g. ``"hyperparameter 'dnn_activation'"``).

    Raises:
        SerializationError: ``value`` (or something inside it) is not plain data.
    """
    if type(value) in _SCALARS:
        return value
    for kind in (bool, int, float, str):  # subclasses (IntEnum, TorchVersion) -> the base type
        if isinstance(value, kind):
            return kind(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, torch.device):
        return str(value)
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, (list, tuple)):
        items = [to_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, (str, int)):
                raise SerializationError(f"{where} has the key {k!r} ({type(k).__name__}); "
                                         f"only str or int keys can be saved.")
            out[k] = to_plain(v, f"{where}[{k!r}]")
        return out
    raise SerializationError(
        f"{where} is {value!r} ({type(value).__name__}), which is not plain data and cannot be "
        f"saved safely. Pass it by its registered name instead (e.g. an activation as 'relu' or "
        f"'dice', a regularizer as 'l2'), or register it and pass the name.")


# ----------------------------------------------------------------------------- integrity
#: the zip comment of a sealed file: this tag, then the hex SHA-256 of every byte before it
DIGEST_TAG = b"ctrkit-sha256:"
_SEAL_LEN = len(DIGEST_TAG) + 64
_EOCD = b"PK\x05\x06"  # a zip's end-of-central-directory record (22 bytes + its comment)


class _SealingWriter:
    """Passes ``torch.save``'s bytes through to ``fh``, hashing them, holding back the last two
    (the zip comment's length), so that :meth:`seal` can set the comment to the digest."""

    def __init__(self, fh: Any) -> None:
        self.fh, self.digest, self.tail = fh, hashlib.sha256(), b""
        self.last20 = b""

    def write(self, data: Any) -> int:
        data = bytes(data)
        joined = self.tail + data
        out, self.tail = joined[:-2], joined[-2:]
        self.digest.update(out)
        self.fh.write(out)
        self.last20 = (self.last20 + out)[-20:]
        return len(data)

    def flush(self) -> None:
        self.fh.flush()

    def seal(self) -> None:
        # an empty comment: the archive ends with the EOCD record, whose last field is the
        # comment length (0); it becomes the seal's length, then the seal follows
        if self.tail != b"\x00\x00" or not self.last20.startswith(_EOCD):
            raise SerializationError("torch.save did not end its archive with an empty zip "
                                     "comment, so the file cannot be sealed (unexpected torch "
                                     "version); nothing was written.")
        length = _SEAL_LEN.to_bytes(2, "little")
        self.digest.update(length)
        self.fh.write(length + DIGEST_TAG + self.digest.hexdigest().encode())


def _write_sealed(obj: Any, fh: Any) -> None:
    writer = _SealingWriter(fh)
    torch.save(obj, writer)
    writer.seal()


def _member_meaning(name: str) -> str:
    base = name.split("/", 1)[-1]
    if base == "data.pkl":
        return "the pickled metadata: model name, hyperparameters, features, encoders"
    if base.startswith("data/"):
        return f"tensor storage {base[5:]}: weights, buffers or encoder arrays"
    return "torch's archive bookkeeping"


def _damaged_part(path: Path) -> str:
    """Which part of a file whose digest does not match is damaged, as far as zip can tell."""
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except Exception as e:  # noqa: BLE001  (zipfile raises many types on a broken archive)
        return f"its zip structure (headers or directory) is broken ({e})"
    if bad is not None:
        return f"the member {bad!r} ({_member_meaning(bad)}) fails its CRC"
    return "its zip headers, directory or recorded digest differ from what was written"


def _ends_with_seal(path: Path) -> bool:
    size = path.stat().st_size
    if size < _SEAL_LEN:
        return False
    with open(path, "rb") as fh:
        fh.seek(size - _SEAL_LEN)
        seal = fh.read()
    return seal.startswith(DIGEST_TAG) and all(c in b"0123456789abcdef" for c in seal[-64:])


def verify_file(path: PathLike) -> bool:
    """Check a saved file's seal (see the module docstring).

    Returns:
        True for a sealed file whose digest matches; False for a file written before ctrkit
        sealed its files (a zip with an empty comment, or a raw pickle), which cannot be
        verified.

    Raises:
        SerializationError: the file is damaged, naming the damaged part where it can.

    Example:
        >>> import os, tempfile
        >>> path = save_plain({"format": "demo"}, os.path.join(tempfile.mkdtemp(), "f.pt"))
        >>> verify_file(path)
        True
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(1)
        fh.seek(max(size - _SEAL_LEN - 22, 0))
        end = fh.read()
    if head == b"\x80" or (end[-22:-18] == _EOCD and end[-2:] == b"\x00\x00"):
        return False  # written before sealing: a raw pickle, or a zip with an empty comment
    seal = end[-_SEAL_LEN:]
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        left = size - _SEAL_LEN
        while left > 0:
            chunk = fh.read(min(left, 1 << 22))
            if not chunk:
                break
            digest.update(chunk)
            left -= len(chunk)
    if size < _SEAL_LEN or not seal.startswith(DIGEST_TAG):
        raise SerializationError(
            f"'{path}' is truncated or damaged: it does not end with the digest ctrkit seals its "
            f"files with; {_damaged_part(path)}. Restore the file from where it was saved (or "
            f"save the model again).")
    if seal != DIGEST_TAG + digest.hexdigest().encode():
        raise SerializationError(
            f"'{path}' is damaged: its content does not match the SHA-256 digest written with "
            f"it; {_damaged_part(path)}. Restore the file from where it was saved (or save the "
            f"model again).")
    return True


def save_plain(obj: Dict[str, Any], path: PathLike) -> Path:
    """``torch.save`` plain data + tensors to ``path`` atomically, sealed with its digest.

    Raises:
        SerializationError: ``obj`` holds something that is not plain data (nothing written).
    """
    obj = to_plain(obj, "The saved data")
    return atomic_write(path, lambda fh: _write_sealed(obj, fh))


def load_plain(path: PathLike, expected_format: str,
               max_version: int = FORMAT_VERSION) -> Dict[str, Any]:
    """Read a file written by :func:`save_plain` without unpickling any object.

    Args:
        path: the file.
        expected_format: the ``"format"`` tag the file must carry (``"ctrkit-model"``, ...).
        max_version: the newest ``format_version`` of that format this code reads.

    Raises:
        SerializationError: missing, truncated or corrupt file, a pickled object that is not
            plain data, another kind of file, or a format newer than this ctrkit reads.
    """
    path = Path(path)
    if not path.is_file():
        raise SerializationError(f"No file at '{path}'.")
    # a ctrkit file: whatever byte is damaged, say so first (the whole file is hashed once)
    sealed = verify_file(path) if _ends_with_seal(path) else None
    with open(path, "rb") as fh:
        head = fh.read(4)
    # torch.save writes a zip archive (b"PK\x03\x04"); older torch a raw pickle (b"\x80")
    if not head.startswith(b"PK\x03\x04") and not head.startswith(b"\x80"):
        what = "it is empty" if not head else (f"it is not a {expected_format} file (it was not "
                                                f"written by torch.save; it starts with {head!r})")
        raise SerializationError(f"Cannot read '{path}': {what}. Pass the file that "
                                 f"model.save() wrote.")
    if sealed is None:  # no intact seal at the end: truncated/damaged, or written before sealing
        sealed = verify_file(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for bad archives and refused pickles
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "weights only load failed" in str(e).lower() or "unsupported global" in str(e).lower():
            reason = ("it contains a pickled Python object that is not plain data, and loading "
                      "it could run code; ctrkit refuses it")
        raise SerializationError(
            f"Cannot read '{path}': {reason}. The file is truncated, corrupt, not written by "
            f"ctrkit, or unsafe.") from e
    if not isinstance(payload, dict) or payload.get("format") != expected_format:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise SerializationError(f"'{path}' is not a {expected_format} file (its format tag is "
                                 f"{found!r}).")
    version = payload.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise SerializationError(f"'{path}' has an invalid format_version {version!r}.")
    if version > max_version:
        raise SerializationError(
            f"'{path}' uses {expected_format} format version {version}, written by ctrkit "
            f"{payload.get('ctrkit_version', '?')}; this ctrkit "
            f"({_ctrkit_version()}) reads versions up to {max_version}. Upgrade ctrkit to "
            f"load it.")
    if not sealed:
        warnings.warn(f"'{path}' was written before ctrkit sealed its files with a digest, so "
                      f"damage to it cannot be detected; save it again to seal it.",
                      stacklevel=3)
    return payload


def _ctrkit_version() -> str:
    from .version import __version__
    return __version__


def _require(payload: Dict[str, Any], path: Path, key: str, kind: type) -> Any:
    value = payload.get(key)
    if not isinstance(value, kind):
        raise SerializationError(f"'{path}' is damaged: its '{key}' entry is "
                                 f"{type(value).__name__}, expected {kind.__name__}.")
    return value


def load_state_dict_checked(module: torch.nn.Module, state: Any, path: Path,
                            what: str = "weights") -> None:
    """``module.load_state_dict(state, strict=True)``, with a SerializationError naming ``path``."""
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SerializationError(f"'{path}' is damaged: its {what} are not a dict of tensors.")
    from .strategies import is_sharded
    try:
        if is_sharded(module):  # each rank copies its own shards out of the whole tables
            from .strategies.torchrec import load_full_state_dict
            load_full_state_dict(module, state)
        else:
            module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise SerializationError(
            f"The {what} in '{path}' do not fit the model they describe (tampered file, or a "
            f"model whose code changed since it was saved): {e}") from e


# ----------------------------------------------------------------------------- names
def registered_name_of(model: Any) -> str:
    """The model's registry name: ``model.registered_name``, else its class looked up in MODELS.

    Raises:
        SerializationError: the class is not registered, so a loader could not rebuild it.
    """
    name = getattr(model, "registered_name", None)
    if name and name in MODELS and MODELS.get(name) is type(model):
        return name
    for key, cls in MODELS.items():
        if cls is type(model):
            return key
    raise SerializationError(
        f"{type(model).__name__} is not in the model registry, so a saved file could not be "
        f"rebuilt from its name. Register it with @ctrkit.register_model('<name>').")


def _encoder_type(enc: Any, feature: str) -> str:
    for key, cls in ENCODERS.items():
        if cls is type(enc):
            return key
    module = type(enc).__module__
    if module == "ctrkit" or module.startswith("ctrkit."):
        return f"{module}:{type(enc).__qualname__}"
    raise SerializationError(
        f"The encoder of feature '{feature}' is a {type(enc).__name__}, which is neither a "
        f"ctrkit class nor registered, so a loader could not rebuild it. Register its class "
        f"with @ctrkit.registry.ENCODERS.register('<name>').")


def _encoder_class(type_name: Any, feature: str, path: Path) -> Any:
    if not isinstance(type_name, str):
        raise SerializationError(f"'{path}' is damaged: the encoder of '{feature}' has no type.")
    if type_name in ENCODERS:
        return ENCODERS.get(type_name)
    module, _, qualname = type_name.partition(":")
    # Only classes of the installed ctrkit package are imported by name; never anything else.
    if qualname and (module == "ctrkit" or module.startswith("ctrkit.")):
        try:
            obj: Any = importlib.import_module(module)
            for part in qualname.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError):
            obj = None
        if isinstance(obj, type) and hasattr(obj, "from_dict"):
            return obj
    raise SerializationError(
        f"'{path}' holds an encoder of type {type_name!r} for feature '{feature}', which is not "
        f"registered here. Import the package that registers it (ctrkit.registry.ENCODERS) "
        f"before loading.")


# ----------------------------------------------------------------------------- save / load
def model_payload(model: Any, state: Optional[Dict[str, torch.Tensor]] = None
                  ) -> Dict[str, Any]:
    """Everything needed to rebuild ``model`` and predict with it, as plain data + tensors.

    ``state`` replaces ``model.state_dict()`` (e.g. the gathered state of sharded tables).

    Raises:
        SerializationError: a hyperparameter, feature or encoder cannot be saved as plain data,
            or the model class is not registered.
    """
    name = registered_name_of(model)
    hparams = {k: to_plain(v, f"Hyperparameter '{k}' of model '{name}'")
               for k, v in model.hparams.items()}
    try:
        features = [feature_to_dict(f) for f in model.features]
    except ConfigError as e:
        raise SerializationError(str(e)) from e
    encoders = {}
    known = {f.name for f in model.features}
    known |= set(getattr(getattr(model, "embeddings", None), "table_of", {}).values())
    for feat, enc in (getattr(model, "encoders", None) or {}).items():
        if feat not in known:
            raise SerializationError(f"model.encoders has an encoder for '{feat}', which is not a "
                                     f"feature or embedding table of the model "
                                     f"({sorted(known)}).")
        encoders[feat] = {"type": _encoder_type(enc, feat),
                          "state": to_plain(enc.to_dict(), f"The encoder of feature '{feat}'")}
    if encoders and hasattr(model, "vocabularies"):
        try:
            model.vocabularies()  # one vocabulary per table, each fitting its table
        except ConfigError as e:
            raise SerializationError(f"Cannot save: {e}") from e
    return {
        "max_oov_fraction": float(getattr(model, "max_oov_fraction", 0.5)),
        "format": MODEL_FORMAT, "format_version": FORMAT_VERSION,
        "ctrkit_version": _ctrkit_version(), "torch_version": torch.__version__,
        "model": name, "hparams": hparams, "features": features, "encoders": encoders,
        "state_dict": {k: v.detach().cpu().clone()
                       for k, v in (model.state_dict() if state is None else state).items()},
        "rng_state": model.rng.get_state(),
    }


def save_model(model: Any, path: PathLike) -> Path:
    """Write ``model`` to the single file ``path`` (atomically). See the module docstring.

    A model whose tables are sharded over processes (``strategy='torchrec'``) is saved whole:
    every rank must call ``save``; the shards are gathered and rank 0 writes the file, which
    ``ctrkit.load`` reads on one process.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        SerializationError: something about the model cannot be saved as plain data (nothing is
            written then).

    Example:
        >>> import os, tempfile, torch, ctrkit
        >>> from ctrkit import SparseFeat
        >>> model = ctrkit.build("base", [SparseFeat("user", 3)])
        >>> path = save_model(model, os.path.join(tempfile.mkdtemp(), "m.ctrkit"))  # model.save
        >>> payload = torch.load(path, weights_only=True)      # plain data, no pickled code
        >>> payload["model"], [f["name"] for f in payload["features"]]
        ('base', ['user'])
    """
    from . import strategies as distributed
    if getattr(getattr(model, "embeddings", None), "deferred", False):
        raise SerializationError(
            "This model's embedding tables were deferred (built inside sharded_init()) and do "
            "not exist yet, so there is nothing to save; fit it with strategy='torchrec' under "
            "torchrun first.")
    if not distributed.is_sharded(model):
        return save_plain(model_payload(model), path)
    model_payload(model, {})  # check the plain data on every rank before the collective
    state = distributed.model_state(model)
    if state is None:  # not rank 0: it sent its shards
        return Path(path)
    return save_plain(model_payload(model, state), path)


def load_model(path: PathLike, device: Any = None) -> Any:
    """Rebuild a model saved with :func:`save_model`, ready to ``predict`` (``compile`` it to
    train further).

    Args:
        path: the file.
        device: where to put the model; None keeps the saved device, or the CPU when the saved
            device is CUDA and CUDA is not available here.

    Returns:
        the model with its saved encoders attached, predicting exactly as when it was saved.

    Raises:
        SerializationError: the file is missing, truncated, tampered, unsafe or newer than this
            ctrkit; or it names a model or encoder that is not registered here.

    Example:
        >>> import os, tempfile, ctrkit
        >>> from ctrkit import SparseFeat
        >>> path = os.path.join(tempfile.mkdtemp(), "m.ctrkit")
        >>> _ = ctrkit.build("base", [SparseFeat("user", 3)]).save(path)
        >>> model = load_model(path)                                # ctrkit.load(path)
        >>> model.registered_name, [f.name for f in model.features]
        ('base', ['user'])
    """
    path = Path(path)
    payload = load_plain(path, MODEL_FORMAT)
    name = _require(payload, path, "model", str)
    hparams = dict(_require(payload, path, "hparams", dict))
    feature_dicts = _require(payload, path, "features", list)
    encoder_dicts = _require(payload, path, "encoders", dict)
    if name not in MODELS:
        raise SerializationError(f"'{path}' holds a model '{name}', which is not registered here "
                                 f"(registered: {MODELS.list()}). Import the plug-in that "
                                 f"registers it before loading.")
    if device is not None:
        hparams["device"] = str(device)
    elif str(hparams.get("device", "cpu")).startswith("cuda") and not torch.cuda.is_available():
        warnings.warn(f"'{path}' was saved on {hparams['device']}; CUDA is not available, so the "
                      f"model is loaded on the CPU.", stacklevel=2)
        hparams["device"] = "cpu"
    from .factory import build
    try:
        features = [feature_from_dict(d) for d in feature_dicts]
        model = build(name, features, **hparams)
    except (CtrkitError, TypeError, KeyError, ValueError) as e:
        raise SerializationError(f"'{path}' describes a model that cannot be rebuilt "
                                 f"(tampered, or saved by an incompatible version): {e}") from e
    load_state_dict_checked(model, payload.get("state_dict"), path)
    rng_state = payload.get("rng_state")
    if isinstance(rng_state, torch.Tensor):
        model.rng.set_state(rng_state)
    encoders = {}
    for feat, d in encoder_dicts.items():
        if not isinstance(d, dict):
            raise SerializationError(f"'{path}' is damaged: the encoder of '{feat}' is not a dict.")
        cls = _encoder_class(d.get("type"), feat, path)
        try:
            encoders[feat] = cls.from_dict(d.get("state"))
        except (CtrkitError, TypeError, KeyError, ValueError) as e:
            raise SerializationError(f"'{path}': the encoder of feature '{feat}' cannot be "
                                     f"rebuilt: {e}") from e
    model.encoders = encoders
    oov = payload.get("max_oov_fraction")
    if isinstance(oov, float):
        model.max_oov_fraction = oov
    return model


__all__ = ["FORMAT_VERSION", "MODEL_FORMAT", "save_model", "load_model", "model_payload",
           "atomic_write", "save_plain", "load_plain", "to_plain", "registered_name_of",
           "load_state_dict_checked", "verify_file", "DIGEST_TAG"]
