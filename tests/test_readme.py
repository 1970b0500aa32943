"""The README cannot drift: its runnable Python blocks run, and its copy of the main job's output
is what ``python -m ctrkit`` prints.

The main job is bit-identical from run to run on one machine and torch build (checked here by
running it twice); on another CPU torch picks other float kernels (AVX-512, AVX2, ...), so the
README's figures, recorded on one machine, are compared with :data:`TOLERANCE`. CI runs these
tests again under ``ATEN_CPU_CAPABILITY=avx2`` and ``=default`` (the ``numeric`` marker)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
RUNNABLE = "<!-- runnable -->"
MAIN_JOB_OUTPUT = "<!-- main-job-output -->"


def blocks_after(marker: str, text: str) -> list:
    """The fenced code blocks that directly follow ``marker`` (blank lines allowed between)."""
    pattern = re.escape(marker) + r"\s*\n```[a-z]*\n(.*?)\n```"
    return re.findall(pattern, text, flags=re.S)


#: how far a figure printed on this machine may be from the README's (AUC, GAUC, logloss):
#: across AVX-512 / AVX2 / default kernels the main job's figures moved by at most 0.0009
TOLERANCE = 0.002
NUMBER = re.compile(r"\d+\.\d+")


def split_figures(output: str):
    """(the text with every decimal figure replaced by ``<x>``, the figures as floats)."""
    text = without_times(output)
    return NUMBER.sub("<x>", text), [float(v) for v in NUMBER.findall(text)]


def test_split_figures_keeps_counts_and_words_exact():
    text, figures = split_figures("din: test AUC 0.8770 (3 epochs in 2.6s; kept epoch 2) 35000 rows")
    assert text == "din: test AUC <x> (3 epochs in <time>s; kept epoch 2) 35000 rows"
    assert figures == [0.877]


def without_times(output: str) -> str:
    """The main job's output with its only non-deterministic part, the times, blanked."""
    return re.sub(r"epochs? in \d+(\.\d+)?s([;)])", r"epochs in <time>s\2", output).strip()


def test_blocks_after_finds_only_marked_blocks():
    text = ("```python\nnot_this()\n```\n<!-- runnable -->\n\n```python\nthis()\n```\n"
            "text\n```python\nnor_this()\n```\n")
    assert blocks_after(RUNNABLE, text) == ["this()"]


def test_without_times_blanks_the_times_only():
    line = "   din: test AUC 0.8686  GAUC 0.8688  logloss 0.4521  (3 epochs in 14.1s)"
    assert without_times(line) == ("din: test AUC 0.8686  GAUC 0.8688  logloss 0.4521  "
                                   "(3 epochs in <time>s)")
    assert without_times("(1 epoch in 3s)") == "(1 epochs in <time>s)"


def test_readme_has_runnable_quick_start():
    blocks = blocks_after(RUNNABLE, README.read_text())
    assert blocks, f"README.md has no Python block marked {RUNNABLE!r}"
    assert any("ctrkit.build(" in b and ".fit(" in b and ".predict(" in b for b in blocks)


@pytest.mark.parametrize("index", range(len(blocks_after(RUNNABLE, README.read_text()))))
def test_readme_runnable_block_runs_as_pasted(index, tmp_path, monkeypatch, capsys):
    """Each block runs on its own, in a fresh namespace and an empty folder: it defines its data."""
    code = blocks_after(RUNNABLE, README.read_text())[index]
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"README.md runnable block {index}", "exec"), {"__name__": "__main__"})
    capsys.readouterr()


def run_main_job(tmp_path, monkeypatch, capsys) -> str:
    from ctrkit.__main__ import main
    monkeypatch.delenv("CTRKIT_ML100K", raising=False)
    monkeypatch.chdir(tmp_path)  # the default plot path, din_loss.png, as in the README
    assert main([]) == 0
    return capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.numeric
def test_readme_main_job_output_is_what_the_main_job_prints(tmp_path, monkeypatch, capsys):
    """Same words, counts and epochs; figures within TOLERANCE of the README's; and two runs
    on this machine print exactly the same thing (times aside)."""
    printed = run_main_job(tmp_path, monkeypatch, capsys)
    again = run_main_job(tmp_path, monkeypatch, capsys)
    assert without_times(again) == without_times(printed), "the main job is not deterministic"
    shown = blocks_after(MAIN_JOB_OUTPUT, README.read_text())
    assert len(shown) == 1, f"README.md needs exactly one block after {MAIN_JOB_OUTPUT!r}"
    fix = ("README.md's main-job output differs from what `python -m ctrkit` prints now. Replace "
           f"the block after {MAIN_JOB_OUTPUT} in README.md with:\n```\n{printed.strip()}\n```")
    (text_shown, fig_shown), (text_now, fig_now) = split_figures(shown[0]), split_figures(printed)
    assert text_shown == text_now, fix
    far = [(a, b) for a, b in zip(fig_shown, fig_now) if abs(a - b) > TOLERANCE]
    assert not far, f"figures further than {TOLERANCE} from the README's {far}. " + fix
