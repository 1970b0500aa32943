"""Data preparation: categorical encoders, behaviour sequences from event logs, time splits,
the ragged-sequence padding policy (:mod:`ctrkit.data.padding`), and Parquet files as a
streaming source (:mod:`ctrkit.data.parquet`), and a user's iterable split between torchrun's
processes (:func:`shard_by_rank`)."""
from .encoders import OOV_ID, PAD_ID, CategoricalEncoder
from .padding import pad_sequences, ragged_to_padded, to_ragged
from .parquet import ParquetDataset, write_parquet  # pyarrow is imported on first use only
from .sharding import RankShard, shard_by_rank
from .sequences import build_behavior_sequences, history_positions, take_rows, time_split

__all__ = ["CategoricalEncoder", "PAD_ID", "OOV_ID", "build_behavior_sequences",
           "history_positions", "take_rows", "time_split", "pad_sequences", "ragged_to_padded",
           "to_ragged", "ParquetDataset", "write_parquet", "RankShard", "shard_by_rank"]
