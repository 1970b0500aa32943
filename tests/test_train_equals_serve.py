"""What was trained is what is served: one missing-value policy for categoricals, however a row
arrives (pandas DataFrame, dict of lists, JSON through examples/serve.py, Parquet), and
min_count's rare values told apart from unseen ones (issue 25, part B)."""
import json
import subprocess
import sys
import threading
import urllib.request

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ctrkit
from ctrkit import DenseFeat, SparseFeat
from ctrkit.data import CategoricalEncoder
from ctrkit.errors import ConfigError, DataRangeWarning, InputError, InputTypeError, NotFittedError
from ctrkit.inputs import hash_values, missing_mask, prepare_inputs

MISSING = [None, np.nan, pd.NA, pd.NaT]
CITIES = ["paris", "rome", "oslo", "lima"]


def _training_data(n=400, seed=0):
    rng = np.random.default_rng(seed)
    city = rng.choice(np.array(CITIES + MISSING, dtype=object), n)
    tag = rng.choice(np.array(["t%d" % i for i in range(60)] + [None, np.nan], dtype=object), n)
    df = pd.DataFrame({"city": city, "tag": tag,
                       "shop": rng.choice(np.array(["s1", "s2", "s3", None], dtype=object), n),
                       "price": np.round(rng.lognormal(3.0, 2.0, n), 3)})  # skewed dense
    y = (rng.random(n) < 0.3).astype(np.float32)
    return df, y


def _build(df, y, epochs=1):
    encoders = {"city": CategoricalEncoder("city").fit(df["city"]),
                "tag": CategoricalEncoder("tag", min_count=8).fit(df["tag"])}
    features = [SparseFeat("city", encoders["city"].vocabulary_size, 4),
                SparseFeat("tag", encoders["tag"].vocabulary_size, 4),
                SparseFeat("shop", 16, 4, use_hash=True),
                DenseFeat("price", 1, transform="log1p+normalize")]
    model = ctrkit.build("deepfm", features, seed=0)
    model.encoders = encoders
    model.compile("adam")
    model.fit(df, y, batch_size=64, epochs=epochs, verbose=0)
    return model


@pytest.fixture(scope="module")
def trained():
    df, y = _training_data()
    return _build(df, y), df


class _Served:
    def __init__(self, model):
        from serve import make_server
        self.server = make_server(model, port=0)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def post(self, body):
        req = urllib.request.Request(self.url, data=json.dumps(body, allow_nan=False).encode())
        with urllib.request.urlopen(req, timeout=30) as r:
            return np.asarray(json.loads(r.read())["probability"])

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture(scope="module")
def served(trained):
    s = _Served(trained[0])
    yield s
    s.close()


def _json_cell(v):
    """What a JSON client sends: every kind of missing value becomes null."""
    return None if missing_mask(np.array([v], dtype=object))[0] else v


# ---------------------------------------------------------------------------- the encoder
@pytest.mark.parametrize("missing", MISSING, ids=["None", "nan", "pd.NA", "pd.NaT"])
def test_every_missing_value_maps_to_the_oov_id_and_is_no_class(missing):
    enc = CategoricalEncoder("city").fit(pd.Series(["a", "b", missing, "a"], dtype=object))
    assert enc.classes_.tolist() == ["a", "b"]  # before: 'nan' / 'None' / '<NA>' were classes
    ids = enc.transform(np.array(["a", None, np.nan, pd.NA, pd.NaT, "b"], dtype=object))
    assert ids.tolist() == [2, 1, 1, 1, 1, 3]
    assert enc.unseen(np.array([missing, "zz"], dtype=object)).tolist() == [False, True]


def test_missing_in_a_numeric_column_matches_the_json_ints():
    enc = CategoricalEncoder("c").fit(pd.Series([3, 5, None]))  # pandas: float64 with NaN
    assert enc.kind == "float" and enc.classes_.tolist() == [3.0, 5.0]
    from_df = enc.transform(pd.Series([5, 3, np.nan]))
    from_json = enc.transform(np.array([5, 3, None], dtype=object))
    assert from_df.tolist() == from_json.tolist() == [3, 2, 1]


