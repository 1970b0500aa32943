import pytest

import ctrkit
from ctrkit.errors import DuplicateNameError, UnknownNameError
from ctrkit.registry import ACTIVATIONS, MODELS, Registry


def test_unknown_name_suggests_closest_and_lists_all():
    with pytest.raises(UnknownNameError) as e:
        ctrkit.build("dinn", [ctrkit.SparseFeat("a", 2)])
    msg = str(e.value)
    assert "Unknown model 'dinn'. Did you mean 'din'?" in msg
    assert f"Registered models: {MODELS.list()}" in msg


def test_register_get_list_and_duplicates():
    r = Registry("widget")

    @r.register("alpha")
    class Alpha:
        pass

    assert r.get("ALPHA") is Alpha and "alpha" in r and r.list() == ["alpha"]
    with pytest.raises(DuplicateNameError, match="widget name 'alpha' is already registered"):
        r.register("alpha", obj=object())
    other = object()
    assert r.register("alpha", obj=other, override=True) is other
    assert r.get("alpha") is other
    r.register("beta", obj=1)
    assert r.list("b*") == ["beta"]
    with pytest.raises(UnknownNameError, match=r"Unknown widget 'gamma'. Registered widgets: \['alpha', 'beta'\]"):
        r.get("gamma")


def test_scope_undoes_registrations_and_removals():
    before = ctrkit.list_models()
    with MODELS.scope():
        @ctrkit.register_model("tiny_model")
        class Tiny(ctrkit.BaseModel):
            pass
        assert "tiny_model" in ctrkit.list_models()
        MODELS.unregister("din")
        assert "din" not in ctrkit.list_models()
    assert ctrkit.list_models() == before


def test_builtin_registrations():
    assert "din" in ctrkit.list_models()
    for name in ("relu", "sigmoid", "tanh", "prelu", "linear", "dice"):
        assert name in ACTIVATIONS
    for kind in ("metric", "loss", "optimizer", "layer"):
        assert ctrkit.registry.REGISTRIES[kind].list()
    assert {"din_attention_pooling", "din_local_activation_unit"} <= set(ctrkit.LAYERS.list())


def test_build_rejects_unknown_hyperparameter(tutorial):
    _, _, feats, _ = tutorial
    with pytest.raises(ctrkit.errors.ConfigError,
                       match=r"unknown hyperparameter\(s\) 'att_hiden_size' \(did you mean 'att_hidden_size'\?\)"):
        ctrkit.build("din", feats, att_hiden_size=(8,))


def test_unknown_loss_lists_registered_losses():
    """Seen: the unknown-loss message said 'Registered losss'."""
    from ctrkit.registry import LOSSES
    with pytest.raises(UnknownNameError, match=r"Unknown loss 'binary_crossentropyy'\. Did you "
                                               r"mean 'binary_crossentropy'\? Registered losses: ") as e:
        LOSSES.get("binary_crossentropyy")
    assert "losss" not in str(e.value)
