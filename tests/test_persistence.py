"""model.save / ctrkit.load: one safe file, exact round trip, atomic writes, clear errors."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import ctrkit
from ctrkit import DenseFeat, SparseFeat, VarLenSparseFeat
from ctrkit.errors import SerializationError
from ctrkit.features import feature_to_dict
from ctrkit.persistence import FORMAT_VERSION
from ctrkit.registry import ENCODERS

ROOT = Path(__file__).resolve().parents[1]


def tiny_data(n: int = 48, seed: int = 0, maxlen: int = 5):
    """(x, y, features): ids, a behaviour history with lengths 0..maxlen, and a dense value."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, maxlen + 1, n)
    valid = np.arange(maxlen)[None, :] < lengths[:, None]
    x = {"user": rng.integers(0, 10, n), "item": rng.integers(1, 12, n),
         "cate": rng.integers(1, 5, n),
         "hist_item": np.where(valid, rng.integers(1, 12, (n, maxlen)), 0),
         "hist_cate": np.where(valid, rng.integers(1, 5, (n, maxlen)), 0),
         "seq_length": lengths, "score": rng.random(n).astype(np.float32)}
    y = (rng.random(n) < 0.5).astype(np.float32)
    y[:2] = [0, 1]
    features = [SparseFeat("user", 10, 4), SparseFeat("item", 12, 4), SparseFeat("cate", 5, 4),
                VarLenSparseFeat(SparseFeat("hist_item", 12, 4), maxlen, length_name="seq_length"),
                VarLenSparseFeat(SparseFeat("hist_cate", 5, 4), maxlen, length_name="seq_length"),
                DenseFeat("score", 1)]
    return x, y, features


def trained(name: str, seed: int = 0, epochs: int = 1, **hparams):
    """A model of ``name`` fitted briefly, so weights and running statistics left their init."""
    x, y, features = tiny_data(seed=seed)
    model = ctrkit.build(name, features, seed=seed, **hparams)
    model.compile("adam", "binary_crossentropy", lr=0.01)
    model.fit(x, y, batch_size=16, epochs=epochs, verbose=0)
    return model, x


def assert_same_model(a, b) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


# ----------------------------------------------------------------------------- round trip
@settings(max_examples=12, deadline=None)
@given(name=st.sampled_from(ctrkit.list_models(multitask=False)), seed=st.integers(0, 10_000),
       weight_norm=st.booleans(), att_activation=st.sampled_from(["dice", "prelu"]))
def test_round_trip_predicts_identically(name, seed, weight_norm, att_activation):
    extra = ({"att_weight_normalization": weight_norm, "att_activation": att_activation}
             if name == "din" else {})
    model, x = trained(name, seed=seed, **extra)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "model.ctrkit"
        model.save(path)
        assert os.listdir(d) == ["model.ctrkit"]  # one file, no leftovers
        loaded = ctrkit.load(path)
    assert type(loaded) is type(model) and loaded.registered_name == name
    assert loaded.hparams == model.hparams
    assert [feature_to_dict(f) for f in loaded.features] == \
        [feature_to_dict(f) for f in model.features]
    assert_same_model(model, loaded)
    assert np.array_equal(model.predict(x), loaded.predict(x))
    # training continues from the same RNG state (the batch order of the next fit)
    assert torch.equal(model.rng.get_state(), loaded.rng.get_state())


def test_file_holds_versions_name_features_and_buffers(tmp_path):
    model, _ = trained("din")
    path = model.save(tmp_path / "din.ctrkit")
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == "ctrkit-model"
    assert payload["format_version"] == FORMAT_VERSION
    assert payload["ctrkit_version"] == ctrkit.__version__
    assert payload["model"] == "din" and payload["hparams"]["device"] == "cpu"
    assert payload["features"] == [feature_to_dict(f) for f in model.features]
    dice = [k for k in payload["state_dict"] if k.endswith("running_mean")]
    assert dice, "Dice running statistics must be saved"
    for k in dice:  # moved away from the init value by fit, and saved as trained
        assert not torch.equal(payload["state_dict"][k], torch.zeros_like(payload["state_dict"][k]))
        assert torch.equal(payload["state_dict"][k], model.state_dict()[k])


def test_directly_constructed_model_and_torch_device_are_saved(tmp_path):
    from ctrkit.models.din import DIN
    x, y, features = tiny_data()
    model = DIN(features, device=torch.device("cpu"), dnn_hidden_units=(8,))
    assert model.registered_name is None
    model.save(tmp_path / "m.ctrkit")
    loaded = ctrkit.load(tmp_path / "m.ctrkit")
    assert loaded.registered_name == "din" and loaded.hparams["device"] == "cpu"
    assert loaded.hparams["dnn_hidden_units"] == (8,)
    assert np.array_equal(model.predict(x), loaded.predict(x))