def test_hashing_maps_every_missing_value_to_zero_and_floats_like_ints():
    obj = np.array(["a", None, np.nan, pd.NA, pd.NaT, ""], dtype=object)
    h = hash_values(obj, 97)
    assert h[1:].tolist() == [0] * 5 and h[0] == hash_values(np.array(["a"]), 97)[0] != 0
    ints = hash_values(np.array([7, 11]), 97)
    assert hash_values(np.array([7.0, 11.0, np.nan]), 97).tolist() == ints.tolist() + [0]
    assert hash_values(np.array([7, 11, None], dtype=object), 97).tolist() == ints.tolist() + [0]
    assert hash_values(np.array([7.5]), 97)[0] == hash_values(np.array(["7.5"]), 97)[0]


def test_min_count_rare_values_are_not_taken_for_unseen(trained):
    # a long tail: most values occur once; min_count=2 maps them to OOV as documented
    rng = np.random.default_rng(1)
    values = np.array(["v%d" % i for i in rng.integers(0, 5000, 200)] + ["hot"] * 20, dtype=object)
    enc = CategoricalEncoder("v", min_count=2).fit(values)
    assert (enc.transform(values) == 1).mean() > 0.5  # mostly OOV: rare
    assert not enc.unseen(values).any()
    model = ctrkit.build("wdl", [SparseFeat("v", enc.vocabulary_size, 4)], seed=0)
    model.encoders = {"v": enc}
    model.compile("adam")
    y = np.zeros(len(values), dtype=np.float32)
    model.fit({"v": values}, y, epochs=1, verbose=0)  # before: "values look unseen"
    assert model.predict({"v": values}).shape == (len(values), 1)
    unseen = np.array(["new%d" % i for i in range(40)], dtype=object)
    with pytest.raises(InputError, match="raw values the vocabulary has not seen"):
        model.predict({"v": unseen})  # max_oov_fraction still guards real unseen data
    # the rare values travel with the encoder
    back = CategoricalEncoder.from_dict(json.loads(json.dumps(enc.to_dict())))
    assert back.rare_.tolist() == enc.rare_.tolist() and not back.unseen(values).any()


# ---------------------------------------------------------------------------- dense values
@pytest.mark.parametrize("column, error, match", [
    (pd.Series([1.0, None, 2.0], dtype=object), InputError,
     r"Dense feature 'price' has a missing value \(None\) at row 1\. .*fillna"),
    ([1.0, None, 2.0], InputError, r"Dense feature 'price' has a missing value \(None\) at row 1"),
    (np.array([1.0, np.nan]), InputError, r"'price' has a non-finite value nan at row 1.*fillna"),
    (pd.Series(["1.5", "x", "2"]), InputTypeError,
     r"Dense feature 'price' must be numeric, got dtype object with the value '1.5' at row 0\. "
     r".*pd\.to_numeric"),
])
def test_missing_or_string_dense_values_are_refused_with_row_and_fix(column, error, match):
    with pytest.raises(error, match=match):
        prepare_inputs([DenseFeat("price", 1)], {"price": column})


def test_numbers_held_as_objects_are_dense_values():
    cols = prepare_inputs([DenseFeat("price", 1)], {"price": np.array([1, 2.5], dtype=object)})
    assert cols["price"].flatten().tolist() == [1.0, 2.5]


# ---------------------------------------------------------------------------- the property
_cell = st.one_of(st.sampled_from(CITIES + ["unseen"]), st.sampled_from(MISSING))
_rows = st.lists(st.tuples(_cell, st.one_of(st.sampled_from(["t1", "t2", "t59", "zz"]),
                                            st.sampled_from(MISSING)),
                           st.one_of(st.sampled_from(["s1", "s3", "new"]), st.sampled_from(MISSING)),
                           st.floats(0, 500, allow_nan=False)), min_size=1, max_size=6)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rows=_rows)
def test_a_row_scores_the_same_however_it_arrives(trained, served, tmp_path_factory, rows):
    model, _ = trained
    cols = ["city", "tag", "shop", "price"]
    df = pd.DataFrame(rows, columns=cols).astype({"city": object, "tag": object, "shop": object})
    want = model.predict(df).ravel()
    lists = {c: [r[i] for r in rows] for i, c in enumerate(cols)}
    np.testing.assert_allclose(model.predict(lists).ravel(), want, rtol=0, atol=1e-7)
    body = {c: [_json_cell(v) for v in lists[c]] for c in cols}
    np.testing.assert_allclose(served.post(body), want, rtol=0, atol=1e-7)
    import pyarrow as pa
    import pyarrow.parquet as pq
    from ctrkit.data import ParquetDataset
    path = tmp_path_factory.mktemp("pq") / "rows.parquet"
    table = pa.table({c: pa.array(body[c], type=pa.float64() if c == "price" else pa.string())
                      for c in cols})
    pq.write_table(table, path)
    got = model.predict(ParquetDataset(path, label=None)).ravel()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-7)


