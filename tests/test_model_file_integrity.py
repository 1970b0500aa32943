"""A damaged .ctrkit file never loads: every byte flip raises SerializationError naming the part.

Issue 25: 25 of 30 single-byte flips used to load and change the predictions.
"""
from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import ctrkit
from ctrkit import SparseFeat
from ctrkit.data.encoders import CategoricalEncoder
from ctrkit.errors import SerializationError
from ctrkit.persistence import MANIFEST, model_payload, read_model_file, save_plain


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """(bytes of a small saved model with an encoder, {member: (data start, data end)}, model)."""
    model = ctrkit.build("base", [SparseFeat("user", 5, 2), SparseFeat("item", 3, 2)],
                         dnn_hidden_units=(2,))
    model.encoders = {"user": CategoricalEncoder("user").fit(np.array(["a", "b", "c"]))}
    path = model.save(tmp_path_factory.mktemp("m") / "m.ctrkit")
    data = path.read_bytes()
    spans = {}
    for info in zipfile.ZipFile(path).infolist():
        start = info.header_offset + 30 + len(info.filename) + len(info.extra)
        spans[info.filename] = (start, start + info.file_size)
    return data, spans, model


def regions(data, spans):
    """Name the region of every byte: a member's data, or the zip structure around it."""
    where = np.array(["zip headers"] * len(data), dtype=object)
    for name, (a, b) in spans.items():
        where[a:b] = name
    return where


def flip_and_load(tmp_path, data, pos):
    bad = bytearray(data)
    bad[pos] ^= 0xFF
    path = tmp_path / "flipped.ctrkit"
    path.write_bytes(bytes(bad))
    with pytest.raises(SerializationError) as err:  # any other exception type fails the test
        ctrkit.load(path)
    assert str(path) in str(err.value)
    return str(err.value)


def test_the_file_holds_the_documented_members_and_a_valid_manifest(saved):
    data, spans, model = saved
    assert set(spans) == {"ctrkit-model/metadata.pt", "ctrkit-model/encoders.pt",
                          "ctrkit-model/weights.pt", MANIFEST}
    assert data[-78:].startswith(b"ctrkit-sha256:")


def test_every_byte_outside_the_weights_flipped_raises_naming_the_part(saved, tmp_path):
    data, spans, _ = saved
    where = regions(data, spans)
    a, b = spans["ctrkit-model/weights.pt"]
    seen = set()
    for pos in [p for p in range(len(data)) if not a <= p < b]:
        message = flip_and_load(tmp_path, data, pos)
        region = where[pos]
        if region == MANIFEST:
            assert "the manifest is damaged" in message, (pos, message)
        elif region != "zip headers":
            assert f"member '{region}' is damaged" in message, (pos, message)
        else:
            assert " is damaged" in message and "save the model again" in message, (pos, message)
        seen.add(region)
    # every position class was hit: local/central headers, metadata, encoders, manifest
    assert seen == set(spans) - {"ctrkit-model/weights.pt"} | {"zip headers"}


@settings(max_examples=40, deadline=None)
@given(frac=st.floats(0, 1, exclude_max=True))
def test_a_flipped_weight_byte_raises_naming_the_weights(saved, tmp_path_factory, frac):
    data, spans, _ = saved
    a, b = spans["ctrkit-model/weights.pt"]
    message = flip_and_load(tmp_path_factory.mktemp("w"), data, a + int(frac * (b - a)))
    assert "member 'ctrkit-model/weights.pt' is damaged" in message


def test_intact_file_loads_and_predicts_identically(saved, tmp_path):
    data, _, model = saved
    path = tmp_path / "ok.ctrkit"
    path.write_bytes(data)
    x = {"user": np.array(["a", "c", "b"]), "item": np.array([0, 2, 1])}
    np.testing.assert_array_equal(ctrkit.load(path).predict(x), model.predict(x))


def test_a_resealed_file_with_an_extra_member_is_refused(saved, tmp_path):
    data, _, _ = saved
    path = tmp_path / "extra.ctrkit"
    path.write_bytes(data)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("ctrkit-model/extra.pt", b"x")
    with pytest.raises(SerializationError, match="the manifest is damaged.*extra.pt"):
        ctrkit.load(path)


def test_layout_1_file_loads_with_a_warning_and_the_fix(saved, tmp_path):
    _, _, model = saved
    payload = model_payload(model)
    payload["format_version"] = 1
    path = tmp_path / "old.ctrkit"
    save_plain(payload, path)  # how ctrkit wrote model files before the manifest
    with pytest.warns(UserWarning, match=r"layout 1.*no integrity manifest.*Save it again"):
        old = ctrkit.load(path)
    x = {"user": np.array(["a", "b"]), "item": np.array([0, 1])}
    np.testing.assert_array_equal(old.predict(x), model.predict(x))
    payload["format_version"] = 2  # a single archive claiming the new layout: tampered
    save_plain(payload, path)
    with pytest.raises(SerializationError, match="without the manifest"):
        ctrkit.load(path)


def test_read_model_file_returns_the_payload(saved, tmp_path):
    data, _, model = saved
    path = tmp_path / "m.ctrkit"
    path.write_bytes(data)
    payload = read_model_file(path)
    assert payload["model"] == "base" and set(payload["encoders"]) == {"user"}
    for k, v in model.state_dict().items():
        assert torch.equal(payload["state_dict"][k], v)