def test_fresh_process_predicts_identically(tmp_path):
    """Every registered model, saved here and loaded in a new interpreter."""
    x, _, _ = tiny_data()
    np.savez(tmp_path / "x.npz", **x)
    expected = {}
    for name in ctrkit.list_models(multitask=False):
        model, _ = trained(name)
        model.save(tmp_path / f"{name}.ctrkit")
        expected[name] = model.predict(x)
    script = (
        "import sys, numpy as np, torch, ctrkit\n"
        "torch.set_num_threads(1)\n"
        "d = sys.argv[1]; x = dict(np.load(d + '/x.npz'))\n"
        "for name in ctrkit.list_models(multitask=False):\n"
        "    np.save(f'{d}/{name}.npy', ctrkit.load(f'{d}/{name}.ctrkit').predict(x))\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for name, pred in expected.items():
        assert np.array_equal(np.load(tmp_path / f"{name}.npy"), pred), name


# ----------------------------------------------------------------------------- encoders
class TinyEncoder:
    """A minimal encoder of the persistence protocol: 0 padding, 1 out-of-vocabulary, 2.. known."""

    def __init__(self, classes):
        self.classes = [str(c) for c in classes]
        self._index = {c: i + 2 for i, c in enumerate(self.classes)}

    def transform(self, values):
        arr = np.asarray(values).astype(str)
        uniq, inverse = np.unique(arr, return_inverse=True)
        codes = np.array([0 if u == "" else self._index.get(u, 1) for u in uniq], dtype=np.int64)
        return codes[inverse].reshape(arr.shape)

    def to_dict(self):
        return {"classes": list(self.classes)}

    @classmethod
    def from_dict(cls, d):
        return cls(d["classes"])


@pytest.fixture
def encoder_registry():
    with ENCODERS.scope():
        ENCODERS.register("tiny", TinyEncoder)
        yield


def raw_inputs(x):
    """Replace the ids of user/item/hist_item with strings (padding -> '')."""
    raw = dict(x)
    raw["user"] = np.array([f"u{v}" for v in x["user"]])
    raw["item"] = np.array([f"i{v}" for v in x["item"]])
    hist = np.char.add("i", x["hist_item"].astype(str))
    raw["hist_item"] = np.where(x["hist_item"] > 0, hist, "")
    return raw


def test_encoders_map_raw_values_and_survive_save(tmp_path, encoder_registry):
    model, x = trained("din")
    users = TinyEncoder([f"u{i}" for i in range(8)])            # ids 0..7 -> 2..9
    items = TinyEncoder([f"i{i}" for i in range(1, 11)])        # ids 1..10 -> 2..11
    model.encoders = {"user": users, "item": items, "hist_item": items}
    raw = raw_inputs(x)
    raw["user"][:3] = ["never-seen", "u0", "u7"]
    encoded = dict(x)
    encoded["user"] = users.transform(raw["user"])
    encoded["item"] = items.transform(raw["item"])
    encoded["hist_item"] = items.transform(raw["hist_item"])
    assert encoded["user"][0] == 1 and encoded["user"][1] == 2  # unseen -> OOV index 1
    assert (encoded["hist_item"][x["hist_item"] == 0] == 0).all()  # padding stays 0
    model.encoders = {}
    expected = model.predict(encoded)
    model.encoders = {"user": users, "item": items, "hist_item": items}
    np.testing.assert_array_equal(model.predict(raw), expected)
    model.save(tmp_path / "m.ctrkit")
    loaded = ctrkit.load(tmp_path / "m.ctrkit")
    assert set(loaded.encoders) == {"user", "item", "hist_item"}
    assert loaded.encoders["item"].classes == items.classes
    np.testing.assert_array_equal(loaded.predict(raw), expected)
    # evaluate takes raw values as well
    y = (np.arange(len(expected)) % 2).astype(np.float32)
    model.compile("adam")
    loaded.compile("adam")
    assert model.evaluate(raw, y) == pytest.approx(loaded.evaluate(raw, y))


def test_unregistered_encoder_is_refused_at_save(tmp_path):
    model, _ = trained("din")
    model.encoders = {"user": TinyEncoder(["a"])}
    with pytest.raises(SerializationError, match="encoder of feature 'user'.*TinyEncoder"):
        model.save(tmp_path / "m.ctrkit")
    assert not (tmp_path / "m.ctrkit").exists()


def test_encoder_for_unknown_feature_is_refused(tmp_path, encoder_registry):
    model, _ = trained("din")
    model.encoders = {"usr": TinyEncoder(["a"])}
    with pytest.raises(SerializationError, match="'usr'"):
        model.save(tmp_path / "m.ctrkit")


# ----------------------------------------------------------------------------- save errors
def test_non_plain_hyperparameter_names_it_and_writes_nothing(tmp_path):
    x, y, features = tiny_data()
    model = ctrkit.build("din", features, dnn_activation=torch.nn.ReLU)
    with pytest.raises(SerializationError, match="Hyperparameter 'dnn_activation'.*'relu'"):
        model.save(tmp_path / "m.ctrkit")
    assert os.listdir(tmp_path) == []


def test_dense_transform_fn_cannot_be_saved(tmp_path):
    x, y, features = tiny_data()
    features[-1] = DenseFeat("score", 1, transform_fn=np.log1p)
    model = ctrkit.build("din", features)
    with pytest.raises(SerializationError, match="'score' has a transform_fn"):
        model.save(tmp_path / "m.ctrkit")


# ----------------------------------------------------------------------------- atomic writes
@pytest.mark.parametrize("existing", [True, False])
def test_crash_mid_save_leaves_old_file_and_no_temp(tmp_path, monkeypatch, existing):
    model, x = trained("din")
    path = tmp_path / "m.ctrkit"
    if existing:
        model.save(path)
        before = path.read_bytes()
    real_save = torch.save

    def half_then_crash(obj, fh, *a, **kw):
        import io
        buf = io.BytesIO()
        real_save(obj, buf)
        fh.write(buf.getvalue()[: len(buf.getvalue()) // 2])
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", half_then_crash)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    with pytest.raises(OSError, match="No space"):
        model.save(path)
    monkeypatch.undo()
    if existing:
        assert os.listdir(tmp_path) == ["m.ctrkit"] and path.read_bytes() == before
        ctrkit.load(path)  # still a complete, loadable file
    else:
        assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------- load errors
class RunsCodeOnLoad:
    """Unpickling this touches a marker file: the kind of payload a loader must refuse."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_file_with_pickled_object_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.ctrkit"
    torch.save({"format": "ctrkit-model", "format_version": 1, "hook": RunsCodeOnLoad(marker)},
               path)
    with pytest.raises(SerializationError, match=f"{path}.*pickled Python object"):
        ctrkit.load(path)
    assert not marker.exists()
    # the file really is dangerous: an unsafe loader runs its code
    torch.load(path, weights_only=False)
    assert marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_plain_pickle_is_refused(tmp_path):
    path = tmp_path / "p.ctrkit"
    marker = tmp_path / "code-ran"
    path.write_bytes(pickle.dumps(RunsCodeOnLoad(marker)))
    with pytest.raises(SerializationError, match=str(path)):
        ctrkit.load(path)
    assert not marker.exists()


@pytest.mark.parametrize("keep", [0.0, 0.3, 0.9])
def test_truncated_file(tmp_path, keep):
    model, _ = trained("din")
    path = model.save(tmp_path / "m.ctrkit")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    message = f"Cannot read '{path}': it is empty" if keep == 0 else f"'{path}' is truncated"
    with pytest.raises(SerializationError, match=message):
        ctrkit.load(path)


def _rewrite(path, edit):
    """Edit the payload and write it back sealed: what a deliberate tamperer could do."""
    from ctrkit.persistence import save_plain
    payload = torch.load(path, weights_only=True)
    edit(payload)
    save_plain(payload, path)


@pytest.mark.parametrize("edit, message", [
    (lambda p: p["state_dict"].pop("dnn_linear.weight"), "Missing key.*dnn_linear.weight"),
    (lambda p: p["state_dict"].update(extra=torch.zeros(1)), "Unexpected key.*extra"),
    (lambda p: p["state_dict"].update({"dnn_linear.weight": torch.zeros(1, 3)}),
     "size mismatch for dnn_linear.weight"),
    (lambda p: p["state_dict"].update({"dnn_linear.weight": "not a tensor"}),
     "not a dict of tensors"),
    (lambda p: p["hparams"].update(att_hidden_size=(5,)), "do not fit the model"),
    (lambda p: p["hparams"].update(no_such_option=1), "no_such_option"),
    (lambda p: p.update(model="no-such-model"), "'no-such-model', which is not registered"),
    (lambda p: p.update(features="user"), "'features' entry is str"),
    (lambda p: p.update(format_version=FORMAT_VERSION + 1),
     f"format version {FORMAT_VERSION + 1}.*Upgrade ctrkit"),
    (lambda p: p.update(format="something-else"), "not a ctrkit-model file"),
])
def test_tampered_or_newer_file_is_refused_naming_the_path(tmp_path, edit, message):
    model, _ = trained("din")
    path = model.save(tmp_path / "m.ctrkit")
    _rewrite(path, edit)
    with pytest.raises(SerializationError, match=message) as err:
        ctrkit.load(path)
    assert str(path) in str(err.value)


def test_missing_file_and_foreign_torch_file(tmp_path):
    with pytest.raises(SerializationError, match="No file at"):
        ctrkit.load(tmp_path / "nope.ctrkit")
    torch.save({"weight": torch.zeros(2)}, tmp_path / "sd.pt")
    with pytest.raises(SerializationError, match="not a ctrkit-model file"):
        ctrkit.load(tmp_path / "sd.pt")


def test_ctrkit_encoder_class_is_found_without_registration(tmp_path, monkeypatch):
    import ctrkit.persistence as mod

    class ShippedEncoder(TinyEncoder):  # stands for an encoder class shipped inside ctrkit
        pass

    ShippedEncoder.__module__, ShippedEncoder.__qualname__ = mod.__name__, "ShippedEncoder"
    monkeypatch.setattr(mod, "ShippedEncoder", ShippedEncoder, raising=False)
    model, x = trained("din")
    model.encoders = {"user": ShippedEncoder([f"u{i}" for i in range(8)])}
    path = model.save(tmp_path / "m.ctrkit")
    assert torch.load(path, weights_only=True)["encoders"]["user"]["type"] == \
        "ctrkit.persistence:ShippedEncoder"
    loaded = ctrkit.load(path)
    assert type(loaded.encoders["user"]) is ShippedEncoder
    raw = {**x, "user": np.array([f"u{v}" for v in x["user"]])}
    np.testing.assert_array_equal(loaded.predict(raw), model.predict(raw))


@pytest.mark.parametrize("type_name", ["os:system", "builtins:eval", "ctrkit:build",
                                       "no-such-encoder"])
def test_encoder_type_outside_ctrkit_or_unknown_is_refused(tmp_path, encoder_registry,
                                                           type_name):
    model, _ = trained("din")
    model.encoders = {"user": TinyEncoder(["a"])}
    path = model.save(tmp_path / "m.ctrkit")
    _rewrite(path, lambda p: p["encoders"]["user"].update(type=type_name))
    with pytest.raises(SerializationError, match=f"(?s){path}.*encoder of type"):
        ctrkit.load(path)


def test_a_text_file_is_named_as_not_a_ctrkit_file(tmp_path):
    """Seen: loading a text file said it 'contains a pickled Python object'."""
    path = tmp_path / "notes.txt"
    path.write_text("hello, this is not a model\n")
    with pytest.raises(SerializationError, match=r"Cannot read '.*notes.txt': it is not a "
                                                 r"ctrkit-model file \(it was not written by "
                                                 r"torch.save; it starts with b'hell'\)") as e:
        ctrkit.load(path)
    assert "pickled" not in str(e.value)


def test_table_names_in_saved_data_are_plain_str(tmp_path):
    # SparseFeat's implicit embedding_name is a str subclass; as a key of what is saved (the
    # MBA regularizer's per-table counts) it made torch.load(weights_only=True) refuse the file
    import ctrkit
    import torch
    from ctrkit.datasets import make_synthetic
    x, y, features = make_synthetic(n_rows=64, maxlen=4, embedding_dim=4, seed=0)
    model = ctrkit.build("din", features, embedding_regularizer="mba", l2_reg_embedding=1e-3)
    model.compile("adam")
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    counts = model.regularizer.inv_counts
    assert counts and all(type(k) is str for k in counts)
    torch.save({"inv_counts": counts, "state": model.state_dict()}, tmp_path / "w.pt")
    loaded = torch.load(tmp_path / "w.pt", weights_only=True)
    assert loaded["inv_counts"].keys() == counts.keys()
    assert all(type(t) is str for t in model.embeddings.table_of.values())


# ----------------------------------------------------------------------------- integrity
def _encoded_model(tmp_path):
    """A small DIN with a vocabulary attached, saved: every kind of member is in the file."""
    from ctrkit.data import CategoricalEncoder
    model, x = trained("din", dnn_hidden_units=(8,), att_hidden_size=(4,))
    users = CategoricalEncoder().fit([f"u{i}" for i in range(8)])
    model.encoders = {"user": users}
    return model, model.save(tmp_path / "m.ctrkit")


def _member_spans(path):
    """{what: [(start, end) byte ranges]} of a saved file: zip local headers, each member's
    data (the pickled metadata, tensor storages), the central directory and the seal."""
    import zipfile
    spans = {"local headers": [], "metadata (data.pkl)": [], "tensors": [], "bookkeeping": []}
    with zipfile.ZipFile(path) as z:
        infos = sorted(z.infolist(), key=lambda i: i.header_offset)
        directory = z.start_dir
    raw = path.read_bytes()
    for info in infos:
        start = info.header_offset
        name_len = int.from_bytes(raw[start + 26:start + 28], "little")
        extra_len = int.from_bytes(raw[start + 28:start + 30], "little")
        data = start + 30 + name_len + extra_len
        spans["local headers"].append((start, data))
        kind = ("metadata (data.pkl)" if info.filename.endswith("data.pkl") else
                "tensors" if "/data/" in info.filename else "bookkeeping")
        spans[kind].append((data, data + info.compress_size))
    spans["central directory + end record"] = [(directory, len(raw) - 78)]
    spans["seal (digest)"] = [(len(raw) - 78, len(raw))]
    covered = {p for ranges in spans.values() for a, b in ranges for p in range(a, b)}
    spans["between members (data descriptors, alignment)"] = [
        (p, p + 1) for p in range(len(raw)) if p not in covered]
    return spans


def test_every_flipped_byte_is_refused_naming_the_damage(tmp_path):
    """Flip one byte at every position of a saved model (headers, metadata, weights, encoder,
    directory, digest): each load raises SerializationError; none loads silently."""
    model, path = _encoded_model(tmp_path)
    good = path.read_bytes()
    spans = _member_spans(path)
    assert all(spans[k] for k in spans), spans
    covered = [p for ranges in spans.values() for a, b in ranges for p in range(a, b)]
    assert sorted(covered) == list(range(len(good)))  # every byte has its class
    damaged = tmp_path / "d.ctrkit"
    named = {k: 0 for k in spans}
    stride = {"tensors": 7}  # tensor bytes sampled (all ~15k would take minutes); others all
    for kind, ranges in spans.items():
        for a, b in ranges:
            for pos in range(a, b, stride.get(kind, 1)):
                bad = bytearray(good)
                bad[pos] ^= 0x5A
                damaged.write_bytes(bytes(bad))
                with pytest.raises(SerializationError, match=r"'.*d\.ctrkit' is (damaged|truncated)"
                                   ) as err:
                    ctrkit.load(damaged)
                named[kind] += "fails its CRC" in str(err.value)
    # a flipped byte inside a member's data is located by the member's CRC
    assert named["tensors"] == sum(len(range(a, b, 7)) for a, b in spans["tensors"])
    assert named["metadata (data.pkl)"] == sum(b - a for a, b in spans["metadata (data.pkl)"])
    x = tiny_data()[0]  # the original still loads and predicts as saved
    np.testing.assert_array_equal(ctrkit.load(path).predict(x, encoded=True),
                                  model.predict(x, encoded=True))


def test_damaged_member_is_named(tmp_path):
    _, path = _encoded_model(tmp_path)
    weights = _member_spans(path)["tensors"][0]
    raw = bytearray(path.read_bytes())
    raw[weights[0]] ^= 1
    path.write_bytes(bytes(raw))
    with pytest.raises(SerializationError, match=r"the member '[^']*/data/\d+' \(tensor storage "
                                                 r"\d+: weights, buffers or encoder arrays\) "
                                                 r"fails its CRC"):
        ctrkit.load(path)


def test_unsealed_file_from_before_sealing_loads_with_a_warning(tmp_path):
    model, path = _encoded_model(tmp_path)
    torch.save(torch.load(path, weights_only=True), path)  # as ctrkit < 0.3 wrote it
    with pytest.warns(UserWarning, match="written before ctrkit sealed its files"):
        loaded = ctrkit.load(path)
    x = tiny_data()[0]
    x = {**x, "user": np.array([f"u{i % 8}" for i in x["user"]])}
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_any_single_byte_change_is_refused(tmp_path_factory, data):
    """Hypothesis: any position, any non-zero xor mask."""
    tmp = tmp_path_factory.mktemp("flip")
    if not (tmp / "m.ctrkit").exists():
        _encoded_model(tmp)
    raw = bytearray((tmp / "m.ctrkit").read_bytes())
    pos = data.draw(st.integers(0, len(raw) - 1))
    raw[pos] ^= data.draw(st.integers(1, 255))
    (tmp / "d.ctrkit").write_bytes(bytes(raw))
    with pytest.raises(SerializationError):
        ctrkit.load(tmp / "d.ctrkit")
