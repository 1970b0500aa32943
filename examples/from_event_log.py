"""Your own data, end to end: a raw event log -> DIN -> a saved model that serves raw values.

    python examples/from_event_log.py [--ml100k PATH] [--users N] [--epochs N] [--out DIR]

1. A raw event log (a pandas DataFrame: user, item, time, label and item/user attributes, with
   the raw values your systems have: strings, sparse integer ids). MovieLens-100K when
   ``--ml100k`` or ``$CTRKIT_ML100K`` names its folder, else a synthetic log.
2. A per-user time split; vocabularies (:class:`ctrkit.data.CategoricalEncoder`) fitted on the
   training events only, so later values unseen in training become the out-of-vocabulary id.
3. :func:`ctrkit.data.build_behavior_sequences` -> ids, ``hist_`` sequences and the features.
4. DIN with the encoders attached (``model.encoders``: one per embedding table; the ``item``
   encoder also encodes ``hist_item``), trained on the encoded arrays (``encoded=True``) with
   validation, EarlyStopping and ModelCheckpoint; test AUC and GAUC.
5. ``model.save`` -> one file; a FRESH process loads it and predicts from raw requests:
   unpadded lists of raw item ids (up to twice ``maxlen`` of them: ctrkit keeps the most
   recent ``maxlen``), no length column, raw user attributes.

It prints the metrics and checks that the fresh process's predictions from raw values equal
the trained model's predictions from the encoded arrays.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np
import pandas as pd
import torch

import ctrkit
from ctrkit.callbacks import EarlyStopping, ModelCheckpoint
from ctrkit.data import CategoricalEncoder, build_behavior_sequences, history_positions, time_split

MAXLEN = 20
ITEM_ATTRS = ("genre",)
USER_ATTRS = ("gender", "occupation")


def synthetic_log(n_users: int = 150, n_items: int = 300, events_per_user: int = 30,
                  seed: int = 0) -> pd.DataFrame:
    """Raw events with a planted signal: users click items of the genres they like."""
    rng = np.random.default_rng(seed)
    n_genres = 8
    genre_of = np.arange(n_items) % n_genres
    liked = rng.integers(0, n_genres, (n_users, 2))
    user = np.repeat(np.arange(n_users), events_per_user)
    # half of a user's events show items of a liked genre, half any item
    liked_item = liked[user, rng.integers(0, 2, len(user))] + n_genres * rng.integers(
        0, n_items // n_genres, len(user))
    item = np.where(rng.random(len(user)) < 0.5, liked_item, rng.integers(0, n_items, len(user)))
    likes = (genre_of[item][:, None] == liked[user]).any(1)
    label = (rng.random(len(user)) < np.where(likes, 0.85, 0.1)).astype(np.int64)
    return pd.DataFrame({
        "user": [f"user-{u:04d}" for u in user],
        "item": 100_000 + 7 * item,                       # sparse raw ids, not 0..V-1
        "time": rng.integers(1_600_000_000, 1_600_500_000, len(user)),
        "label": label,
        "genre": [f"genre-{g}" for g in genre_of[item]],
        "gender": np.where(np.arange(n_users)[user] % 2 == 0, "F", "M"),
        "occupation": [f"job-{u % 7}" for u in user]})


def movielens_log(path: Optional[str], users: Optional[int]) -> pd.DataFrame:
    from ctrkit.datasets import load_movielens_100k
    log = load_movielens_100k(path, as_frame=True)
    if users is not None:
        log = log[log["user"] <= users].reset_index(drop=True)
    log["label"] = (log["rating"] >= 4).astype(np.int64)
    return log[["user", "item", "time", "label", "genre", "gender", "occupation"]]


def raw_requests(log: pd.DataFrame, rows: np.ndarray, maxlen: int) -> Dict[str, list]:
    """What a client sends for ``rows``: raw values, each history an unpadded list of up to
    ``2 * maxlen`` raw values (oldest first; the model keeps the most recent ``maxlen``)."""
    # the same history definition as build_behavior_sequences: positive events of the user
    # with a strictly earlier time, ordered by (time, item)
    user_rank = np.unique(log["user"].to_numpy(), return_inverse=True)[1].reshape(-1)
    item_rank = np.unique(log["item"].to_numpy(), return_inverse=True)[1].reshape(-1)
    positions, _, lengths = history_positions(user_rank, log["time"].to_numpy(), item_rank,
                                              log["label"].to_numpy() == 1, 2 * maxlen)
    body: Dict[str, list] = {c: log[c].to_numpy()[rows].tolist()
                             for c in ("user", "item") + ITEM_ATTRS + USER_ATTRS}
    for c in ("item",) + ITEM_ATTRS:
        values = log[c].to_numpy()
        body["hist_" + c] = [values[positions[r, :lengths[r]]].tolist() for r in rows]
    return body


def predict_in_fresh_process(model_path: Path, requests_path: Path) -> np.ndarray:
    out = requests_path.with_suffix(".npy")
    # the same number of torch threads as this process: an elementwise op (Dice's sigmoid)
    # may round its last element differently when the rows are split over more threads
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(Path(ctrkit.__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]),
        OMP_NUM_THREADS=str(torch.get_num_threads()))
    subprocess.run([sys.executable, __file__, "--serve", str(model_path), str(requests_path),
                    str(out)], check=True, env=env)
    return np.load(out)


def serve(model_path: str, requests_path: str, out: str) -> None:
    """The fresh process: load the file, predict from the raw JSON requests."""
    model = ctrkit.load(model_path)
    body = json.loads(Path(requests_path).read_text())
    np.save(out, model.predict(body))  # raw values by default: the model carries encoders


def main(path: Optional[str] = None, users: Optional[int] = None, epochs: int = 5,
         out: Optional[str] = None, verbose: int = 2, seed: int = 0) -> Dict[str, Any]:
    """Run the whole path; returns the metrics, the predictions and the file names."""
    out_dir = Path(out or tempfile.mkdtemp(prefix="ctrkit-event-log-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    log = movielens_log(path, users) if path else synthetic_log(seed=seed)

    # 1. time split on the raw log: each user's last events are test, the ones before val
    rest, test = time_split(log, last_k=4, tiebreak="item", return_index=True)
    fit_pos, val_pos = time_split(log.iloc[rest], last_k=2, tiebreak="item",
                                  return_index=True)
    train, val = rest[fit_pos], rest[val_pos]

    # 2. vocabularies from the training events only (one per column, i.e. per table)
    columns = ("user", "item") + ITEM_ATTRS + USER_ATTRS
    encoders = {c: CategoricalEncoder(c).fit(log[c].to_numpy()[train]) for c in columns}

    # 3. ids and behaviour histories for every event (histories may reach into earlier splits)
    x, y, features = build_behavior_sequences(
        log, attributes=ITEM_ATTRS, sparse=USER_ATTRS, maxlen=MAXLEN, positive_only=True,
        embedding_dim=8, encoders=encoders)
    part = {name: ({k: v[idx] for k, v in x.items()}, y[idx])
            for name, idx in (("train", train), ("val", val), ("test", test))}

    # 4. DIN; the encoders travel with it (the 'item' encoder serves 'hist_item' too)
    model = ctrkit.build("din", features, dnn_hidden_units=(64, 32), att_hidden_size=(32, 16),
                         seed=seed)
    model.encoders = encoders
    model.compile("adam", "binary_crossentropy", metrics=["auc", "gauc"], gauc_group="user",
                  lr=3e-3)
    best = out_dir / "best.ctrkit"
    history = model.fit(
        *part["train"], batch_size=256, epochs=epochs, verbose=verbose, encoded=True,
        validation_data=part["val"],
        callbacks=[EarlyStopping("val_auc", mode="max", patience=2, restore_best_weights=True),
                   ModelCheckpoint(best, monitor="val_auc", mode="max", save_best_only=True)])
    test_logs = model.evaluate(*part["test"], encoded=True)

    # 5. save; a fresh process loads the file and predicts from raw requests
    model_path = model.save(out_dir / "din.ctrkit")
    encoded_pred = model.predict(part["test"][0], encoded=True)
    requests_path = out_dir / "requests.json"
    requests_path.write_text(json.dumps(raw_requests(log, test, MAXLEN)))
    raw_pred = predict_in_fresh_process(model_path, requests_path)
    result = {"epochs_run": len(history.history["loss"]), "test_auc": test_logs["auc"],
              "test_gauc": test_logs["gauc"], "test_rows": len(test),
              "encoded_pred": encoded_pred, "raw_pred_after_load": raw_pred,
              "model_path": model_path, "best_path": best, "data": "movielens-100k" if path
              else "synthetic"}
    if verbose:
        same = np.array_equal(raw_pred, encoded_pred)
        print(f"{result['data']}: {len(train)} train / {len(val)} val / {len(test)} test events; "
              f"{result['epochs_run']} epochs; test AUC {test_logs['auc']:.4f}, "
              f"GAUC {test_logs['gauc']:.4f}")
        print(f"saved {model_path}; fresh-process predictions from raw values "
              f"{'equal' if same else 'DIFFER FROM'} the encoded predictions")
    return result


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(*sys.argv[2:5])
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ml100k", default=os.environ.get("CTRKIT_ML100K"),
                        help="MovieLens-100K folder (default $CTRKIT_ML100K; else synthetic)")
    parser.add_argument("--users", type=int, default=None, help="keep users 1..N (MovieLens)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--out", default=None, help="output folder (default: a temp folder)")
    args = parser.parse_args()
    main(args.ml100k, args.users, args.epochs, args.out)
