"""The DeepCTR-Torch DIN tutorial, run through ctrkit, behaves as it does there."""
import numpy as np
from sklearn.metrics import roc_auc_score

import ctrkit


def test_tutorial_loss_falls_and_auc_reaches_one(tutorial):
    x, y, feature_columns, behavior_feature_list = tutorial
    model = ctrkit.build("din", feature_columns, history_feature_list=behavior_feature_list,
                         att_weight_normalization=True)
    model.compile("adagrad", "binary_crossentropy", metrics=["binary_crossentropy", "auc"])
    history = model.fit(x, y, batch_size=3, epochs=10, verbose=0, validation_split=0.0)
    loss = history.history["loss"]
    assert len(loss) == 10 and history.epoch == list(range(10))
    assert all(b < a for a, b in zip(loss, loss[1:])), loss
    assert loss[-1] < loss[0] - 0.1
    assert history.history["auc"][-1] == 1.0
    # the logged epoch metric is the exact metric of that epoch's predictions
    np.testing.assert_allclose(history.history["binary_crossentropy"], loss, rtol=1e-4)
    pred = model.predict(x)
    assert pred.shape == (3, 1) and pred.dtype == np.float64
    assert roc_auc_score(y, pred.ravel()) == 1.0
    ev = model.evaluate(x, y)
    assert set(ev) == {"loss", "binary_crossentropy", "auc"}
    assert ev["auc"] == 1.0


def test_tutorial_history_pairs_are_inferred(tutorial):
    x, y, feature_columns, _ = tutorial
    model = ctrkit.build("din", feature_columns)
    assert model.history_feature_list == ["item", "item_gender"]
    # history shares the candidate's table (its embedding_name was not set explicitly)
    assert model.embeddings.table_of["hist_item"] == "item"
    assert "hist_item" not in model.embeddings.tables
