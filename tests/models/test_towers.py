"""Task towers on single-task models (issue 26): ``build("din", features, task_names=...)``."""
import copy

import numpy as np
import pytest
import torch
from torch import nn

import ctrkit
from ctrkit.errors import ConfigError
from ctrkit.registry import MODELS

TASKS = ("ctr", "cvr")


@pytest.fixture(scope="module")
def data():
    from ctrkit.datasets import make_synthetic
    x, y, features = make_synthetic(n_rows=600, n_users=60, n_items=90, n_categories=6,
                                    maxlen=6, embedding_dim=4, seed=4)
    rng = np.random.default_rng(0)
    buy = np.where(y > 0, (rng.random(len(y)) < 0.4).astype(np.float32), np.nan)
    return x, np.stack([y, buy], 1).astype(np.float32), features


@pytest.mark.parametrize("name", ctrkit.list_models(multitask=False))
def test_the_default_build_is_untouched(name, data):
    """task_names=None is the default build: the same hyperparameters, parameters, head and
    predictions. With task_names, the body draws exactly the default's weights and the first
    task's head is the default's logit layer, so before training task 1 predicts what the
    default model predicts."""
    x, _, features = data
    default = ctrkit.build(name, features, seed=5)
    explicit = ctrkit.build(name, features, seed=5, task_names=None)
    towers = ctrkit.build(name, features, seed=5, task_names=TASKS)
    assert explicit.hparams == default.hparams and "task_names" not in default.hparams
    assert type(explicit.head) is type(default.head) and default.task_names is None
    sd, se, st = default.state_dict(), explicit.state_dict(), towers.state_dict()
    assert list(sd) == list(se)
    for k, v in sd.items():
        assert torch.equal(v, se[k]), k
        if k != "head.bias":  # (1,) for one output, (T,) with towers
            assert torch.equal(v, st[k]), k
    assert {k for k in st if k not in sd} == {f"head.towers.{a}.weight" for a in
                                              towers.head.towers}
    pred = default.predict(x)
    np.testing.assert_array_equal(explicit.predict(x), pred)
    np.testing.assert_allclose(towers.predict(x)[:, :1], pred, rtol=1e-6, atol=1e-7)


def test_towers_train_per_task_and_log_keras_names(data):
    x, y, features = data
    model = ctrkit.build("din", features, seed=0, task_names=TASKS, dnn_hidden_units=(16,))
    model.compile("adam", metrics=["auc"], lr=1e-2, loss_weights={"ctr": 1.0, "cvr": 0.5})
    head_before = copy.deepcopy(model.head.state_dict())
    history = model.fit(x, y, batch_size=64, epochs=2, verbose=0, validation_split=0.25)
    assert {"loss", "ctr_loss", "cvr_loss", "ctr_auc", "cvr_auc", "val_ctr_auc",
            "val_cvr_auc"} <= set(history.history)
    for k, v in model.head.state_dict().items():
        assert not torch.equal(v, head_before[k]), k  # every task's head learns
    res = model.evaluate(x, y)
    assert res["loss"] == pytest.approx(res["ctr_loss"] + 0.5 * res["cvr_loss"], rel=1e-5)
    assert list(model.predict(x, as_dict=True)) == list(TASKS)


def test_a_task_with_weight_zero_leaves_its_head_without_gradient(data):
    """The cvr head sees only the cvr loss: with its weight 0 its gradient is 0, while the
    shared body still learns from ctr."""
    x, y, features = data
    model = ctrkit.build("deepfm", features, seed=0, task_names=TASKS, dnn_hidden_units=(8,))
    model.compile("sgd", lr=0.1, loss_weights=[1.0, 0.0])
    before = model.head.towers["dnn_linear"].weight.detach().clone()
    body = model.dnn_linear.weight.detach().clone()
    model.fit(x, y, batch_size=600, epochs=1, verbose=0, shuffle=False)
    assert torch.equal(model.head.towers["dnn_linear"].weight, before)
    assert not torch.equal(model.dnn_linear.weight, body)


def test_save_load_keeps_the_towers(data, tmp_path):
    x, y, features = data
    model = ctrkit.build("xdeepfm", features, seed=0, task_names=("click", "rating"),
                         task_types=("binary", "regression"), dnn_hidden_units=(8,),
                         cin_layer_size=(4,))
    assert sorted(model.head.towers) == ["cin_linear", "dnn_linear"]
    model.compile("adam", lr=1e-2)
    yy = np.stack([y[:, 0], 3.0 * y[:, 0] + 1.0], 1)
    model.fit(x, yy, batch_size=64, epochs=1, verbose=0)
    path = model.save(tmp_path / "m.ctrkit")
    loaded = ctrkit.load(path)
    assert loaded.task_names == ("click", "rating")
    assert loaded.task_types == ("binary", "regression")
    assert "task" not in loaded.hparams
    pred = model.predict(x)
    assert (pred[:, 1] > 1.0).any()  # the regression head is not squashed by a sigmoid
    np.testing.assert_array_equal(loaded.predict(x), pred)


