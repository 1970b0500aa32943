"""Amazon review loader and the DIN paper's protocol: small files written here (both layouts),
and the real S3-Rec Beauty file when CTRKIT_AMAZON (or ../shared/data/amazon_s3rec) has it."""
import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from ctrkit.datasets import amazon_ctr, load_amazon_reviews
from ctrkit.errors import ConfigError, DataNotFoundError, InputError


def write_s3rec(folder: Path, seqs, attrs, name="Beauty"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.txt").write_text(
        "".join(f"{u} " + " ".join(map(str, items)) + "\n" for u, items in seqs.items()))
    (folder / f"{name}_item2attributes.json").write_text(json.dumps(
        {str(k): v for k, v in attrs.items()}))
    return folder


@pytest.fixture
def s3rec(tmp_path):
    seqs = {1: [1, 2, 3, 4, 5], 2: [6, 7, 8, 9, 10, 4, 11], 3: [4, 12, 13, 14, 15]}
    attrs = {i: [100 + i, 200 + i % 3] for i in range(1, 16)}
    attrs[13] = []          # no attributes -> category -1
    return write_s3rec(tmp_path / "s3", seqs, attrs), seqs


@pytest.fixture
def raw(tmp_path):
    folder = tmp_path / "raw"
    folder.mkdir()
    reviews = [  # JSON lines, out of time order; u1's two same-day reviews keep file order
        {"reviewerID": "u1", "asin": "B", "unixReviewTime": 200, "overall": 5.0},
        {"reviewerID": "u2", "asin": "A", "unixReviewTime": 50},
        {"reviewerID": "u1", "asin": "A", "unixReviewTime": 100},
        {"reviewerID": "u1", "asin": "C", "unixReviewTime": 200},
        {"reviewerID": "u2", "asin": "C", "unixReviewTime": 70},
        {"reviewerID": "u2", "asin": "D", "unixReviewTime": 90},
        {"reviewerID": "u1", "asin": "E", "unixReviewTime": 300},
    ]
    (folder / "reviews_Toys_5.json").write_text("".join(json.dumps(r) + "\n" for r in reviews))
    metas = [  # python dict literals, as the 2014 meta files are
        {"asin": "A", "categories": [["Toys", "Puzzles"], ["Other"]]},
        {"asin": "B", "categories": [["Toys", "Games", "Board Games"]]},
        {"asin": "C", "categories": [["Toys", "Puzzles"]], "title": "it's"},
        {"asin": "D", "categories": []},
        {"asin": "F", "categories": [["Toys", "Dolls"]]},
    ]
    (folder / "meta_Toys.json").write_text("".join(repr(m) + "\n" for m in metas))
    return folder


def test_s3rec_log_keeps_time_order_and_takes_the_last_attribute(s3rec):
    folder, seqs = s3rec
    log = load_amazon_reviews(folder, "Beauty")
    assert log["user"].tolist() == [u for u, items in seqs.items() for _ in items]
    assert log["item"].tolist() == [i for items in seqs.values() for i in items]
    assert log["time"].tolist() == [t for items in seqs.values() for t in range(len(items))]
    expect = [-1 if i == 13 else 200 + i % 3 for items in seqs.values() for i in items]
    assert log["cate"].tolist() == expect
    assert log["item"].dtype == np.int64 and log["time"].dtype == np.int64


def test_raw_layout_parses_json_and_dict_literals_and_orders_by_time(raw):
    log = load_amazon_reviews(raw, "Toys")
    assert log["user"].tolist() == ["u1"] * 4 + ["u2"] * 3
    assert log["item"].tolist() == ["A", "B", "C", "E", "A", "C", "D"]
    assert log["time"].tolist() == [0, 1, 2, 3, 0, 1, 2]
    assert log["unix_time"].tolist() == [100, 200, 200, 300, 50, 70, 90]
    # the first category path's last element; no meta or no categories -> 'unknown'
    assert log["cate"].tolist() == ["Puzzles", "Board Games", "Puzzles", "unknown", "Puzzles",
                                    "Puzzles", "unknown"]


