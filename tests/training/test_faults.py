"""Faults (issue 27): a rank killed mid-epoch and restarted by torchrun, a Parquet file that
vanishes or is damaged mid-epoch, a DDP run resumed on another number of processes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import ctrkit
from ctrkit.callbacks import BackupAndRestore, Callback
from ctrkit.data import ParquetDataset
from ctrkit.errors import InputError
from ctrkit.persistence import load_plain
from ctrkit.callbacks.backup_and_restore import BACKUP_FORMAT, BACKUP_VERSION

from test_torchrec import needs_torchrec
from test_torchrec_scale import _launch, write_data

BATCH = 32


def _weights(path: Path):
    return ctrkit.load(path).state_dict()


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    write_data(root)
    return root


def _epochs(path: Path):
    return [int(line) for line in path.read_text().split()] if path.exists() else []


@needs_torchrec
@pytest.mark.slow
def test_a_rank_killed_mid_epoch_resumes_under_torchrun_and_ends_like_an_unbroken_run(data_root):
    root = data_root
    proc = _launch("fault_worker.py", root, "straight")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    proc = _launch("fault_worker.py", root, "killed", extra=("--max-restarts=1",
                                                             "--monitor-interval=0.5"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # the first attempt finished epoch 0 only (rank 1 died in epoch 1); the restart resumed
    # from epoch 0's backup and ran epochs 1 and 2 on both ranks
    for r in (0, 1):
        assert _epochs(root / f"killed-epochs-{r}-0.txt") == [0]
        assert _epochs(root / f"killed-epochs-{r}-1.txt") == [1, 2]
    a, b = _weights(root / "straight.ctrkit"), _weights(root / "killed.ctrkit")
    assert a.keys() == b.keys()
    for k in a:  # epoch-end backups are exact: bit-identical on one machine
        assert torch.equal(a[k], b[k]), k
    assert not (root / "killed_backup").exists()  # deleted when the resumed fit ended


@needs_torchrec
@pytest.mark.slow
def test_a_ddp_run_resumes_on_another_number_of_processes(data_root, tmp_path):
    root = data_root
    proc = _launch("fault_worker.py", root, "ddp")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    import fault_worker
    features = torch.load(root / "features.pt", weights_only=False)
    x, y = torch.load(root / "arrays.pt", weights_only=False)
    x = {k: v for k, v in x.items() if k != "rid"}
    assert load_plain(root / "ddp_backup" / "backup.ctrkit", BACKUP_FORMAT,
                      BACKUP_VERSION)["epoch"] == 0
    # one process, batch 2 x 32: the global batch the 2 ranks of 32 rows made
    model = fault_worker.ddp_model(features)
    model.trainer.strategy = None
    hist = model.fit(x, y, batch_size=2 * BATCH, epochs=fault_worker.EPOCHS, verbose=0,
                     callbacks=[BackupAndRestore(root / "ddp_backup")])
    assert len(hist.history["loss"]) == fault_worker.EPOCHS  # restored history + epochs 1, 2
    want = _weights(root / "ddp_straight.ctrkit")
    got = model.state_dict()
    for k in want:  # SGD; float rounding of the 2-rank sums
        torch.testing.assert_close(got[k], want[k], rtol=0, atol=1e-5, msg=k)


class _Break(Callback):
    """Deletes or damages a Parquet file after the first batch of epoch 1."""

    def __init__(self, path: Path, how: str) -> None:
        super().__init__()
        self.path, self.how, self.epoch = path, how, -1

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == 1 and batch == 0:
            if self.how == "vanish":
                self.path.unlink()
            else:
                raw = bytearray(self.path.read_bytes())
                raw[4:len(raw) - 8] = bytes(len(raw) - 12)  # pages and footer zeroed
                self.path.write_bytes(bytes(raw))


@pytest.mark.parametrize("how,match", [("vanish", "has vanished"),
                                       ("corrupt", "truncated, corrupt or not Parquet")])
def test_a_parquet_file_that_breaks_mid_epoch_is_named_and_the_backup_survives(
        how, match, tmp_path):
    pytest.importorskip("pyarrow")
    write_data(tmp_path)
    features = torch.load(tmp_path / "features.pt", weights_only=False)
    backup = tmp_path / "backup"
    model = ctrkit.build("din", features, dnn_hidden_units=(8,), att_hidden_size=(4,), seed=1)
    model.compile("adagrad", "binary_crossentropy")
    before = (tmp_path / "train" / "b.parquet").read_bytes()
    with pytest.raises(InputError, match=rf"b\.parquet', row group \d+.*{match}"):
        model.fit(ParquetDataset(tmp_path / "train"), batch_size=BATCH, epochs=3, verbose=0,
                  shuffle=False, callbacks=[BackupAndRestore(backup),
                                            _Break(tmp_path / "train" / "b.parquet", how)])
    payload = load_plain(backup / "backup.ctrkit", BACKUP_FORMAT, BACKUP_VERSION)
    assert payload["epoch"] == 0  # the last good backup, intact
    (tmp_path / "train" / "b.parquet").write_bytes(before)  # the file is back: resume
    model = ctrkit.build("din", features, dnn_hidden_units=(8,), att_hidden_size=(4,), seed=1)
    model.compile("adagrad", "binary_crossentropy")
    hist = model.fit(ParquetDataset(tmp_path / "train"), batch_size=BATCH, epochs=3,
                     verbose=0, shuffle=False, callbacks=[BackupAndRestore(backup)])
    assert len(hist.history["loss"]) == 3 and np.isfinite(hist.history["loss"]).all()
