"""Parquet files as a training source that never has to fit in memory.

:class:`ParquetDataset` names the files (a file, a directory, a glob or a list of them) and
the label/weight columns; ``fit``/``evaluate``/``predict``/``explain`` read it row group by row
group through :class:`~ctrkit.training.data_adapters.parquet_data_adapter.ParquetDataAdapter`.
:func:`write_parquet` writes in-memory data in the layout it reads.

pyarrow is an optional extra (``pip install "ctrkit[parquet]"``), imported here on first use;
``import ctrkit`` never imports it.

Column layout the reader accepts (checked against every file's schema before the first step):

- a ``SparseFeat``: an integer column (or any column the model's encoder/``use_hash`` takes);
- a ``DenseFeat``: a numeric column, or a list column of ``dimension`` numbers per row;
- a ``VarLenSparseFeat``: a list column. **Ragged** (the file has no column named after the
  feature's ``length_name``): each row is the history in time order, oldest first; it is cut
  and padded to ``maxlen`` by :func:`ctrkit.data.padding.ragged_to_padded` (the most recent
  ``maxlen`` ids, left-aligned, 0-padded) and the lengths are derived. **Padded** (the file has
  the length column, as :func:`write_parquet` writes in-memory arrays): every row holds exactly
  ``maxlen`` ids and the length column says how many are valid.
"""
from __future__ import annotations

import contextlib
import glob as _glob
import os
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import ConfigError, DataNotFoundError, InputError

PathLike = Union[str, "os.PathLike[str]"]