def check_protocol(splits, features, maxlen, seqs):
    """The protocol's invariants on any output of amazon_ctr; ``seqs``: user -> raw items."""
    assert [f.name for f in features] == ["item", "cate", "hist_item", "hist_cate"]
    # the encoders number sorted raw values from 2 (0 pads, 1 is OOV)
    users = {u: k + 2 for k, u in enumerate(sorted(seqs))}
    code = {i: k + 2 for k, i in enumerate(sorted({i for v in seqs.values() for i in v}))}
    rows = []
    for name, (x, y) in splits.items():
        assert set(np.unique(y)) <= {0.0, 1.0}
        assert x["hist_item"].shape == (len(y), maxlen) and x["hist_item"].dtype == np.int64
        # one negative per positive, with the positive's history
        pos, neg = y == 1, y == 0
        assert pos.sum() == neg.sum()
        np.testing.assert_array_equal(x["hist_item"][pos], x["hist_item"][neg])
        np.testing.assert_array_equal(x["seq_length"][pos], x["seq_length"][neg])
        valid = np.arange(maxlen)[None, :] < x["seq_length"][:, None]
        assert (x["hist_item"][~valid] == 0).all() and (x["seq_length"] >= 1).all()
        rows += [(name, int(x["user"][r]), int(x["time"][r]), int(x["item"][r]), int(y[r]),
                  x["hist_item"][r, :x["seq_length"][r]].tolist()) for r in range(len(y))]
    assert len(rows) == 2 * sum(len(v) - 1 for v in seqs.values())
    for u, items in seqs.items():
        mine = [r for r in rows if r[1] == users[u]]
        enc = [code[i] for i in items]
        n = len(items)
        split_of = {t: ("test" if t == n - 1 else "val" if t == n - 2 else "train")
                    for t in range(1, n)}
        assert sorted((t, item) for _, _, t, item, lab, _ in mine if lab == 1) == \
            list(enumerate(enc))[1:]
        for name, _, t, item, lab, hist in mine:
            assert name == split_of[t]                     # per-user time split
            assert hist == enc[:t][-maxlen:]               # strictly earlier, most recent kept
            if lab == 0:
                assert item not in enc                     # never a reviewed item


def test_s3rec_protocol_invariants(s3rec):
    folder, seqs = s3rec
    splits, features = amazon_ctr(folder, maxlen=3, seed=0)
    check_protocol(splits, features, 3, seqs)


def test_raw_protocol_invariants(raw):
    splits, features = amazon_ctr(raw, "Toys", maxlen=50, seed=3)
    check_protocol(splits, features, 50, {"u1": ["A", "B", "C", "E"], "u2": ["A", "C", "D"]})
    assert len(splits["test"][1]) == 4  # two users, a positive and a negative each


@settings(max_examples=15, deadline=None)
@given(st.lists(st.lists(st.integers(1, 30), min_size=2, max_size=9, unique=True),
                min_size=1, max_size=6),
       st.integers(1, 4), st.integers(0, 2 ** 31))
def test_protocol_invariants_hold_for_any_sequences(tmp_path_factory, seqs, maxlen, seed):
    seqs = dict(enumerate(seqs, 1))
    if len({i for v in seqs.values() for i in v}) == min(len(v) for v in seqs.values()):
        return  # some user reviewed every item: nothing to sample (tested below)
    folder = write_s3rec(tmp_path_factory.mktemp("s3"), seqs, {i: [i % 4] for i in range(1, 41)})
    # items 31..40 exist only in the attributes; candidates are items someone reviewed
    splits, features = amazon_ctr(folder, maxlen=maxlen, seed=seed)
    check_protocol(splits, features, maxlen, seqs)


def test_same_seed_same_samples_other_seed_other_negatives(s3rec):
    folder, _ = s3rec
    a, _ = amazon_ctr(folder, seed=5)
    b, _ = amazon_ctr(folder, seed=5)
    c, _ = amazon_ctr(folder, seed=6)
    for name in a:
        for k in a[name][0]:
            np.testing.assert_array_equal(a[name][0][k], b[name][0][k])
    neg = lambda s: np.concatenate([s[n][0]["item"][s[n][1] == 0] for n in s])  # noqa: E731
    assert not np.array_equal(neg(a), neg(c))


