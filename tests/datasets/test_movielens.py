"""MovieLens-100K loader (a tiny fake folder always; the real data when CTRKIT_ML100K is set)."""
import numpy as np
import pytest

from ctrkit.datasets import load_movielens_100k, movielens_ctr
from ctrkit.errors import DataNotFoundError

GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
          "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
          "Romance", "Sci-Fi", "Thriller", "War", "Western"]


def flags(*on):
    return "|".join("1" if j in on else "0" for j in range(19))


@pytest.fixture
def fake_ml(tmp_path):
    (tmp_path / "u.data").write_text("2\t1\t5\t100\n1\t2\t3\t50\n1\t1\t4\t60\n")
    (tmp_path / "u.item").write_text(
        f"1|Toy Story (1995)|01-Jan-1995|||{flags(3, 4, 5)}\n"
        f"2|Caf\xe9 Noir (1990)|01-Jan-1990|||{flags()}\n", encoding="latin-1")
    (tmp_path / "u.user").write_text("1|24|M|technician|85711\n2|53|F|other|94043\n")
    (tmp_path / "u.genre").write_text("".join(f"{g}|{i}\n" for i, g in enumerate(GENRES)))
    return tmp_path


def test_fake_folder_is_parsed_and_joined(fake_ml):
    d = load_movielens_100k(fake_ml)
    assert d["user"].tolist() == [2, 1, 1] and d["item"].tolist() == [1, 2, 1]
    assert d["rating"].tolist() == [5, 3, 4] and d["time"].tolist() == [100, 50, 60]
    assert d["genre"].tolist() == [3, 0, 3]  # first flag (Animation); no flag -> 0
    assert d["genres"].shape == (3, 19) and d["genres"][0].sum() == 3
    assert d["age"].tolist() == [53, 24, 24] and d["gender"].tolist() == ["F", "M", "M"]
    assert d["user"].dtype == np.int64


def test_path_comes_from_the_environment(fake_ml, monkeypatch):
    monkeypatch.setenv("CTRKIT_ML100K", str(fake_ml))
    assert len(load_movielens_100k()["user"]) == 3
    monkeypatch.delenv("CTRKIT_ML100K")
    with pytest.raises(DataNotFoundError, match="set CTRKIT_ML100K"):
        load_movielens_100k()


def test_missing_file_is_named(fake_ml):
    (fake_ml / "u.item").unlink()
    with pytest.raises(DataNotFoundError, match=r"lacks \['u.item'\]"):
        load_movielens_100k(fake_ml)
    with pytest.raises(DataNotFoundError, match="does not exist"):
        load_movielens_100k(fake_ml / "nope")
    assert issubclass(DataNotFoundError, FileNotFoundError)


def test_frame_has_one_column_per_genre(fake_ml):
    pytest.importorskip("pandas")
    frame = load_movielens_100k(fake_ml, as_frame=True)
    assert frame.shape[0] == 3 and frame["genre_Animation"].tolist() == [1, 0, 1]


def test_real_data_matches_its_readme(ml100k_path):
    d = load_movielens_100k(ml100k_path)
    assert len(d["user"]) == 100_000
    assert len(np.unique(d["user"])) == 943 and len(np.unique(d["item"])) == 1682
    assert int((d["rating"] >= 4).sum()) == 55_375
    assert np.bincount(d["user"]).max() >= 20 and np.bincount(d["user"])[1:].min() >= 20
    toy_story = d["genres"][d["item"] == 1][0]
    assert toy_story.nonzero()[0].tolist() == [3, 4, 5]  # Animation, Children's, Comedy


def test_real_protocol_splits_by_time_and_never_validates_on_test(ml100k_path):
    splits, features = movielens_ctr(ml100k_path, maxlen=10)
    (xtr, ytr), (xva, yva), (xte, yte) = splits["train"], splits["val"], splits["test"]
    assert len(yte) == 943 * 10 and len(yva) == 943 * 5
    assert len(ytr) + len(yva) + len(yte) == 100_000
    for a, b in ((xtr, xva), (xva, xte)):  # per user, every earlier split ends before the next
        last = np.full(944, -1)
        np.maximum.at(last, a["user"] - 1, a["time"])  # encoded users are 2.. -> index 1..
        first = np.full(944, np.iinfo(np.int64).max)
        np.minimum.at(first, b["user"] - 1, b["time"])
        assert (last <= first).all()
    assert xte["hist_item"].shape == (9430, 10)
    assert {f.name for f in features} >= {"user", "item", "genre", "hist_item", "hist_genre"}
