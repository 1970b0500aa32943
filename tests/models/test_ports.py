"""DeepCTR-Torch's model names and positional order (issue 25: ``DeepFM(linear, dnn)`` bound the
lists reversed; ``DCN(linear, dnn)``/``AutoInt(linear, dnn)`` raised a raw TypeError)."""
from __future__ import annotations

import numpy as np
import pytest

import ctrkit
from ctrkit import DenseFeat, SparseFeat, VarLenSparseFeat
from ctrkit.errors import ConfigError
from ctrkit.models import ports


def data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    features = [SparseFeat("item", 6, 4), SparseFeat("user", 5, 4), DenseFeat("d", 1),
                VarLenSparseFeat(SparseFeat("hist_item", 6, 4), maxlen=3, length_name="len")]
    x = {"item": rng.integers(1, 6, n), "user": rng.integers(0, 5, n), "d": rng.random(n),
         "hist_item": rng.integers(1, 6, (n, 3)), "len": rng.integers(1, 4, n)}
    return x, rng.integers(0, 2, n), features


def test_star_import_gives_deepctr_names():
    scope: dict = {}
    exec("from ctrkit.models import *", scope)
    for name in ["DIN", "DIEN", "DeepFM", "WDL", "DCN", "DCNMix", "AutoInt", "xDeepFM", "PNN",
                 "BST"]:
        assert scope[name] is getattr(ports, name)


@pytest.mark.parametrize("port, name", [("DeepFM", "deepfm"), ("WDL", "wdl"), ("DCN", "dcn"),
                                        ("DCNMix", "dcnv2"), ("AutoInt", "autoint"),
                                        ("xDeepFM", "xdeepfm")])
def test_linear_then_dnn_binds_as_in_deepctr_and_equals_build(port, name, tmp_path):
    x, y, features = data()
    linear = features[1:3]  # user + d: smaller than the dnn list, so a swap would show
    model = getattr(ports, port)(linear, features, dnn_hidden_units=(4,))
    assert isinstance(model, getattr(ports, port))
    assert model.hparams["linear_feature_columns"] == ["user", "d"]
    assert [f.name for f in model.features] == [f.name for f in features]
    assert model.linear is not None
    extra = ports.SIGNATURES[port][2]
    same = ctrkit.build(name, features, linear_feature_columns=linear, dnn_hidden_units=(4,),
                        **extra)
    np.testing.assert_array_equal(model.predict(x), same.predict(x))
    model.compile("adam")
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    np.testing.assert_array_equal(ctrkit.load(model.save(tmp_path / "m.ctrkit")).predict(x),
                                  model.predict(x))


def test_more_positional_arguments_bind_in_deepctr_order():
    _, _, features = data()
    fm = ports.DeepFM(features, features, False, (8,))
    assert fm.hparams["use_fm"] is False and fm.hparams["dnn_hidden_units"] == (8,)
    dcn = ports.DCN(features, features, 3, "matrix")
    assert dcn.hparams["cross_num"] == 3 and dcn.hparams["cross_parameterization"] == "matrix"
    din = ports.DIN(features, ["item"], True)
    assert din.hparams["history_feature_list"] == ["item"] and din.hparams["dnn_use_bn"] is True
    pnn = ports.PNN(features, (8,))
    assert pnn.hparams["dnn_hidden_units"] == (8,)


def test_linear_part_of_dcn_and_autoint_changes_the_output():
    x, _, features = data()
    with_linear = ports.DCN(features, features, dnn_hidden_units=(4,))
    without = ports.DCN([], features, dnn_hidden_units=(4,))
    assert without.linear is None
    import torch
    with torch.no_grad():  # ctrkit starts linear weights at zero; make the term visible
        for p in with_linear.linear.parameters():
            p.fill_(0.5)
    assert not np.allclose(with_linear.predict(x), without.predict(x))


@pytest.mark.parametrize("call, message", [
    (lambda f: ports.DeepFM(f), r"only linear_feature_columns was given.*"
                                r"DeepFM\(linear_feature_columns=\.\.\., dnn_feature_columns="),
    (lambda f: ports.DCN(dnn_feature_columns=f), r"only dnn_feature_columns was given"),
    (lambda f: ports.DeepFM(f, f, use_fm=True, dnn_feature_columns=f),
     r"\['dnn_feature_columns'\] both by position and by keyword"),
    (lambda f: ports.BST(f, ["item"], 1), r"at most 2 positional arguments"),
    (lambda f: ports.PNN(), r"needs dnn_feature_columns"),
])
def test_an_ambiguous_call_is_refused_with_the_keyword_form(call, message):
    _, _, features = data()
    with pytest.raises(ConfigError, match=message):
        call(features)
