"""Parquet files (:class:`ctrkit.data.ParquetDataset`): read row group by row group.

Memory is bounded by the shuffle buffer, one row group being read and the batches read
ahead, whatever the number of rows. Rows are validated exactly as in-memory arrays are, one
row group at a time, so a bad value names its file, row group and row; each file's schema
is checked when the adapter is made, before the first step.

Epoch order (``shuffle=True``): files in an order drawn from the model's generator, the row
groups of each file in an order drawn from it too, then a shuffle buffer of
``shuffle_buffer`` rows seeded from it. Under DDP every rank draws the same file/row-group
order (the plans keep the generators in step) and reads only its own contiguous share of
that sequence of rows (rank ``r`` the rows the step bounds give it), so no rank reads the
whole data and every rank runs the same number of steps.
"""
from __future__ import annotations

import copy
import zlib
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ...errors import ConfigError, InputError
from ...data.padding import Ragged
from ...features import DenseFeat, VarLenSparseFeat
from .array_data_adapter import ArrayDataAdapter
from .data_adapter import Batch, DataAdapter
from .prefetch import Prefetcher


# ---------------------------------------------------------------------- batch helpers
def _slice(b: Batch, start: int, stop: int) -> Batch:
    return Batch({k: v[start:stop] for k, v in b.x.items()},
                 None if b.y is None else b.y[start:stop], None if b.w is None else b.w[start:stop])


def _cat(parts: List[Batch]) -> Batch:
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    return Batch({k: torch.cat([p.x[k] for p in parts]) for k in first.x},
                 None if first.y is None else torch.cat([p.y for p in parts]),
                 None if first.w is None else torch.cat([p.w for p in parts]))


def _take(b: Batch, idx: torch.Tensor) -> Batch:
    return Batch({k: v.index_select(0, idx) for k, v in b.x.items()},
                 None if b.y is None else b.y.index_select(0, idx),
                 None if b.w is None else b.w.index_select(0, idx))


def rebatch(chunks: Iterator[Batch], sizes: Sequence[int]) -> Iterator[Batch]:
    """Consecutive rows of ``chunks`` cut into batches of ``sizes`` (views where a batch lies
    in one chunk)."""
    pending: List[Batch] = []
    have, i = 0, 0
    for chunk in chunks:
        pending.append(chunk)
        have += chunk.size
        while i < len(sizes) and have >= sizes[i]:
            need, parts = sizes[i], []
            while need:
                head = pending[0]
                if head.size <= need:
                    parts.append(pending.pop(0))
                    need -= head.size
                else:
                    parts.append(_slice(head, 0, need))
                    pending[0] = _slice(head, need, head.size)
                    need = 0
            have -= sizes[i]
            i += 1
            yield _cat(parts)
    _check_exhausted(i, sizes, have)


def shuffle_rebatch(chunks: Iterator[Batch], sizes: Sequence[int], buffer: int,
                    generator: torch.Generator) -> Iterator[Batch]:
    """Batches of ``sizes`` drawn through a shuffle buffer of ``buffer`` rows.

    Rows are copied into a preallocated buffer (``buffer`` rows plus one batch); once it holds
    ``buffer`` rows plus the next batch, that batch is drawn uniformly from it (``generator``)
    and the buffer's last rows move into the freed slots. When the input ends, the remaining
    rows leave in one permuted order. Each row is copied about twice; memory is the buffer,
    one incoming chunk and one batch, whatever the number of rows (the tf.data design)."""
    buf: Optional[Batch] = None
    filled, i = 0, 0
    cap = buffer + (max(sizes) if len(sizes) else 0)

    def put(src: Batch, at: int, start: int, stop: int) -> None:
        for k, v in src.x.items():
            buf.x[k][at:at + stop - start] = v[start:stop]
        if src.y is not None:
            buf.y[at:at + stop - start] = src.y[start:stop]
        if src.w is not None:
            buf.w[at:at + stop - start] = src.w[start:stop]

    def move(dst: torch.Tensor, src: torch.Tensor) -> None:
        for v in list(buf.x.values()) + [t for t in (buf.y, buf.w) if t is not None]:
            v[dst] = v[src]

    for chunk in chunks:
        if buf is None:
            buf = Batch({k: torch.empty((cap,) + v.shape[1:], dtype=v.dtype)
                         for k, v in chunk.x.items()},
                        None if chunk.y is None else torch.empty(cap, dtype=chunk.y.dtype),
                        None if chunk.w is None else torch.empty(cap, dtype=chunk.w.dtype))
        pos = 0
        while pos < chunk.size:
            r = min(cap - filled, chunk.size - pos)
            put(chunk, filled, pos, pos + r)
            filled, pos = filled + r, pos + r
            while i < len(sizes) and filled >= buffer + sizes[i]:
                size = sizes[i]
                idx = torch.randperm(filled, generator=generator)[:size]
                yield _take(buf, idx)
                tail = filled - size  # fill the drawn slots with the buffer's last rows
                keep = torch.ones(size, dtype=torch.bool)
                keep[idx[idx >= tail] - tail] = False
                move(idx[idx < tail], tail + torch.nonzero(keep).reshape(-1))
                filled, i = tail, i + 1
    if buf is not None and i < len(sizes):
        order = torch.randperm(filled, generator=generator)
        start = 0
        while i < len(sizes) and start + sizes[i] <= filled:
            yield _take(buf, order[start:start + sizes[i]])
            start += sizes[i]
            i += 1
        filled -= start
    _check_exhausted(i, sizes, filled)


