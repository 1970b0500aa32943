"""The main job's command line and its local GAUC."""
import numpy as np
from hypothesis import given, settings, strategies as st
from sklearn.metrics import roc_auc_score

from ctrkit.__main__ import local_gauc, main


@settings(max_examples=30, deadline=None)
@given(data=st.lists(st.tuples(st.integers(0, 1), st.integers(0, 4), st.integers(0, 4)),
                     min_size=1, max_size=60))
def test_local_gauc_is_the_impression_weighted_mean_of_per_user_aucs(data):
    y, p, g = (np.array(c) for c in zip(*data))
    p = p / 4.0  # ties are frequent
    num = den = 0.0
    for u in np.unique(g):
        m = g == u
        if len(np.unique(y[m])) == 2:
            num += m.sum() * roc_auc_score(y[m], p[m])
            den += m.sum()
    got = local_gauc(y, p, g)
    if den == 0:
        assert np.isnan(got)
    else:
        assert abs(got - num / den) < 1e-12


def test_main_job_trains_both_models_prints_metrics_and_writes_the_plot(tmp_path, capsys,
                                                                        monkeypatch):
    monkeypatch.delenv("CTRKIT_ML100K", raising=False)
    plot = tmp_path / "loss.png"
    assert main(["--rows", "3000", "--epochs", "1", "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "train 2100, val 300, test 600 rows" in out and "best reachable test AUC" in out
    for name in ("din", "base"):
        line = next(l for l in out.splitlines() if l.strip().startswith(name + ":"))
        auc = float(line.split("AUC ")[1].split()[0])
        gauc = float(line.split("GAUC ")[1].split()[0])
        assert 0.0 <= auc <= 1.0 and 0.0 <= gauc <= 1.0
    assert plot.stat().st_size > 1000 and plot.read_bytes()[:4] == b"\x89PNG"
