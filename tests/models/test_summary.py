"""model.summary(): every table with the features that use it, attention units, exact counts."""
import pytest
import torch

import ctrkit
from ctrkit.models.summary import ModelSummary


@pytest.mark.parametrize("name", ctrkit.list_models(multitask=False))
def test_summary_lists_every_table_and_counts_every_parameter_once(name, tutorial, capsys):
    x, y, features, _ = tutorial
    model = ctrkit.build(name, features)
    model.train()
    summary = model.summary()
    printed = capsys.readouterr().out
    assert isinstance(summary, ModelSummary) and printed.strip() == str(summary)
    assert summary.total_params == sum(p.numel() for p in model.parameters())
    assert summary.trainable_params == summary.total_params
    # the rows partition the parameters: nothing listed twice, nothing left out
    assert sum(r[3] for r in summary.rows) == summary.total_params
    tables = {r[0].split(".")[-1]: r[2] for r in summary.rows
              if r[0].startswith("embeddings.")}
    for table, emb in model.embeddings.tables.items():
        assert tables[table].startswith(f"{emb.num_embeddings} x {emb.embedding_dim}")
    assert "hist_item, item" in tables["item"]  # the shared history table says who uses it
    assert "Units." not in printed and model.training


def test_summary_shows_dins_attention_unit_and_its_activation(tutorial):
    _, _, features, _ = tutorial
    s = ctrkit.build("din", features, att_hidden_size=(32, 8)).summary(verbose=0)
    unit = [r for r in s.rows if r[1] == "LocalActivationUnit"]
    assert len(unit) == 1 and unit[0][2] == "64 -> 32 -> 8 -> 1 (Dice)"
    assert unit[0][3] == 64 * 32 + 32 + 32 * 8 + 8 + 8 + 1 + 32 + 8  # linears, out, Dice alphas


def test_summary_print_fn_receives_the_table_and_verbose_0_prints_nothing(tutorial, capsys):
    _, _, features, _ = tutorial
    model = ctrkit.build("base", features)
    got = []
    s = model.summary(print_fn=got.append)
    assert got == [str(s)] and capsys.readouterr().out == ""
    model.summary(verbose=0)
    assert capsys.readouterr().out == ""
    model.embeddings.tables["user"].weight.requires_grad_(False)
    s = model.summary(verbose=0)
    assert s.total_params - s.trainable_params == model.embeddings.tables["user"].weight.numel()
    assert f"non-trainable {3 * 8}" in str(s)