# ---------------------------------------------------------------------------- a fresh process
def test_saved_model_served_by_json_in_a_fresh_process_scores_as_trained(tmp_path, trained):
    model, df = trained
    model.save(tmp_path / "m.ctrkit")
    rows = df.head(50)
    body = {c: [_json_cell(v) for v in rows[c].tolist()] for c in rows.columns}
    (tmp_path / "body.json").write_text(json.dumps(body, allow_nan=False))
    script = (
        "import json, sys, threading, urllib.request\n"
        "import ctrkit\n"
        "from serve import make_server\n"
        "server = make_server(ctrkit.load(sys.argv[1]), port=0)\n"
        "threading.Thread(target=server.serve_forever, daemon=True).start()\n"
        "url = 'http://127.0.0.1:%d' % server.server_address[1]\n"
        "req = urllib.request.Request(url, data=open(sys.argv[2], 'rb').read())\n"
        "print(json.dumps(json.loads(urllib.request.urlopen(req, timeout=60).read())))\n"
        "server.shutdown()\n")
    import os
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), str(root / "examples")]))
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "m.ctrkit"),
                          str(tmp_path / "body.json")], capture_output=True, text=True,
                         timeout=300, env=env, check=True)
    got = np.asarray(json.loads(out.stdout.strip().splitlines()[-1])["probability"])
    np.testing.assert_allclose(got, model.predict(rows).ravel(), rtol=0, atol=1e-7)
    assert rows["city"].isna().any() and rows["tag"].isna().any()  # the rows hold missing values


# ---------------------------------------------------------------------------- dense transforms
def _dense_model(transform="log1p+normalize"):
    feats = [SparseFeat("u", 3, 4), SparseFeat("v", 3, 4), DenseFeat("n", 1, transform=transform)]
    model = ctrkit.build("deepfm", feats, seed=0)
    model.compile("adam")
    return model


def _dense_data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    x = {"u": rng.integers(0, 3, n), "v": rng.integers(0, 3, n), "n": rng.lognormal(3, 2, n)}
    return x, (rng.random(n) < 0.3).astype(np.float32)


def test_transform_is_adapted_on_the_training_rows_only():
    x, y = _dense_data()
    model = _dense_model()
    model.fit(x, y, epochs=1, verbose=0, validation_split=0.2)
    t = model.dense_transforms.by_index[0]
    train = np.log1p(x["n"][:240].astype(np.float32).astype(np.float64))  # the held-out 60 not
    assert float(t.mean) == pytest.approx(train.mean(), rel=1e-6)  # float32 buffers
    assert float(t.std) == pytest.approx(train.std(), rel=1e-6)
    assert float(t.hi) == pytest.approx(x["n"][:240].astype(np.float32).max(), rel=1e-7)
    before = t.mean.clone()
    model.fit(x, y, epochs=1, verbose=0)  # adapted once: a second fit keeps the statistics
    assert torch.equal(t.mean, before)


