"""Round 3 moved Keras's nouns to top-level homes (ctrkit/_moved.py); every old import path of
round 2 keeps working and names the same objects (issue 28)."""
import importlib
import subprocess
import sys

import pytest

import ctrkit
from ctrkit import _moved


@pytest.mark.parametrize("old", sorted(_moved.MOVED))
def test_old_module_path_is_the_new_module(old):
    new = _moved.new_name(old)
    assert importlib.import_module(old) is importlib.import_module(new)
    # the module keeps its own name and spec: importlib's alias spec does not stick to it
    assert importlib.import_module(old).__spec__.name == new


@pytest.mark.parametrize("old, name", [
    ("ctrkit.training.callbacks.early_stopping", "EarlyStopping"),
    ("ctrkit.training.callbacks", "ModelCheckpoint"),
    ("ctrkit.training.distributed", "DDPPlan"),
    ("ctrkit.training.distributed", "local"),
    ("ctrkit.training.torchrec_strategy", "TorchRec"),
    ("ctrkit.training.metrics", "get_metric"),
    ("ctrkit.training.gauc", "gauc"),
    ("ctrkit.training.regularizers", "MBA"),
    ("ctrkit.training.allocator", "tune"),
])
def test_old_from_import_gives_the_same_object(old, name):
    new = _moved.new_name(old)
    assert getattr(importlib.import_module(old), name) is \
        getattr(importlib.import_module(new), name)


def test_an_old_class_is_the_new_class_for_isinstance():
    from ctrkit.training.callbacks.early_stopping import EarlyStopping as Old
    assert isinstance(ctrkit.callbacks.EarlyStopping(), Old)


def test_new_name_maps_prefixes_only_at_a_dot():
    assert _moved.new_name("ctrkit.training.callbacks.history") == "ctrkit.callbacks.history"
    assert _moved.new_name("ctrkit.training.callbacksx") is None
    assert _moved.new_name("ctrkit.training.trainer") is None


def test_old_paths_import_in_a_fresh_interpreter_without_loading_a_module_twice():
    code = ("import sys; from ctrkit.training.callbacks.base import Callback; "
            "import ctrkit.callbacks.base as b; assert Callback is b.Callback; "
            "print(sorted(m for m in sys.modules if m.endswith('callbacks.base')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    # both names point at one module object, loaded once
    assert out == "['ctrkit.callbacks.base', 'ctrkit.training.callbacks.base']"
