"""Data and models shared by tests/training/test_torchrec.py and its torchrun worker."""
from __future__ import annotations

import ctrkit
from ctrkit.datasets import make_synthetic

N_TRAIN, N_VAL = 601, 203  # 601 = 9 * 64 + 25: a last step split 12/13; 203 = 101 + 102
EPOCHS = 2                 # 2 epochs of 10 global steps: the weights after 20 steps
LR = {"sgd": 0.5, "adagrad": 0.05}
#: every sharding type the CPU kernels serve, one per table (dim 8: two column shards of 4)
SHARDING = {"item": "row_wise", "user": "column_wise", "cate": "table_wise"}


def data():
    """(x_train, y_train, x_val, y_val, features), the same in every process."""
    x, y, features = make_synthetic(n_rows=N_TRAIN + N_VAL, n_users=40, n_items=60,
                                    n_categories=6, maxlen=6, embedding_dim=8, seed=3)
    tr = {k: v[:N_TRAIN] for k, v in x.items()}
    va = {k: v[N_TRAIN:] for k, v in x.items()}
    return tr, y[:N_TRAIN], va, y[N_TRAIN:], features


def model_for(features, optimizer: str, strategy=None, lr=None):
    """DIN without batch statistics (relu/sigmoid, no Dice) nor table-wide regularizer, so W
    ranks x batch b follow 1 process x batch W*b; ``strategy=None`` is that one process."""
    model = ctrkit.build("din", features, dnn_hidden_units=(16, 8), att_hidden_size=(8,),
                         dnn_activation="relu", att_activation="sigmoid", seed=7,
                         l2_reg_embedding=0.0, init_std=0.1)
    model.compile(optimizer, "binary_crossentropy", lr=LR[optimizer] if lr is None else lr, metrics=["auc"],
                  strategy=strategy)
    return model
