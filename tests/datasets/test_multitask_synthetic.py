"""The MMoE paper's synthetic generator (issue 26): binary and regression labels."""
import numpy as np
import pytest

from ctrkit.datasets import make_multitask_synthetic
from ctrkit.errors import ConfigError


def test_regression_labels_are_the_targets_plus_the_noise():
    x, y, features, f = make_multitask_synthetic(n_rows=20000, correlation=0.0, n_dims=20,
                                                 task="regression", noise=0.2, seed=3)
    assert y.shape == f.shape == (20000, 2) and y.dtype == np.float32
    resid = y - f
    np.testing.assert_allclose(resid.std(0), 0.2, rtol=0.03)  # the noise std
    assert abs(np.corrcoef(resid.T)[0, 1]) < 0.05  # independent noise per task
    # correlation 1: one target twice; the same seed gives the same inputs and targets
    _, _, _, f1 = make_multitask_synthetic(n_rows=500, correlation=1.0, n_dims=20,
                                           task="regression", seed=3)
    np.testing.assert_allclose(f1[:, 0], f1[:, 1])


def test_sine_scale_zero_leaves_linear_tasks():
    """alpha = beta = 0: f = w.x exactly (plus a constant 0), so a linear fit is perfect; the
    paper's scale bends it a little, scale 1 a lot."""
    def linear_residual(scale):
        x, _, _, f = make_multitask_synthetic(n_rows=3000, correlation=0.5, n_dims=10,
                                              task="regression", sine_scale=scale, seed=1)
        a = np.c_[x["x"].astype(np.float64), np.ones(3000)]
        r = f - a @ np.linalg.lstsq(a, f, rcond=None)[0]
        return float((r ** 2).mean() / f.var(0).mean())
    assert linear_residual(0.0) < 1e-10
    assert linear_residual(0.1) < linear_residual(1.0)


@pytest.mark.parametrize("kw, match", [({"task": "ranking"}, "task must be"),
                                       ({"noise": -1.0}, "noise"),
                                       ({"sine_scale": -0.1}, "sine_scale")])
def test_bad_arguments_are_refused(kw, match):
    with pytest.raises(ConfigError, match=match):
        make_multitask_synthetic(n_rows=10, **kw)
