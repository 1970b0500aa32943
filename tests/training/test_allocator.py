"""glibc malloc tuning during fit: freed memory stays for the next step, then goes back."""
import os
import subprocess
import sys
import textwrap

import pytest

from ctrkit.utils import allocator

pytestmark = pytest.mark.skipif(allocator._glibc() is None, reason="needs glibc")

PROBE = textwrap.dedent("""
    import os, torch
    from ctrkit.utils import allocator
    page = os.sysconf("SC_PAGE_SIZE")
    def rss_mb():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * page / 2 ** 20
    tuned = allocator.tune()
    x = torch.ones(5 * 2 ** 20)  # 20 MB, every page touched
    before_free = rss_mb()
    del x
    after_free = rss_mb()
    allocator.release()
    print(tuned, round(before_free - after_free), round(before_free - rss_mb()))
""")


def _probe(**env):
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("MALLOC_") and k not in ("CTRKIT_MALLOC_TUNING", "GLIBC_TUNABLES")}
    out = subprocess.run([sys.executable, "-c", PROBE], env={**clean, **env},
                         capture_output=True, text=True, check=True)
    tuned, freed, released = out.stdout.split()
    return tuned == "True", int(freed), int(released)


def test_tuned_process_keeps_freed_memory_until_release():
    tuned, freed, released = _probe()
    assert tuned
    assert freed <= 2  # the 20 MB stay resident for reuse ...
    assert released >= 18  # ... and release() returns them to the OS


@pytest.mark.parametrize("env", [{"CTRKIT_MALLOC_TUNING": "0"}, {"MALLOC_ARENA_MAX": "2"}])
def test_user_choice_wins_and_glibc_defaults_return_memory_at_free(env):
    tuned, freed, _ = _probe(**env)
    assert not tuned
    assert freed >= 18  # glibc's default: a 20 MB block goes back to the OS when freed


def test_reason_names_the_switch(monkeypatch):
    monkeypatch.setenv("CTRKIT_MALLOC_TUNING", "0")
    assert allocator.user_configured() == "CTRKIT_MALLOC_TUNING=0"
    monkeypatch.delenv("CTRKIT_MALLOC_TUNING")
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1")
    assert allocator.user_configured() == "MALLOC_TRIM_THRESHOLD_ is set"
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_")
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=0")
    assert allocator.user_configured() == "GLIBC_TUNABLES sets glibc.malloc"


def test_fit_releases_memory_even_when_it_raises(monkeypatch):
    import numpy as np
    import ctrkit
    from ctrkit.callbacks import Callback

    class Boom(Callback):
        def on_train_batch_end(self, batch, logs=None):
            raise RuntimeError("boom at batch %d" % batch)

    calls = []
    monkeypatch.setattr(allocator, "release", lambda: calls.append(1))
    model = ctrkit.build("base", [ctrkit.SparseFeat("a", 5, 2)], seed=0)
    model.compile("adam", "binary_crossentropy")
    x, y = {"a": np.arange(8) % 5}, np.arange(8) % 2
    with pytest.raises(RuntimeError, match="boom at batch 0"):
        model.fit(x, y, batch_size=4, verbose=0, callbacks=[Boom()])
    assert calls == [1]
    model.fit(x, y, batch_size=4, verbose=0)
    assert calls == [1, 1]