def test_negatives_are_spread_over_the_unreviewed_items(tmp_path):
    # user 1 reviewed items 1..3; items 4..9 only by others: over 40 seeds user 1's negatives
    # cover all six unreviewed items (uniform sampling; P(miss one) < 6 * (5/6)**80 ~ 3e-6)
    seqs = {1: [1, 2, 3], **{u: [4 + (u % 6), 1] for u in range(2, 14)}}
    folder = write_s3rec(tmp_path, seqs, {i: [0] for i in range(1, 10)})
    drawn = set()
    for seed in range(40):
        splits, _ = amazon_ctr(folder, seed=seed)
        for x, y in splits.values():
            drawn |= set(x["item"][(x["user"] == 2) & (y == 0)].tolist())  # user 1 is id 2
    assert drawn == set(range(5, 11))      # encoded ids of items 4..9 (item i -> i + 1)


def test_user_feature_is_opt_in(s3rec):
    folder, _ = s3rec
    _, features = amazon_ctr(folder, user_feature=True)
    assert [f.name for f in features][:1] == ["user"]


def test_bad_arguments_and_missing_files_are_named(tmp_path, s3rec, monkeypatch):
    folder, _ = s3rec
    with pytest.raises(ConfigError, match="negatives"):
        amazon_ctr(folder, negatives=0)
    with pytest.raises(ConfigError, match="max_users"):
        amazon_ctr(folder, max_users=0)
    with pytest.raises(DataNotFoundError, match="Sports.txt"):
        load_amazon_reviews(folder, "Sports")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "Toys.txt").write_text("1 2 3\n")
    with pytest.raises(DataNotFoundError, match="Toys_item2attributes.json"):
        load_amazon_reviews(tmp_path / "half", "Toys")
    (tmp_path / "half" / "Toys_item2attributes.json").write_text("{}")
    (tmp_path / "half" / "Toys.txt").write_text("1 2 x\n")
    with pytest.raises(InputError, match="line 1"):
        load_amazon_reviews(tmp_path / "half", "Toys")
    monkeypatch.delenv("CTRKIT_AMAZON", raising=False)
    with pytest.raises(DataNotFoundError, match="CTRKIT_AMAZON"):
        load_amazon_reviews()


def test_a_user_who_reviewed_every_item_is_refused(tmp_path):
    folder = write_s3rec(tmp_path, {1: [1, 2, 3], 2: [3, 2]}, {})
    with pytest.raises(InputError, match="User 1 reviewed every one of the 3 items"):
        amazon_ctr(folder)


def test_raw_line_that_is_not_a_record_is_named(tmp_path):
    (tmp_path / "reviews_X_5.json").write_text('{"reviewerID": "u", "asin": "a"}\n')
    (tmp_path / "meta_X.json").write_text("")
    with pytest.raises(InputError, match="unixReviewTime"):
        load_amazon_reviews(tmp_path, "X")
    (tmp_path / "reviews_X_5.json").write_text("not a record\n")
    with pytest.raises(InputError, match="line 1"):
        load_amazon_reviews(tmp_path, "X")


def real_folder():
    path = os.environ.get("CTRKIT_AMAZON")
    if not path:
        guess = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "amazon_s3rec"
        path = str(guess) if (guess / "Beauty.txt").is_file() else None
    if not path or not (Path(path) / "Beauty.txt").is_file():
        pytest.skip("Amazon Beauty (S3-Rec) not available: set CTRKIT_AMAZON to the folder "
                    "holding Beauty.txt and Beauty_item2attributes.json")
    return path


def test_real_beauty_matches_the_papers_protocol_counts():
    splits, features = amazon_ctr(real_folder(), "Beauty", maxlen=50, seed=0)
    sizes = {k: len(y) for k, (_, y) in splits.items()}
    # 22,363 users, 198,502 reviews: one test and one validation review per user, a negative each
    assert sizes == {"train": 2 * (198502 - 22363 * 3), "val": 2 * 22363, "test": 2 * 22363}
    x, y = splits["train"]
    assert x["hist_item"].shape[1] == 50 and x["seq_length"].max() == 50
    assert y.mean() == 0.5
