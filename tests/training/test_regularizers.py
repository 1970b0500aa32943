"""Embedding regularizers: MBA counts n_j once per fit and touches only the batch's rows."""
import numpy as np
import pytest
import torch

import ctrkit
from ctrkit import SparseFeat, VarLenSparseFeat
from ctrkit.errors import ConfigError, UnknownNameError
from ctrkit.regularizers import MBA, WholeTableL2, create_regularizer
from ctrkit.inputs import prepare_inputs

T = 4


def features():
    return [SparseFeat("user", 6, 4), SparseFeat("item", 10, 4),
            VarLenSparseFeat(SparseFeat("hist_item", 10, 4), T, length_name="seq_length")]


def data():
    # item ids 1..6 occur; 7, 8, 9 never occur at a valid position (8 hides in the padding).
    x = {"user": np.array([0, 1, 2, 3, 4, 0]),
         "item": np.array([1, 2, 3, 1, 4, 5]),
         "hist_item": np.array([[1, 1, 2, 8], [2, 6, 0, 0], [3, 8, 8, 8], [1, 2, 3, 4],
                                [0, 0, 0, 0], [5, 5, 8, 8]]),
         "seq_length": np.array([3, 2, 1, 4, 0, 2])}
    y = np.array([1, 0, 1, 0, 1, 0])
    return x, y


def expected_item_counts():
    """n_j by hand: samples in which item j occurs in 'item' or the valid part of the history."""
    x, _ = data()
    n = np.zeros(10)
    for r in range(6):
        ids = {int(x["item"][r])} | set(x["hist_item"][r, :x["seq_length"][r]].tolist())
        for j in ids:
            n[j] += 1
    return n


def test_mba_counts_samples_per_shared_table_on_valid_positions_only():
    model = ctrkit.build("din", features(), embedding_regularizer="mba", l2_reg_embedding=0.5)
    assert isinstance(model.regularizer, MBA) and model.regularizer.strength == 0.5
    x, _ = data()
    model.regularizer.prepare(model, prepare_inputs(model.features, x))
    inv = model.regularizer.inv_counts
    assert set(inv) == {"item", "user"}  # the history shares the item table
    n = expected_item_counts()
    seen = n > 0
    np.testing.assert_allclose(inv["item"].numpy()[seen], 1.0 / n[seen])
    # id 1 sits at 5 valid places in 2 samples: n_1 = 2; id 8 only in padding: n_8 = 0
    assert n[8] == 0 and n[1] == 2 and n[2] == 3
    np.testing.assert_allclose(inv["user"].numpy()[:5], 1.0 / np.array([2, 1, 1, 1, 1]))


def test_mba_penalty_is_the_batch_rows_over_their_counts():
    model = ctrkit.build("din", features(), embedding_regularizer="mba", l2_reg_embedding=0.5)
    x, _ = data()
    cols = prepare_inputs(model.features, x)
    model.regularizer.prepare(model, cols)
    batch = cols.take(torch.tensor([0, 2]))
    # rows 0 and 2: users {0, 2}; items {1, 3} + history {1, 2} + {3} (8 is padding)
    item_w = model.embeddings.tables["item"].weight.detach()
    user_w = model.embeddings.tables["user"].weight.detach()
    n = expected_item_counts()
    want = sum(float((item_w[j] ** 2).sum()) / n[j] for j in (1, 2, 3))
    want += float((user_w[0] ** 2).sum()) / 2 + float((user_w[2] ** 2).sum()) / 1
    got = model.regularizer.penalty(model, batch)
    assert float(got.detach()) == pytest.approx(0.5 * want, rel=1e-6)
    assert got.requires_grad  # it is a training penalty


def test_mba_before_prepare_is_a_clear_error():
    model = ctrkit.build("din", features(), embedding_regularizer="mba", l2_reg_embedding=0.5)
    batch = prepare_inputs(model.features, data()[0]).take(torch.tensor([0]))
    with pytest.raises(ConfigError, match=r"prepare\(model, columns\)"):
        model.regularizer.penalty(model, batch)


