"""The callback and plotting examples run and do what they say."""
from __future__ import annotations

import numpy as np
import pytest


def test_custom_callback_example(capsys):
    from custom_callback import main
    model, history, calibration = main()
    out = capsys.readouterr().out
    n = len(history.epoch)
    assert out.count("val_calibration: ") == n
    assert history.history["val_calibration"] == calibration.per_epoch and n >= 2
    # EarlyStopping restored the best val_auc epoch; its calibration is what the model has now
    best = int(np.argmax(history.history["val_auc"]))
    now = model.predict(calibration.x_val).mean() / calibration.y_val.mean()
    assert now == pytest.approx(history.history["val_calibration"][best], rel=1e-6)
    # the example says why it ran fewer epochs than asked (or that it did not stop)
    if n < 6:
        assert "early stopping: val_auc did not improve for 2 epochs (patience 2)" in out
        assert f"ran {n} of 6 epochs: EarlyStopping stopped it" in out
        assert f"best {max(history.history['val_auc']):.4f} at epoch {best + 1}" in out
    else:
        assert "ran all 6 epochs" in out


def test_plot_history_example(tmp_path, capsys):
    from plot_history import main
    path = tmp_path / "loss.png"
    assert main([str(path)]) == str(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"plot written to {path}" in capsys.readouterr().out
