"""A synthetic two-task data set with a task-correlation knob (MMoE paper, Section 4).

Ma et al. (KDD 2018) build two regression tasks from two weight vectors whose cosine is the
task correlation ``p``: with orthogonal unit vectors ``u1, u2`` and a scale ``c``,
``w1 = c u1``, ``w2 = c (p u1 + sqrt(1 - p^2) u2)``; for inputs ``x ~ N(0, I)``,
``f_i(x) = w_i.x + sum_j sin(alpha_j w_i.x + beta_j)``. The paper's labels are
``f_i(x)`` plus Gaussian noise. Here the tasks are binary, as ctrkit's are: each label is
drawn from ``P(y_i = 1 | x) = sigmoid(sharpness * standardized f_i(x))``, and those true
probabilities are returned, so the best achievable AUC (the ceiling) is known. As in the
paper, the labels' correlation follows ``p`` but is not equal to it (the sine terms are
non-linear).

``task='regression'`` keeps the paper's form: the labels are ``f_i(x) + noise`` (``noise``
the Gaussian's std), unstandardized, and the returned "probabilities" are the noiseless
``f_i(x)`` (their test MSE, about ``noise**2``, is the floor a model can reach).
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np

from ..errors import ConfigError
from ..features import DenseFeat


def make_multitask_synthetic(n_rows: int = 10000, correlation: float = 0.5, n_dims: int = 100,
                             n_sines: int = 10, scale: float = 1.0, sharpness: float = 2.0,
                             seed: int = 0, task: str = "binary", noise: float = 0.1,
                             sine_scale: float = 0.1
                             ) -> Tuple[Dict[str, np.ndarray], np.ndarray, List[DenseFeat],
                                        np.ndarray]:
    """Two tasks whose weight vectors have cosine ``correlation`` (MMoE's synthetic
    experiment: binary labels of known probability, or the paper's regression labels).

    Args:
        n_rows: rows.
        correlation: the cosine ``p`` of the two tasks' weight vectors, in [-1, 1].
        n_dims: input dimension (the paper's 100).
        n_sines: sine terms ``m`` (the paper's 10); ``alpha_j, beta_j ~ N(0,
            sine_scale^2)``, fixed by ``seed``.
        scale: ``c``, the weight vectors' length.
        sharpness: multiplies the standardized ``f_i`` inside the sigmoid (higher: labels
            closer to deterministic, a higher ceiling AUC).
        seed: seeds everything (the weights and sines too: one seed, one pair of tasks).
        task: ``'binary'`` (labels drawn with the probabilities) or ``'regression'`` (the
            paper's ``f_i(x) + N(0, noise^2)``; ``sharpness`` is then unused).
        noise: the regression labels' noise std (the paper's N(0, 0.01): 0.1).
        sine_scale: the std of the sines' ``alpha_j, beta_j`` (the paper's N(0, 0.01): 0.1,
            which leaves the tasks nearly linear; 1.0 makes the sines bend them).

    Returns:
        ``(x, y, features, probabilities)``: ``x = {'x': (n, n_dims) float32}``, ``y`` (n, 2)
        float32 labels in task order, ``features = [DenseFeat('x', n_dims)]`` and the (n, 2)
        float64 true probabilities (regression: the noiseless targets ``f_i(x)``).

    Raises:
        ConfigError: ``correlation`` outside [-1, 1], a non-positive size, an unknown
            ``task`` or a negative ``noise``.

    Example:
        >>> x, y, features, p = make_multitask_synthetic(n_rows=5, correlation=1.0, n_dims=4)
        >>> x["x"].shape, y.shape, p.shape
        ((5, 4), (5, 2), (5, 2))
        >>> bool(np.allclose(p[:, 0], p[:, 1]))   # correlation 1: one task, twice
        True
        >>> x, y, _, f = make_multitask_synthetic(n_rows=2000, task="regression", noise=0.1)
        >>> round(float(((y - f) ** 2).mean()), 2)   # the noise variance: the MSE floor
        0.01
    """
    if task not in ("binary", "regression"):
        raise ConfigError(f"task must be 'binary' or 'regression', got {task!r}.")
    if isinstance(noise, bool) or not float(noise) >= 0:
        raise ConfigError(f"noise is the regression labels' noise std and must be >= 0, "
                          f"got {noise!r}.")
    if not -1.0 <= float(correlation) <= 1.0:
        raise ConfigError(f"correlation is the cosine of the tasks' weight vectors and must "
                          f"lie in [-1, 1], got {correlation!r}.")
    for name, v in (("n_rows", n_rows), ("n_dims", n_dims)):
        if isinstance(v, bool) or int(v) < (2 if name == "n_dims" else 1):
            raise ConfigError(f"{name} must be a positive integer (n_dims >= 2), got {v!r}.")
    rng = np.random.default_rng(seed)
    # two orthonormal directions (QR of a Gaussian matrix)
    q, _ = np.linalg.qr(rng.standard_normal((int(n_dims), 2)))
    u1, u2 = q[:, 0], q[:, 1]
    p = float(correlation)
    w = np.stack([scale * u1, scale * (p * u1 + np.sqrt(max(0.0, 1 - p * p)) * u2)], axis=1)
    if isinstance(sine_scale, bool) or not float(sine_scale) >= 0:
        raise ConfigError(f"sine_scale is a standard deviation and must be >= 0, got "
                          f"{sine_scale!r}.")
    alpha = rng.normal(0.0, float(sine_scale), n_sines)  # the paper: N(0, 0.01), std 0.1
    beta = rng.normal(0.0, float(sine_scale), n_sines)
    x = rng.standard_normal((int(n_rows), int(n_dims)))
    z = x @ w  # (n, 2)
    f = z + np.sin(alpha[None, None, :] * z[:, :, None] + beta[None, None, :]).sum(-1)
    if task == "regression":
        y = f + rng.normal(0.0, float(noise), f.shape)
        return {"x": x.astype(np.float32)}, y.astype(np.float32), [DenseFeat("x", int(n_dims))], f
    f = (f - f.mean(0)) / f.std(0).clip(1e-12)  # standardized per task
    probs = 1.0 / (1.0 + np.exp(-sharpness * f))
    y = (rng.random(probs.shape) < probs).astype(np.float32)
    return {"x": x.astype(np.float32)}, y, [DenseFeat("x", int(n_dims))], probs


__all__ = ["make_multitask_synthetic"]
