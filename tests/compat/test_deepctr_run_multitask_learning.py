"""DeepCTR-Torch's multi-task example runs with only its imports changed (issue 26).

The script (``run_multitask_learning.py`` next to this file) reads ``./byterec_sample.txt``
(the ICME 2019 ByteDance sample, not shipped); here a file of the same layout is generated
in the test's working directory, with ``finish`` and ``like`` labels that depend on the
features, and the script's printed test AUCs are checked.
"""
import re
import runpy
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
COLUMNS = ["uid", "user_city", "item_id", "author_id", "item_city", "channel", "finish", "like",
           "music_id", "device", "time", "duration_time"]


def test_run_multitask_learning_example(capsys):
    rng = np.random.default_rng(0)
    n = 2000
    df = pd.DataFrame({c: rng.integers(0, 20, n) for c in COLUMNS})
    df["duration_time"] = rng.integers(5, 60, n)
    item_effect = rng.normal(0, 2, 20)
    df["finish"] = (rng.random(n) < 1 / (1 + np.exp(-item_effect[df["item_id"]]))).astype(int)
    df["like"] = (rng.random(n) < 1 / (1 + np.exp(-item_effect[df["author_id"]] + 1))).astype(int)
    df.to_csv("byterec_sample.txt", sep="\t", header=False, index=False)
    runpy.run_path(str(HERE / "run_multitask_learning.py"), run_name="__main__")
    out = capsys.readouterr().out
    aucs = {m[0]: float(m[1]) for m in re.findall(r"(finish|like) test AUC ([0-9.]+)", out)}
    assert set(aucs) == {"finish", "like"}, out
    assert aucs["finish"] > 0.7 and aucs["like"] > 0.7, aucs