def _train(reg):
    x, y = data()
    model = ctrkit.build("din", features(), embedding_regularizer=reg, l2_reg_embedding=0.1,
                         init_std=0.1)
    before = {k: t.weight.detach().clone() for k, t in model.embeddings.tables.items()}
    model.compile("adam", "binary_crossentropy", lr=0.05)
    model.fit(x, y, batch_size=2, epochs=3, verbose=0)
    return before, {k: t.weight.detach() for k, t in model.embeddings.tables.items()}


def test_mba_never_touches_unseen_rows_while_whole_table_l2_moves_them():
    unseen_items = [0, 7, 8, 9]  # 0 and 8 only ever sit in padded positions
    unseen_users = [5]
    before, after = _train("mba")
    assert torch.equal(after["item"][unseen_items], before["item"][unseen_items])
    assert torch.equal(after["user"][unseen_users], before["user"][unseen_users])
    assert not torch.equal(after["item"][[1, 2, 3]], before["item"][[1, 2, 3]])
    before, after = _train("l2")
    moved = (after["item"][unseen_items] != before["item"][unseen_items]).any(1)
    assert moved.all()
    # whole-table L2 only shrinks them towards 0
    assert (after["item"][unseen_items].norm(dim=1) < before["item"][unseen_items].norm(dim=1)).all()


def test_zero_strength_adds_nothing():
    model = ctrkit.build("din", features(), embedding_regularizer="mba", l2_reg_embedding=0.0)
    cols = prepare_inputs(model.features, data()[0])
    model.regularizer.prepare(model, cols)
    assert model.regularizer.penalty(model, cols.take(torch.tensor([0]))) is None


def test_registry_names_and_unknown_name_message():
    assert isinstance(create_regularizer("l2", 1.0), WholeTableL2)
    assert isinstance(create_regularizer("MBA", 1.0), MBA)
    with pytest.raises(UnknownNameError) as e:
        ctrkit.build("din", features(), embedding_regularizer="mbaa")
    assert str(e.value) == ("Unknown regularizer 'mbaa'. Did you mean 'mba'? Registered "
                            "regularizers: ['batch_l2', 'l2', 'mba']")


def test_mba_can_count_occurrences_instead_of_samples():
    model = ctrkit.build("din", features(), embedding_regularizer=MBA(0.5, count="occurrences"))
    x, _ = data()
    model.regularizer.prepare(model, prepare_inputs(model.features, x))
    n = np.zeros(10)
    for r in range(6):
        for j in [x["item"][r]] + list(x["hist_item"][r, :x["seq_length"][r]]):
            n[j] += 1
    assert n[1] == 5
    seen = n > 0
    np.testing.assert_allclose(model.regularizer.inv_counts["item"].numpy()[seen], 1.0 / n[seen])
    with pytest.raises(ConfigError, match=r"count must be one of \['samples', 'occurrences'\]"):
        MBA(0.5, count="rows")


def test_batch_l2_is_mba_with_every_count_one_and_only_touches_batch_rows():
    """BatchL2 (what the whole-table L2 becomes under TorchRec) equals MBA whose n_j are all 1,
    and its gradient reaches exactly the rows at valid positions of the batch."""
    from ctrkit.regularizers import BatchL2
    from ctrkit.datasets import make_synthetic
    x, y, feats = make_synthetic(n_rows=40, maxlen=5, embedding_dim=4, seed=2)
    model = ctrkit.build("din", feats, embedding_regularizer="batch_l2", l2_reg_embedding=0.3)
    assert isinstance(model.regularizer, BatchL2)
    batch = {k: torch.as_tensor(v[:7]) for k, v in x.items()}
    mba = MBA(0.3)
    mba.prepare(model, {k: torch.as_tensor(v) for k, v in x.items()})
    mba.inv_counts = {t: torch.ones_like(c) for t, c in mba.inv_counts.items()}
    got = model.regularizer.penalty(model, batch)
    assert torch.allclose(got, mba.penalty(model, batch), rtol=1e-6)
    got.backward()
    item = model.embeddings.tables["item"].weight
    ids = torch.cat([batch["item"].reshape(-1),
                     batch["hist_item"][torch.arange(5) < batch["seq_length"][:, None]]]).unique()
    touched = item.grad.abs().sum(1).nonzero().reshape(-1)
    assert torch.equal(touched, ids[item[ids].abs().sum(1) > 0])
    assert torch.allclose(item.grad[ids], 0.6 * item[ids].detach())