def test_transform_is_inside_the_forward_and_travels_with_save_and_export(tmp_path):
    x, y = _dense_data()
    model = _dense_model()
    model.fit(x, y, epochs=1, verbose=0)
    want = model.predict(x).ravel()
    t = model.dense_transforms.by_index[0]
    raw = model.input_columns(x)
    assert torch.equal(raw["n"], torch.as_tensor(x["n"], dtype=torch.float32).reshape(-1, 1))
    scaled = dict(raw.tensors, n=(torch.log1p(raw["n"]) - t.mean) / t.std)
    ident = _dense_model(None)  # same weights, no transform, fed the transformed values
    ident.load_state_dict({k: v for k, v in model.state_dict().items()
                           if not k.startswith("dense_transforms")})
    ident.eval()
    with torch.no_grad():
        by_hand = ident.head.output(ident(scaled).double()).numpy().ravel()
    np.testing.assert_allclose(by_hand, want, rtol=0, atol=1e-6)
    model.save(tmp_path / "m.ctrkit")
    np.testing.assert_array_equal(ctrkit.load(tmp_path / "m.ctrkit").predict(x).ravel(), want)
    model.export(tmp_path / "m.pt2")
    served = torch.export.load(str(tmp_path / "m.pt2")).module()
    names = ctrkit.get_feature_names(model.features)
    got = served(*[raw[n] for n in names]).detach().numpy().ravel()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    ort = pytest.importorskip("onnxruntime", reason="the onnx extra: pip install 'ctrkit[onnx]'")
    model.export(tmp_path / "m.onnx")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    got = session.run(None, {i.name: raw[n].numpy()
                             for i, n in zip(session.get_inputs(), names)})[0].ravel()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_values_far_outside_the_training_range_are_counted_and_reported():
    x, y = _dense_data()
    model = _dense_model()
    model.fit(x, y, epochs=1, verbose=0)
    lo, hi = float(x["n"].astype(np.float32).min()), float(x["n"].astype(np.float32).max())
    far = {"u": [1, 2, 0], "v": [0, 1, 2], "n": [1e12, 3.0, 5e13]}  # judged on log1p's scale
    with pytest.warns(DataRangeWarning, match=r"Dense feature 'n': 2 of 3 rows hold values far "
                      r"outside the training range \[%.6g, %.6g\]" % (lo, hi)):
        model.predict(far)
    plain = _dense_model("normalize")  # judged on the raw scale: the I1=1e6
    plain.fit(x, y, epochs=1, verbose=0)
    with pytest.warns(DataRangeWarning, match=r"'n': 1 of 3 rows .* e\.g\. 1e\+06"):
        plain.predict({"u": [1, 2, 0], "v": [0, 1, 2], "n": [1e6, 3.0, 5.0]})
    with pytest.raises(InputError, match=r"'n' has the value -2 at row 0, but its transform "
                       r"log1p needs values > -1"):
        model.predict({"u": [1], "v": [1], "n": [-2.0]})
    model.predict(_dense_data(300, seed=1)[0])  # ordinary data: no warning (warnings are errors)


def test_an_unadapted_transform_is_refused():
    x, _ = _dense_data()
    with pytest.raises(NotFittedError, match="'n' declares transform=.* never adapted"):
        _dense_model().predict(x)
    with pytest.raises(ConfigError, match="unknown transform 'log'"):
        DenseFeat("n", transform="log")


def test_quantile_transform_buckets_by_the_training_deciles_and_exports(tmp_path):
    """``transform="quantile"`` (Keras's Discretization): the boundaries are the training
    deciles; a value becomes (#boundaries <= x) / 9; it is saved and exported with the model."""
    from ctrkit.layers.dense_transform import QUANTILE_BUCKETS
    x, y = _dense_data()
    model = _dense_model("quantile")
    model.fit(x, y, epochs=1, verbose=0)
    t = model.dense_transforms.by_index[0]
    train = x["n"].astype(np.float32).astype(np.float64)
    deciles = np.quantile(train, np.arange(1, QUANTILE_BUCKETS) / QUANTILE_BUCKETS)
    np.testing.assert_allclose(t.boundaries.numpy().ravel(), deciles, rtol=1e-6)
    probe = np.array([-1e9, deciles[0] - 1e-3, deciles[4] + 1e-3, 1e12], dtype=np.float32)
    got = t(torch.as_tensor(probe).reshape(-1, 1)).numpy().ravel()
    np.testing.assert_allclose(got, [0.0, 0.0, 5 / 9, 1.0])  # saturates: nothing extrapolated
    want = model.predict(x).ravel()
    model.save(tmp_path / "q.ctrkit")
    np.testing.assert_array_equal(ctrkit.load(tmp_path / "q.ctrkit").predict(x).ravel(), want)
    model.export(tmp_path / "q.pt2")
    served = torch.export.load(str(tmp_path / "q.pt2")).module()
    raw = model.input_columns(x)
    got = served(*[raw[n] for n in ctrkit.get_feature_names(model.features)])
    np.testing.assert_allclose(got.detach().numpy().ravel(), want, rtol=0, atol=1e-5)
    model.predict({"u": [1], "v": [1], "n": [1e12]})  # saturated, so no range warning
