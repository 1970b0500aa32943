"""MovieLens-100K in the GroupLens layout, and the CTR protocol ctrkit benchmarks it with.

The data is never shipped with ctrkit: pass its folder (holding ``u.data``, ``u.item``,
``u.user``, ``u.genre``) as ``path`` or set ``CTRKIT_ML100K``.

Protocol of :func:`movielens_ctr` (used by ``benchmarks/movielens_100k.py`` and
``python -m ctrkit --data PATH``):

- label: ``rating >= 4``;
- features: user, movie, the movie's genre, the user's gender/age bucket/occupation;
- history: the user's **positively rated** movies with a strictly earlier timestamp
  (same-second ratings are not history of each other), ordered by (time, movie), the last
  ``maxlen``, with their genres;
- genre: a movie with several genre flags takes its *first* flag in ``u.genre`` order
  (``unknown`` < Action < Adventure < ...), so every movie has one genre id;
- test: each user's last ``test_last_k`` ratings (by time, then movie id);
- validation: each user's last ``val_last_k`` ratings *of the training part*: never the test set.
  Histories are built from the whole log, which is leak-free because a history only holds
  strictly earlier events (a test rating's history may contain earlier test-period positives,
  as it would online).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ..errors import DataNotFoundError, InputError
from ..features import Feature

ENV_VAR = "CTRKIT_ML100K"
FILES = ("u.data", "u.item", "u.user", "u.genre")
N_GENRES = 19


def movielens_path(path: Optional[os.PathLike] = None) -> Path:
    """The MovieLens-100K folder from ``path`` or ``$CTRKIT_ML100K``, with every file present.

    Raises:
        DataNotFoundError: no path given and the variable unset, the folder missing, or a file
            missing (each missing file named).

    Example:
        >>> movielens_path("/data/ml-100k")          # doctest: +SKIP
        PosixPath('/data/ml-100k')
        >>> movielens_path("/no/such/folder")
        Traceback (most recent call last):
        ...
        ctrkit.errors.DataNotFoundError: MovieLens-100K folder '/no/such/folder' does not exist; ...
    """
    if path is None:
        path = os.environ.get(ENV_VAR)
        if not path:
            raise DataNotFoundError(
                f"No MovieLens-100K folder given: pass path=... or set {ENV_VAR} to the folder "
                f"holding {list(FILES)} (GroupLens layout).")
    folder = Path(path)
    if not folder.is_dir():
        raise DataNotFoundError(f"MovieLens-100K folder '{folder}' does not exist; point the "
                                f"path or {ENV_VAR} at the folder holding {list(FILES)}.")
    missing = [f for f in FILES if not (folder / f).is_file()]
    if missing:
        raise DataNotFoundError(f"MovieLens-100K folder '{folder}' lacks {missing}; it needs "
                                f"{list(FILES)} in the GroupLens layout.")
    return folder


def _read(folder: Path, name: str, **kw: Any) -> np.ndarray:
    try:
        return np.loadtxt(folder / name, encoding="latin-1", comments=None, ndmin=2, **kw)
    except (ValueError, IndexError) as e:
        raise InputError(f"MovieLens-100K file '{folder / name}' is not in the GroupLens "
                         f"layout: {e}") from e


def load_movielens_100k(path: Optional[os.PathLike] = None, as_frame: bool = False) -> Any:
    """All 100,000 ratings joined with their movie's genres and their user's attributes.

    Args:
        path: the folder (default ``$CTRKIT_ML100K``).
        as_frame: return a pandas DataFrame instead of a dict of arrays.

    Returns:
        One row per rating, columns: ``user``, ``item``, ``rating`` (1..5), ``time`` (unix
        seconds) as int64; ``genre`` (int64 index of the first genre flag, see ``u.genre``);
        ``genres`` ((N, 19) int8 flags; a DataFrame stores it as 19 ``genre_<name>`` columns);
        ``age`` (int64), ``gender``, ``occupation``, ``zip`` (str). Rows keep ``u.data``'s order.

    Example:
        >>> log = load_movielens_100k("/data/ml-100k")    # doctest: +SKIP
        >>> len(log["user"]), log["genres"].shape          # doctest: +SKIP
        (100000, (100000, 19))

    Raises:
        DataNotFoundError: folder or a file missing.
        InputError: a file in another layout, or a rating that names an unknown movie or user.
    """
    folder = movielens_path(path)
    ratings = _read(folder, "u.data", dtype=np.int64, delimiter="\t")
    if ratings.shape[1] != 4:
        raise InputError(f"'{folder / 'u.data'}' needs 4 tab-separated columns (user, item, "
                         f"rating, timestamp), found {ratings.shape[1]}.")
    items = _read(folder, "u.item", dtype=np.int64, delimiter="|",
                  usecols=[0] + list(range(5, 5 + N_GENRES)))
    users = _read(folder, "u.user", dtype=str, delimiter="|")
    genre_names = _read(folder, "u.genre", dtype=str, delimiter="|")[:, 0].tolist()
    user, item = ratings[:, 0], ratings[:, 1]
    flags = np.zeros((items[:, 0].max() + 1, N_GENRES), dtype=np.int8)
    known_item = np.zeros(len(flags), dtype=bool)
    flags[items[:, 0]] = items[:, 1:]
    known_item[items[:, 0]] = True
    user_ids = users[:, 0].astype(np.int64)
    row_of_user = np.full(user_ids.max() + 1, -1, dtype=np.int64)
    row_of_user[user_ids] = np.arange(len(user_ids))
    bad_item = (item >= len(flags)) | ~known_item[np.minimum(item, len(flags) - 1)]
    bad_user = (user >= len(row_of_user)) | (row_of_user[np.minimum(user, len(row_of_user) - 1)] < 0)
    if bad_item.any() or bad_user.any():
        r = int(np.argmax(bad_item | bad_user))
        raise InputError(f"u.data row {r} rates movie {item[r]} by user {user[r]}, which "
                         f"u.item/u.user do not list.")
    g = flags[item]
    urow = row_of_user[user]
    data: Dict[str, np.ndarray] = {
        "user": user, "item": item, "rating": ratings[:, 2], "time": ratings[:, 3],
        "genre": np.where(g.any(1), g.argmax(1), 0).astype(np.int64), "genres": g,
        "age": users[urow, 1].astype(np.int64), "gender": users[urow, 2],
        "occupation": users[urow, 3], "zip": users[urow, 4]}
    if not as_frame:
        return data
    import pandas as pd
    frame = pd.DataFrame({k: v for k, v in data.items() if k != "genres"})
    for j, name in enumerate(genre_names[:N_GENRES]):
        frame[f"genre_{name}"] = g[:, j]
    return frame


def movielens_ctr(path: Optional[os.PathLike] = None, maxlen: int = 20, embedding_dim: int = 8,
                  test_last_k: int = 10, val_last_k: int = 5
                  ) -> Tuple[Dict[str, Tuple[Dict[str, np.ndarray], np.ndarray]], List[Feature]]:
    """MovieLens-100K as a CTR task with behaviour histories (the protocol in the module doc).

    Returns:
        ``(splits, features)``: ``splits`` maps ``'train'``, ``'val'``, ``'test'`` to
        ``(x, y)``; ``x`` carries the raw ``time`` as well. ``features``: user, item, genre,
        gender, age_bucket, occupation, and ``hist_item``/``hist_genre`` (length
        ``seq_length``).

    Example:
        >>> splits, features = movielens_ctr("/data/ml-100k")   # doctest: +SKIP
        >>> [len(splits[k][1]) for k in ("train", "val", "test")]   # doctest: +SKIP
        [85855, 4715, 9430]
    """
    from ..data import build_behavior_sequences, take_rows, time_split
    log = load_movielens_100k(path)
    log["label"] = (log["rating"] >= 4).astype(np.int64)
    log["age_bucket"] = np.digitize(log["age"], [18, 25, 35, 45, 50, 56]).astype(np.int64)
    x, y, features = build_behavior_sequences(
        log, attributes=("genre",), sparse=("gender", "age_bucket", "occupation"),
        maxlen=maxlen, positive_only=True, embedding_dim=embedding_dim)
    rest, test = time_split(log, last_k=test_last_k, tiebreak="item", return_index=True)
    rest_log = take_rows(log, rest)
    fit_pos, val_pos = time_split(rest_log, last_k=val_last_k, tiebreak="item",
                                  return_index=True)
    train, val = rest[fit_pos], rest[val_pos]
    splits = {name: (take_rows(x, idx), y[idx])
              for name, idx in (("train", train), ("val", val), ("test", test))}
    return splits, features


__all__ = ["load_movielens_100k", "movielens_ctr", "movielens_path", "ENV_VAR"]