def _check_exhausted(i: int, sizes: Sequence[int], left: int) -> None:
    if i < len(sizes) or left:
        raise InputError(
            f"The Parquet files yielded {'fewer' if i < len(sizes) else 'more'} rows than "
            f"their footers announced (batch {i} of {len(sizes)}); were they modified while "
            f"training? Re-create the ParquetDataset after changing files.")


# ---------------------------------------------------------------------- schema
def _is_list(pa, t) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def _numeric(pa, t) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)


class ParquetDataAdapter(DataAdapter):
    """The Trainer's source for a :class:`ctrkit.data.ParquetDataset`.

    Args:
        dataset: the files and their label/weight columns.
        model: supplies features, task, ``encode_inputs`` and ``encoders``.
        groups: extra columns to carry (GAUC's group); need_y: labels required;
        what: the argument's name for error messages.

    Raises:
        InputError: a file lacks a needed column or stores one in the wrong layout or type
            (naming the file, the column and the fix); no rows at all.
    """

    splits_between_ranks = True

    def __init__(self, dataset, model, *, groups: Sequence[str] = (), need_y: bool = True,
                 what: str = "x") -> None:
        from ...data.parquet import import_pyarrow
        self.pa, self.pq = import_pyarrow()
        self.dataset, self.model, self.what = dataset, model, what
        self.need_y = need_y
        self.groups = tuple(groups) if need_y else ()
        if need_y and dataset.label is None:
            raise ConfigError(f"{what} is a ParquetDataset with label=None, but fit/evaluate "
                              f"need labels: ParquetDataset(paths, label='<column>').")
        #: the label column(s): one, or one per task of a multi-task model in task order
        self.labels = (() if not need_y else dataset.label if isinstance(dataset.label, tuple)
                       else (dataset.label,))
        tasks = getattr(model, "task_names", None)
        if len(self.labels) > 1 and len(self.labels) != len(tasks or ()):
            raise ConfigError(
                f"{what} is a ParquetDataset with label={list(self.labels)} ({len(self.labels)} "
                f"columns), but the model has "
                + (f"the tasks {list(tasks)}: give one label column per task, in that order."
                   if tasks else "one output: give one label column (or build the model with "
                   "task_names=...)."))
        self.has_targets = need_y
        self.has_weights = need_y and dataset.weight is not None
        self.units = dataset.units()
        self.row_range = (0, sum(u[2] for u in self.units))
        self.num_rows = self.row_range[1]
        if self.num_rows == 0:
            raise InputError(f"{what}: the Parquet files {dataset.files[:3]} hold no rows.")
        self.seqs = [f for f in model.features if isinstance(f, VarLenSparseFeat)]
        self._layout = [self._check_schema(i, path) for i, path in enumerate(dataset.files)]
        self._reader: Optional[Prefetcher] = None
        self.row_groups_read = 0  # this adapter's reads (tests check each rank reads its share)

    # ------------------------------------------------------------------ schema
    def _encoded(self, name: str) -> bool:
        """Whether ``name`` has a vocabulary: its embedding TABLE's (``hist_item`` uses
        ``item``'s; see :mod:`ctrkit.vocabulary`). ``encode_inputs`` applies the call's
        ``encoded=`` switch."""
        vocabularies = getattr(self.model, "vocabularies", None)
        if vocabularies is not None:
            return name in vocabularies()
        return name in (getattr(self.model, "encoders", None) or {})

    def _check_schema(self, index: int, path: str) -> Dict[str, Any]:
        """What to read from one file and how (padded/ragged sequences); raises on a
        mismatch, naming the file."""
        pa = self.pa
        from ...data.parquet import reading
        with reading(path):
            schema = self.pq.read_schema(path)
        types = {name: schema.field(name).type for name in schema.names}

        def fail(msg: str) -> None:
            raise InputError(f"{self.what}: file '{path}': {msg}")

        def need(name: str, why: str):
            if name not in types:
                fail(f"has no column '{name}' ({why}); its columns are {schema.names}.")
            return types[name]

        columns: List[str] = []
        padded: Dict[str, bool] = {}
        for f in self.model.features:
            t = need(f.name, f"feature '{f.name}'")
            columns.append(f.name)
            lenient = self._encoded(f.name) or getattr(f, "use_hash", False)
            if isinstance(f, DenseFeat):
                ok = _numeric(pa, t) if f.dimension == 1 else (
                    _is_list(pa, t) and _numeric(pa, t.value_type))
                if not ok:
                    fail(f"column '{f.name}' has type {t}, but DenseFeat '{f.name}' "
                         f"(dimension={f.dimension}) needs "
                         + ("a numeric column." if f.dimension == 1 else
                            f"a list column of {f.dimension} numbers per row."))
            elif isinstance(f, VarLenSparseFeat):
                if not _is_list(pa, t):
                    fail(f"column '{f.name}' has type {t}, but VarLenSparseFeat '{f.name}' needs "
                         f"a list column (one history per row).")
                if not (pa.types.is_integer(t.value_type) or lenient):
                    fail(f"column '{f.name}' holds {t.value_type} values, but sequence feature "
                         f"'{f.name}' takes integer ids; encode them first (or attach an "
                         f"encoder / declare use_hash=True).")
                padded[f.name] = bool(f.length_name) and f.length_name in types
                if padded[f.name]:
                    lt = types[f.length_name]
                    if not pa.types.is_integer(lt):
                        fail(f"length column '{f.length_name}' has type {lt}; it needs integers.")
                    columns.append(f.length_name)
                    if pa.types.is_fixed_size_list(t) and t.list_size != f.maxlen:
                        fail(f"column '{f.name}' holds {t.list_size} ids per row beside the length "
                             f"column '{f.length_name}' (the padded layout), but its maxlen is "
                             f"{f.maxlen}; pad to {f.maxlen} or write ragged lists without "
                             f"'{f.length_name}'.")
            else:
                if _is_list(pa, t):
                    fail(f"column '{f.name}' is a list column ({t}), but SparseFeat '{f.name}' "
                         f"takes one id per row; declare it as a VarLenSparseFeat or store one "
                         f"id per row.")
                if not (pa.types.is_integer(t) or pa.types.is_boolean(t) or lenient):
                    fail(f"column '{f.name}' has type {t}, but SparseFeat '{f.name}' takes integer "
                         f"ids; encode the values (ctrkit.data.CategoricalEncoder) or declare "
                         f"use_hash=True.")
        for role, name in ([("label", c) for c in self.labels]
                           + [("weight", self.dataset.weight if self.need_y else None)]):
            if name is None:
                continue
            t = need(name, f"the {role} column")
            if not _numeric(pa, t):
                fail(f"{role} column '{name}' has type {t}; it needs numbers.")
            columns.append(name)
        for g in self.groups:
            if g not in columns:
                t = need(g, "the group column of a group metric such as GAUC")
                if _is_list(pa, t):
                    fail(f"group column '{g}' is a list column ({t}); it needs one value per row.")
                columns.append(g)
        return {"columns": list(dict.fromkeys(columns)), "padded": padded, "types": types}

    def fingerprint(self) -> float:
        """The same number on every rank that was given the same files (names and rows)."""
        key = "|".join(f"{p.split('/')[-1]}" for p in self.dataset.files)
        return float(zlib.crc32(key.encode())) + float(self.num_rows)

    # ------------------------------------------------------------------ reading
    def _read(self, unit: Tuple[int, int, int], start: int = 0,
              stop: Optional[int] = None) -> Iterator[Batch]:
        """Rows ``start:stop`` of one row group, decoded ``read_rows`` rows at a time (so a
        large row group never sits decoded in memory at once), encoded and validated (errors
        name the file, the row group and the row inside it)."""
        index, group, n = unit
        stop = n if stop is None else stop
        path = self.dataset.files[index]
        layout = self._layout[index]
        from ...data.parquet import reading
        with reading(path, group):
            pf = self.pq.ParquetFile(path)
            batches = pf.iter_batches(batch_size=self.dataset.read_rows, row_groups=[group],
                                      columns=layout["columns"], use_threads=False)
        self.row_groups_read += 1
        offset = 0
        while True:
            with reading(path, group):  # a damaged page fails while it is decoded
                rb = next(batches, None)
            if rb is None:
                break
            lo, hi = offset, offset + rb.num_rows
            offset = hi
            if hi <= start:
                continue
            if lo >= stop:
                break
            try:
                chunk = self._convert(self.pa.Table.from_batches([rb]), layout)
            except InputError as e:
                where = f"row group {group}" + (f" (row {lo} on)" if lo else "")
                raise type(e)(f"In {self.what}, file '{path}', {where}: {e}") from e
            a, b = max(start, lo) - lo, min(stop, hi) - lo
            yield chunk if (a, b) == (0, chunk.size) else _slice(chunk, a, b)
        pf.close()

    def _column(self, table, name: str) -> np.ndarray:
        col = table.column(name).combine_chunks()
        f = next((g for g in self.model.features if g.name == name), None)
        categorical = f is not None and not isinstance(f, DenseFeat) and (
            self._encoded(name) or getattr(f, "use_hash", False))
        missing_label = len(self.labels) > 1 and name in self.labels  # null: NaN, no label
        if col.null_count and not missing_label and not (
                categorical and not _is_list(self.pa, col.type)):
            # a null categorical value is a missing value: the encoder or the hash maps it
            # (ctrkit.inputs.missing_mask), as it does in memory and in a JSON request
            row = int(np.flatnonzero(np.asarray(col.is_null()))[0])
            raise InputError(f"Column '{name}' is null at row {row}; fill missing values "
                             f"before writing (e.g. 0, the padding/unknown id).")
        if _is_list(self.pa, col.type):
            n = len(col)
            flat = col.flatten()
            return np.asarray(flat.to_numpy(zero_copy_only=False)).reshape(n, -1)
        return np.asarray(col.to_numpy(zero_copy_only=False))

    def _sequence(self, table, f: VarLenSparseFeat, padded: bool) -> Any:
        """One list column: a padded ``(n, maxlen)`` block (``padded``: the file has the length
        column), else the flat :class:`~ctrkit.data.padding.Ragged` lists, which the
        in-memory rules encode, pad and derive lengths from."""
        pa = self.pa
        col = table.column(f.name).combine_chunks()
        n = len(col)
        if col.null_count:
            row = int(np.flatnonzero(np.asarray(col.is_null()))[0])
            raise InputError(f"Sequence '{f.name}' is null at row {row}; store an empty list "
                             f"for a row without history.")
        if pa.types.is_fixed_size_list(col.type):
            values = col.flatten()
            offsets = np.arange(n + 1, dtype=np.int64) * col.type.list_size
        else:
            values = col.values
            offsets = np.asarray(col.offsets, dtype=np.int64)
        if values.null_count:
            raise InputError(f"Sequence '{f.name}' holds a null id; fill it (0 is padding).")
        flat = np.asarray(values.to_numpy(zero_copy_only=False))
        if not padded:
            return Ragged(flat, offsets)
        lens = np.diff(offsets)
        bad = np.flatnonzero(lens != f.maxlen)
        if len(bad):
            r = int(bad[0])
            raise InputError(
                f"Sequence '{f.name}' has {lens[r]} ids at row {r}, but the file also has "
                f"its length column '{f.length_name}', which means padded rows of "
                f"maxlen={f.maxlen}; pad every row to {f.maxlen}, or write ragged lists "
                f"without '{f.length_name}'.")
        return flat[offsets[0]:offsets[-1]].reshape(n, f.maxlen)

    def _convert(self, table, layout: Dict[str, Any]) -> Batch:
        # The columns as in memory (ragged lists flat), then the in-memory rules: the model's
        # encoders, the padding policy, derived length columns, every check.
        seqs = {f.name: f for f in self.seqs}
        raw = {name: self._sequence(table, seqs[name], layout["padded"][name])
               if name in seqs else self._column(table, name) for name in layout["columns"]}
        y = None
        if len(self.labels) == 1:
            y = raw.pop(self.labels[0])
        elif self.labels:  # one column per task, by the model's task names
            y = {t: np.asarray(raw.pop(c), dtype=np.float64)
                 for t, c in zip(self.model.task_names, self.labels)}
        w = raw.pop(self.dataset.weight) if self.has_weights else None
        cols = ArrayDataAdapter.from_arrays(self.model.features, self.model.task,
                                            self.model.encode_inputs(raw), y, w,
                                            groups=self.groups, need_y=self.need_y,
                                            check_weights=False)
        return Batch(cols.x.tensors, cols.y, cols.w)

    def _chunks(self, order: List[Tuple[int, int, int]], start: int, stop: int
                ) -> Iterator[Batch]:
        """Rows ``start:stop`` of the row groups in ``order`` (read whole, then cut)."""
        pos = 0
        for unit in order:
            lo, hi = pos, pos + unit[2]
            pos = hi
            if hi <= start or unit[2] == 0:
                continue
            if lo >= stop:
                break
            yield from self._read(unit, max(start, lo) - lo, min(stop, hi) - lo)

    def _stream(self, order, start: int, sizes: List[int],
                generator: Optional[torch.Generator]) -> Prefetcher:
        buffer = self.dataset.shuffle_buffer

        def make():
            chunks = self._chunks(order, start, start + sum(sizes))
            if generator is None or buffer == 0:
                return rebatch(chunks, sizes)
            return shuffle_rebatch(chunks, sizes, buffer, generator)
        reader = Prefetcher(make, self.dataset.prefetch)
        self._reader = reader
        return reader

    # ------------------------------------------------------------------ contract
    def _natural(self) -> List[Tuple[int, int, int]]:
        return list(self.units)

    def epoch_order(self, shuffle: bool, generator: torch.Generator
                    ) -> Tuple[List[Tuple[int, int, int]], Optional[torch.Generator]]:
        """The epoch's row-group order and shuffle-buffer generator (drawn from
        ``generator``: the same on every rank)."""
        if not shuffle:
            return self._natural(), None
        by_file: Dict[int, List[Tuple[int, int, int]]] = {}
        for u in self.units:
            by_file.setdefault(u[0], []).append(u)
        files = sorted(by_file)
        order: List[Tuple[int, int, int]] = []
        for fi in torch.randperm(len(files), generator=generator).tolist():
            groups = by_file[files[fi]]
            order += [groups[g] for g in torch.randperm(len(groups), generator=generator).tolist()]
        seed = int(torch.randint(0, 2 ** 62, (1,), generator=generator))
        return order, torch.Generator().manual_seed(seed)

    def train_batches(self, plan, shuffle: bool, generator: torch.Generator) -> Iterator[Batch]:
        order, buf_gen = self.epoch_order(shuffle, generator)
        if buf_gen is not None and plan.rank:
            buf_gen.manual_seed(buf_gen.initial_seed() + plan.rank)  # each rank its own mixing
        start, sizes = plan.share()
        reader = self._stream(order, start, sizes, buf_gen)

        def steps() -> Iterator[Batch]:
            try:
                for step, batch in enumerate(reader):
                    plan.local_bounds(step)  # in this thread: DDP's per-step loss scale
                    yield batch
            finally:
                reader.close()
        return steps()

    def batches(self, batch_size: int) -> Iterator[Batch]:
        lo, hi = self.row_range
        n = hi - lo
        sizes = [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
        reader = self._stream(self._natural(), lo, sizes, None)

        def run() -> Iterator[Batch]:
            try:
                yield from reader
            finally:
                reader.close()
        return run()

    def shard(self, rank: int, world_size: int) -> "ParquetDataAdapter":
        part = copy.copy(self)
        lo, hi = self.row_range
        n = hi - lo
        part.row_range = (lo + n * rank // world_size, lo + n * (rank + 1) // world_size)
        part.num_rows = part.row_range[1] - part.row_range[0]
        part._reader = None
        return part

    def prepare_regularizer(self, regularizer, model) -> None:
        from ...regularizers import Regularizer
        if type(regularizer).prepare is Regularizer.prepare:
            return  # nothing to count
        if not hasattr(regularizer, "prepare_streaming"):
            raise ConfigError(
                f"The '{type(regularizer).__name__}' regularizer prepares on all training "
                f"columns at once, which streamed data cannot give; implement "
                f"prepare_streaming(model, chunks, reduce) on it (as MBA does).")
        from ... import strategies as distributed
        rank, world = distributed.world()
        part = self.shard(rank, world)  # each rank counts its share; the counts are summed
        lo, hi = part.row_range
        chunks = (b.x for b in part._chunks(part._natural(), lo, hi))
        regularizer.prepare_streaming(model, chunks, distributed.all_reduce_sum)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