def import_pyarrow():
    """``(pyarrow, pyarrow.parquet)``, or an error that gives the install command."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "Reading and writing Parquet needs pyarrow, an optional extra of ctrkit: "
            "pip install \"ctrkit[parquet]\" (or pip install pyarrow).") from e
    return pa, pq


@contextlib.contextmanager
def reading(path: PathLike, row_group: Optional[int] = None) -> Iterator[None]:
    """Turn pyarrow's errors while reading ``path`` into an InputError naming the file.

    Args:
        path: the Parquet file being read.
        row_group: the row group being read, when known (named in the message).

    Raises:
        InputError: pyarrow could not read the file (truncated, corrupt, not Parquet), or
            it has vanished.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> bad = Path(tempfile.mkdtemp()) / "bad.parquet"
        >>> _ = bad.write_bytes(b"PAR1 truncated")
        >>> with reading(bad):                                   # doctest: +ELLIPSIS
        ...     import_pyarrow()[1].read_schema(bad)
        Traceback (most recent call last):
        ...
        ctrkit.errors.InputError: Cannot read Parquet file '...bad.parquet': ...
    """
    pa, _ = import_pyarrow()
    try:
        yield
    except (pa.ArrowException, OSError) as e:
        where = f", row group {row_group}" if row_group is not None else ""
        if isinstance(e, FileNotFoundError):
            raise InputError(f"Parquet file '{path}'{where} has vanished (deleted or moved "
                             f"since the dataset listed its files); put it back, or build the "
                             f"ParquetDataset again without it.") from e
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(f"Cannot read Parquet file '{path}'{where}: {reason}. The file is "
                         f"truncated, corrupt or not Parquet; write it again (e.g. "
                         f"ctrkit.data.write_parquet) or leave it out of the file list.") from e


def resolve_paths(paths: Union[PathLike, Sequence[PathLike]]) -> List[str]:
    """The Parquet files named by ``paths``: a file, a directory (its ``*.parquet`` files,
    recursively, in sorted order), a glob pattern, or a list of those (kept in list order).

    Raises:
        DataNotFoundError: a path that matches no file.
        ConfigError: ``paths`` is empty or not a path.
    """
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not items:
        raise ConfigError("ParquetDataset needs at least one path (a file, a directory, a glob "
                          "or a list of them).")
    out: List[str] = []
    for item in items:
        if not isinstance(item, (str, os.PathLike)):
            raise ConfigError(f"ParquetDataset paths must be str or os.PathLike, got "
                              f"{type(item).__name__} {item!r}.")
        p = os.fspath(item)
        if os.path.isdir(p):
            found = sorted(str(f) for f in Path(p).rglob("*.parquet") if f.is_file())
            if not found:
                raise DataNotFoundError(f"Directory '{p}' holds no *.parquet files.")
            out += found
        elif os.path.isfile(p):
            out.append(p)
        elif _glob.has_magic(p):
            found = sorted(f for f in _glob.glob(p, recursive=True) if os.path.isfile(f))
            if not found:
                raise DataNotFoundError(f"The pattern '{p}' matches no file.")
            out += found
        else:
            raise DataNotFoundError(f"Parquet path '{p}' does not exist.")
    return out


class ParquetDataset:
    """Parquet files read in bounded memory by ``fit``, ``evaluate``, ``predict``, ``explain``.

    Pass it as ``x`` (with ``y=None``) or as ``validation_data``. Rows are read one row group
    at a time in a background thread, encoded with the model's encoders, and validated as
    in-memory arrays are (a bad value names the file, the row group and the row). Every
    file's schema is checked before the first step.

    Shuffling (``fit(shuffle=True)``), per epoch: the order of the files, then the order of
    the row groups inside each file, are permuted with the model's seeded generator; rows then
    pass through a shuffle buffer of ``shuffle_buffer`` rows. It is a *bounded* shuffle: a row
    mixes only with rows read within about ``shuffle_buffer`` rows plus one row group of it.
    With ``shuffle_buffer`` at least the number of rows it is a uniform permutation. With
    ``shuffle=False`` rows come in file order: the same batches as the arrays they were
    written from. Deterministic under the model's ``seed``.

    Args:
        paths: a file, a directory, a glob, or a list of them.
        label: the label column (``None``: no labels, e.g. data only to predict); for a
            multi-task model, a list of columns in ``model.task_names`` order
            (``["click", "buy"]``), where a null value is a missing label (NaN).
        weight: a sample-weight column, or None.
        shuffle_buffer: rows held for shuffling (memory: this many rows).
        prefetch: batches read ahead by the background reader thread (0: read inline).
        read_rows: rows decoded at a time inside a row group (bounds the decoding memory
            whatever the files' row-group size).

    Raises:
        ImportError: pyarrow is missing (gives the install command).
        DataNotFoundError: a path matches no file.
        ConfigError: bad arguments.

    Example:
        >>> import os, tempfile
        >>> import ctrkit
        >>> from ctrkit.data import ParquetDataset, write_parquet
        >>> from ctrkit.datasets import make_synthetic
        >>> x, y, features = make_synthetic(n_rows=200, maxlen=4, embedding_dim=4)
        >>> path = write_parquet(x, y, os.path.join(tempfile.mkdtemp(), "train.parquet"),
        ...                      row_group_size=64)
        >>> model = ctrkit.build("din", features)
        >>> model.compile("adam", metrics=["auc"])
        >>> history = model.fit(ParquetDataset(path), batch_size=64, epochs=2, verbose=0)
        >>> len(history.history["loss"])
        2
    """

    #: read batch by batch (see ctrkit.training.data_adapters.is_batch_source)
    ctrkit_batch_source = True

    def __init__(self, paths: Union[PathLike, Sequence[PathLike]],
                 label: Union[str, Sequence[str], None] = "label",
                 weight: Optional[str] = None, *, shuffle_buffer: int = 65536,
                 prefetch: int = 2, read_rows: int = 16384) -> None:
        if isinstance(label, (list, tuple)):
            if not label or len(set(label)) != len(label) or not all(
                    isinstance(c, str) and c for c in label):
                raise ConfigError(f"ParquetDataset label must be a column name, a list of "
                                  f"distinct column names (one per task) or None, got {label!r}.")
            label = label[0] if len(label) == 1 else tuple(label)
        for name, value in (("label", label if not isinstance(label, tuple) else None),
                            ("weight", weight)):
            if value is not None and (not isinstance(value, str) or not value):
                raise ConfigError(f"ParquetDataset {name} must be a column name or None, got "
                                  f"{value!r}.")
        if isinstance(shuffle_buffer, bool) or not hasattr(shuffle_buffer, "__index__") or \
                int(shuffle_buffer) < 0:
            raise ConfigError(f"shuffle_buffer must be an integer >= 0 (rows), got "
                              f"{shuffle_buffer!r}.")
        if isinstance(prefetch, bool) or not hasattr(prefetch, "__index__") or int(prefetch) < 0:
            raise ConfigError(f"prefetch must be an integer >= 0 (batches), got {prefetch!r}.")
        if isinstance(read_rows, bool) or not hasattr(read_rows, "__index__") or \
                int(read_rows) < 1:
            raise ConfigError(f"read_rows must be a positive integer, got {read_rows!r}.")
        import_pyarrow()
        self.files = resolve_paths(paths)
        self.label, self.weight = label, weight
        self.shuffle_buffer, self.prefetch = int(shuffle_buffer), int(prefetch)
        self.read_rows = int(read_rows)
        self._units: Optional[List[Tuple[int, int, int]]] = None

    def units(self) -> List[Tuple[int, int, int]]:
        """``(file index, row group, rows)`` of every row group, in file order (from the
        footers; read once)."""
        if self._units is None:
            _, pq = import_pyarrow()
            units = []
            for i, f in enumerate(self.files):
                with reading(f):
                    meta = pq.ParquetFile(f).metadata
                units += [(i, g, meta.row_group(g).num_rows) for g in range(meta.num_row_groups)]
            self._units = units
        return self._units

    def __len__(self) -> int:
        """Rows in all files (from the footers, nothing is read)."""
        return sum(u[2] for u in self.units())

    def __repr__(self) -> str:
        return (f"ParquetDataset({len(self.files)} file(s), label={self.label!r}, "
                f"weight={self.weight!r}, shuffle_buffer={self.shuffle_buffer})")


def _arrow_column(pa, name: str, arr: np.ndarray):
    """One Arrow column from a numpy column: 1-D as is, 2-D as fixed-size lists, an object
    array of sequences as (ragged) lists."""
    if arr.dtype == object:
        try:
            return pa.array([None if v is None else list(v) for v in arr])
        except (TypeError, pa.ArrowInvalid) as e:
            raise InputError(f"Column '{name}' holds objects pyarrow cannot store: {e}") from e
    if arr.ndim == 1:
        return pa.array(arr)
    if arr.ndim == 2:
        return pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(arr).reshape(-1)),
                                                 arr.shape[1])
    raise InputError(f"Column '{name}' has shape {arr.shape}; write 1-D columns, 2-D "
                     f"(rows, width) arrays or ragged lists.")


def _ragged_column(pa, name: str, pair: tuple):
    """A list column from flat ``values`` and ``N + 1`` ``offsets`` (vectorised)."""
    from .padding import check_offsets
    if len(pair) != 2:
        raise InputError(f"Column '{name}' is a tuple of {len(pair)} items; a ragged column is "
                         f"(values, offsets), as ctrkit.data.to_ragged returns it.")
    values = np.asarray(pair[0])
    offsets = check_offsets(pair[1], len(values), name)
    if offsets[0] != 0 or offsets[-1] != len(values):
        values = values[offsets[0]:offsets[-1]]
        offsets = offsets - offsets[0]
    if offsets[-1] < 2 ** 31:
        return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(values))
    return pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(values))


def write_parquet(x: Any, y: Any = None, path: PathLike = "data.parquet", *,
                  row_group_size: int = 65536, sample_weight: Any = None,
                  label: str = "label", weight: str = "weight",
                  compression: str = "snappy") -> str:
    """Write in-memory data as one Parquet file that :class:`ParquetDataset` reads back.

    1-D arrays become scalar columns, 2-D arrays (padded sequences, dense vectors)
    fixed-size list columns, object arrays of lists and ``(values, offsets)`` tuples (as
    :func:`ctrkit.data.to_ragged` returns them) ragged list columns; ``y`` becomes the
    column ``label``, ``sample_weight`` the column ``weight``. Ids stay int64. Padded
    sequences keep their length column, so they read back exactly (the padded layout); for
    the ragged layout write lists of each row's history and no length column.

    Args:
        x: dict of arrays (or a pandas DataFrame) keyed by column name.
        y: labels (one per row) or None.
        path: the file to write (its folder must exist).
        row_group_size: rows per row group (the reader's unit of reading and shuffling).
        sample_weight: weights (one per row) or None.
        label, weight: the column names for ``y`` and ``sample_weight``.
        compression: a Parquet codec (``'snappy'``, ``'zstd'``, ``'none'``, ...).

    Returns:
        the path written.

    Raises:
        InputError: columns of different lengths, a name taken twice, unstorable values.
        ConfigError: ``row_group_size`` < 1.

    Example:
        >>> import os, tempfile
        >>> import numpy as np
        >>> path = os.path.join(tempfile.mkdtemp(), "t.parquet")
        >>> write_parquet({"user": np.arange(3)}, np.array([0, 1, 0]), path) == path
        True
    """
    pa, pq = import_pyarrow()
    from ..inputs import _to_numpy
    if isinstance(row_group_size, bool) or not hasattr(row_group_size, "__index__") or \
            int(row_group_size) < 1:
        raise ConfigError(f"row_group_size must be a positive integer, got {row_group_size!r}.")
    if hasattr(x, "columns") and hasattr(x, "__getitem__"):
        x = {c: x[c] for c in x.columns}
    if not isinstance(x, dict):
        raise InputError(f"write_parquet takes x as a dict of arrays keyed by column name (or a "
                         f"pandas DataFrame), got {type(x).__name__}.")
    cols: Dict[str, Any] = {}
    for k, v in x.items():
        if isinstance(v, tuple):  # ragged (values, offsets), as ctrkit.data.to_ragged gives
            cols[str(k)] = _ragged_column(pa, str(k), v)
            continue
        arr = v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)
        if arr.dtype == object and arr.ndim == 2:  # a pandas column of equal-length lists
            arr = _to_numpy(v, str(k))
        cols[str(k)] = arr
    for name, extra in ((label, y), (weight, sample_weight)):
        if extra is None:
            continue
        if name in cols:
            raise InputError(f"x already has a column '{name}'; name the "
                             f"{'label' if name == label else 'weight'} column otherwise "
                             f"(write_parquet(..., {'label' if name == label else 'weight'}="
                             f"'...')).")
        arr = _to_numpy(extra, name)
        cols[name] = arr[:, 0] if arr.ndim == 2 and arr.shape[1] == 1 else arr
    lengths = {k: len(v) for k, v in cols.items()}
    if len(set(lengths.values())) > 1:
        raise InputError(f"write_parquet: columns have different row counts {lengths}; every "
                         f"column needs one entry per row.")
    table = pa.table({k: v if isinstance(v, pa.Array) else _arrow_column(pa, k, v)
                      for k, v in cols.items()})
    out = os.fspath(path)
    pq.write_table(table, out, row_group_size=int(row_group_size),
                   compression=None if compression == "none" else compression)
    return out


__all__ = ["ParquetDataset", "import_pyarrow", "reading", "resolve_paths", "write_parquet"]