def test_a_deep_copy_predicts_through_its_own_heads(data):
    """The towers' hooks are objects, so a copy's hooks feed the copy's head."""
    x, _, features = data
    model = ctrkit.build("din", features, seed=0, task_names=TASKS)
    clone = copy.deepcopy(model)
    pred = model.predict(x)
    np.testing.assert_array_equal(clone.predict(x), pred)
    with torch.no_grad():
        clone.head.towers["dnn_linear"].weight.mul_(3.0)
    np.testing.assert_array_equal(model.predict(x), pred)
    assert not np.array_equal(clone.predict(x)[:, 1], pred[:, 1])


def test_explain_shows_the_shared_attention(data):
    x, _, features = data
    default = ctrkit.build("din", features, seed=2)
    towers = ctrkit.build("din", features, seed=2, task_names=TASKS)
    np.testing.assert_array_equal(towers.explain(x), default.explain(x))


def test_bad_tower_arguments_are_refused(data):
    _, _, features = data
    with pytest.raises(ConfigError, match="no logit layer"):
        ctrkit.build("deepfm", features, task_names=TASKS, dnn_hidden_units=())
    with pytest.raises(ConfigError, match="task_types=.*without task_names"):
        ctrkit.build("din", features, task_types="binary")
    with pytest.raises(ConfigError, match="give the types as task_types only"):
        ctrkit.build("din", features, task_names=TASKS, task="binary", task_types="binary")
    with pytest.raises(ConfigError, match="at least 2"):
        ctrkit.build("din", features, task_names=("ctr",))
    with pytest.raises(ConfigError, match="task_types"):
        ctrkit.build("din", features, task_names=TASKS, task_types=("binary",))
    # task= alone gives every task its type
    assert ctrkit.build("din", features, task_names=TASKS,
                        task="regression").task_types == ("regression", "regression")


class _Plugin(ctrkit.BaseModel):
    """A user's plug-in: its final layer is named ``out``, declared in ``logit_layers``."""
    logit_layers = ("out",)

    def __init__(self, dnn_feature_columns, width=8, seed=1024):
        super().__init__(dnn_feature_columns, seed=seed)
        self.sparse = self.features_of(ctrkit.SparseFeat)
        self.body = nn.Linear(sum(f.embedding_dim for f in self.sparse), width)
        self.out = nn.Linear(width, 1, bias=False)

    def forward(self, batch):
        h = torch.relu(self.body(torch.cat(self.embed_sparse(batch, self.sparse), -1)))
        return self.head(self.out(h).squeeze(-1))


def test_a_plugin_grows_towers_and_an_undeclared_one_is_refused(data):
    x, y, features = data
    with MODELS.scope():
        ctrkit.register_model("plug")(_Plugin)
        model = ctrkit.build("plug", features, task_names=TASKS)
        model.compile("adam", metrics=["auc"], lr=1e-2)
        assert "cvr_auc" in model.fit(x, y, batch_size=64, epochs=1, verbose=0).history

        class Undeclared(_Plugin):
            logit_layers = ("dnn_linear",)
        ctrkit.register_model("undeclared")(Undeclared)
        with pytest.raises(ConfigError, match="name its final nn.Linear"):
            ctrkit.build("undeclared", features, task_names=TASKS)

        class Wrong(_Plugin):
            logit_layers = ("body",)
        ctrkit.register_model("wrong")(Wrong)
        with pytest.raises(ConfigError, match=r"not an nn.Linear\(D, 1\)"):
            ctrkit.build("wrong", features, task_names=TASKS)


@pytest.mark.parametrize("name", ["din", "deepfm"])
def test_with_the_other_task_weighted_zero_the_first_task_trains_as_the_single_model(name, data):
    """The same seed, the cvr loss weighted 0: the tower model's ctr column follows the
    single-task model's training step for step (up to float rounding: the multi-task loss
    is summed per task)."""
    x, y, features = data
    a = ctrkit.build(name, features, seed=0, dnn_hidden_units=(8,))
    a.compile("adam", lr=1e-2)
    b = ctrkit.build(name, features, seed=0, dnn_hidden_units=(8,), task_names=TASKS)
    b.compile("adam", lr=1e-2, loss_weights=[1.0, 0.0])
    ha = a.fit(x, y[:, 0], batch_size=64, epochs=2, verbose=0)
    hb = b.fit(x, y, batch_size=64, epochs=2, verbose=0)
    np.testing.assert_allclose(hb.history["ctr_loss"], ha.history["loss"], rtol=1e-5)
    np.testing.assert_allclose(b.predict(x)[:, 0], a.predict(x)[:, 0], rtol=1e-5, atol=1e-6)
    assert not np.allclose(b.predict(x)[:, 0], ctrkit.build(
        name, features, seed=0, dnn_hidden_units=(8,)).predict(x)[:, 0])  # it trained
