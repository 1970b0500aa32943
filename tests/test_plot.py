"""attention_heatmap's colour scale: structure shows, and equal weights look equal (with a note)."""
import numpy as np
import pytest

import ctrkit

pytest.importorskip("matplotlib")
from ctrkit.plot import attention_heatmap  # noqa: E402


def test_untrained_din_heatmap_says_the_weights_are_equal_and_colours_them_equal(tutorial):
    x, _, features, _ = tutorial
    model = ctrkit.build("din", features, init="deepctr",  # N(0, 1e-4): all score alike
                         att_weight_normalization=False)    # raw scores
    w = model.explain(x)[0, :3]
    assert np.ptp(w) <= 1e-3 * np.abs(w).max()
    fig = attention_heatmap(model, x, row=0)
    ax = fig.axes[0]
    title = ax.get_title()
    assert f"all weights \u2248 {w.mean():.3g}" in title and "does not tell" in title
    lo, hi = ax.images[0].get_clim()
    assert hi - lo >= np.abs(w).max() * 0.99       # a wide scale: one colour for all cells
    colours = ax.images[0].to_rgba(ax.images[0].get_array())[0]
    assert np.allclose(colours, colours[0], atol=1e-3)
    assert fig.axes[1].get_ylabel() == "attention weight (raw score)"


def test_heatmap_scale_spans_the_rows_weights_when_they_differ():
    w = np.array([[0.5, 0.2, 0.9, 0.0]])
    fig = attention_heatmap(w, {"item": np.array([[4, 5, 6, 0]])}, row=0)
    ax = fig.axes[0]
    assert ax.images[0].get_clim() == (0.2, 0.9)
    assert "\n" not in ax.get_title()               # no note
    assert [t.get_text() for t in ax.texts] == ["0.5", "0.2", "0.9"]  # padding left out


def test_heatmap_of_softmax_weights_labels_the_scale(tutorial):
    x, _, features, _ = tutorial
    model = ctrkit.build("din", features, att_weight_normalization=True, init_std=0.5)
    fig = attention_heatmap(model, x, row=1)
    assert fig.axes[1].get_ylabel() == "attention weight (softmax)"
    w = model.explain(x)[1, :3]
    assert fig.axes[0].images[0].get_clim() == pytest.approx((w.min(), w.max()))
