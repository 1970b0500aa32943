"""ctrkit.data.write_parquet and ParquetDataset's file resolution (pyarrow extra)."""
from __future__ import annotations

import subprocess
import sys

from pathlib import Path

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow", reason="pyarrow (the ctrkit[parquet] extra) is not installed")
pq = pytest.importorskip("pyarrow.parquet")

from ctrkit.data import ParquetDataset, write_parquet  # noqa: E402
from ctrkit.errors import ConfigError, DataNotFoundError, InputError  # noqa: E402


def test_import_ctrkit_does_not_import_pyarrow():
    code = "import sys, ctrkit, ctrkit.data; print('pyarrow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_write_parquet_round_trips_every_column_kind(tmp_path):
    rng = np.random.default_rng(0)
    x = {"user": rng.integers(0, 2 ** 40, 7),                     # ids above 2**32 stay int64
         "hist": rng.integers(0, 9, (7, 3)), "score": rng.random(7).astype(np.float32),
         "ragged": np.array([[1, 2], [], [3], [4, 5, 6], [7], [], [8]], dtype=object)}
    y, w = rng.integers(0, 2, 7), rng.random(7)
    path = write_parquet(x, y, tmp_path / "t.parquet", row_group_size=3, sample_weight=w)
    f = pq.ParquetFile(path)
    assert f.metadata.num_row_groups == 3 and f.metadata.num_rows == 7
    t = f.read()
    assert t.schema.field("user").type == pa.int64()
    assert t.schema.field("hist").type == pa.list_(pa.int64(), 3)
    np.testing.assert_array_equal(t.column("user").to_numpy(), x["user"])
    np.testing.assert_array_equal(np.stack(t.column("hist").to_pylist()), x["hist"])
    assert t.column("ragged").to_pylist() == [list(v) for v in x["ragged"]]
    np.testing.assert_array_equal(t.column("label").to_numpy(), y)
    np.testing.assert_array_equal(t.column("weight").to_numpy(), w)
    assert len(ParquetDataset(path)) == 7


def test_a_values_offsets_pair_is_written_as_a_ragged_column(tmp_path):
    from ctrkit.data import to_ragged
    rows = [[5, 6, 7], [], [8], [2 ** 40, 9]]
    values, offsets = to_ragged(np.array(rows, dtype=object))
    path = write_parquet({"h": (values, offsets)}, None, tmp_path / "r.parquet")
    t = pq.read_table(path)
    assert t.column("h").to_pylist() == rows and t.schema.field("h").type.value_type == pa.int64()
    # a slice of a longer values array (offsets not starting at 0) is written as it reads
    write_parquet({"h": (np.r_[1, 2, values], offsets + 2)}, None, tmp_path / "s.parquet")
    assert pq.read_table(tmp_path / "s.parquet").column("h").to_pylist() == rows
    with pytest.raises(InputError, match=r"'h': offsets must be non-decreasing"):
        write_parquet({"h": (values, offsets[::-1])}, None, tmp_path / "b.parquet")


def test_write_parquet_refuses_bad_input(tmp_path):
    with pytest.raises(InputError, match=r"different row counts \{'a': 3, 'label': 2\}"):
        write_parquet({"a": np.arange(3)}, np.arange(2), tmp_path / "t.parquet")
    with pytest.raises(InputError, match=r"x already has a column 'label'"):
        write_parquet({"label": np.arange(3)}, np.arange(3), tmp_path / "t.parquet")
    with pytest.raises(ConfigError, match=r"row_group_size must be a positive integer, got 0"):
        write_parquet({"a": np.arange(3)}, None, tmp_path / "t.parquet", row_group_size=0)
    with pytest.raises(InputError, match=r"takes x as a dict of arrays"):
        write_parquet(np.arange(3), None, tmp_path / "t.parquet")


def test_paths_may_be_a_file_a_directory_a_glob_or_a_list(tmp_path):
    for i in range(3):
        (tmp_path / "d").mkdir(exist_ok=True)
        write_parquet({"a": np.arange(i + 1)}, None, tmp_path / "d" / f"p{i}.parquet")
    (tmp_path / "d" / "notes.txt").write_text("not parquet")
    d = tmp_path / "d"
    assert ParquetDataset(d).files == [str(d / f"p{i}.parquet") for i in range(3)]
    assert len(ParquetDataset(d)) == 1 + 2 + 3
    assert ParquetDataset(str(d / "p[12].parquet")).files == [str(d / "p1.parquet"),
                                                              str(d / "p2.parquet")]
    assert ParquetDataset([d / "p2.parquet", d / "p0.parquet"]).files == [
        str(d / "p2.parquet"), str(d / "p0.parquet")]                 # list order is kept
    with pytest.raises(DataNotFoundError, match=r"Parquet path '.*nope.parquet' does not exist"):
        ParquetDataset(d / "nope.parquet")
    with pytest.raises(DataNotFoundError, match=r"matches no file"):
        ParquetDataset(str(d / "*.csv"))
    with pytest.raises(ConfigError, match=r"needs at least one path"):
        ParquetDataset([])
    with pytest.raises(ConfigError, match=r"shuffle_buffer must be an integer >= 0"):
        ParquetDataset(d, shuffle_buffer=-1)
    with pytest.raises(ConfigError, match=r"label must be a column name or None, got 3"):
        ParquetDataset(d, label=3)


@pytest.mark.parametrize("damage", ["truncate", "zero_pages"])
def test_a_damaged_parquet_file_is_named_not_a_raw_arrow_error(tmp_path, damage):
    """Issue 25: a truncated file raised pyarrow's ArrowInvalid without the file's name."""
    import ctrkit
    from ctrkit import SparseFeat
    from ctrkit.errors import InputError
    rng = np.random.default_rng(0)
    x = {"user": rng.integers(0, 5, 400), "item": rng.integers(0, 7, 400)}
    path = Path(write_parquet(x, rng.integers(0, 2, 400), tmp_path / "t.parquet",
                              row_group_size=100))
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
        where = r"Cannot read Parquet file '.*t\.parquet': .*truncated, corrupt or not Parquet"
    else:  # the footer is intact, the data pages of the row groups are overwritten
        path.write_bytes(data[:4] + bytes(len(data) // 5 - 4) + data[len(data) // 5:])
        where = r"(?s)Cannot read Parquet file '.*t\.parquet', row group \d: .*write it again"
    model = ctrkit.build("base", [SparseFeat("user", 5, 2), SparseFeat("item", 7, 2)],
                         dnn_hidden_units=(2,))
    model.compile("adam")
    with pytest.raises(InputError, match=where):
        model.fit(ParquetDataset(path), epochs=1, verbose=0)
