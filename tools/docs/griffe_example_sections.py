"""Griffe extension for the docs build: a Google-style ``Example:`` section is an examples section.

ctrkit's docstrings (STYLE.md) head their runnable examples ``Example:``; griffe only knows
``Examples:`` and would render the singular as prose, where ``>>>`` lines are Markdown (and a
``[a][b]`` in code reads as a link). The source stays as written; only the docs see the plural.
"""
from __future__ import annotations

import re
from typing import Any

import griffe

_HEADER = re.compile(r"^(\s*)Example:\s*$", flags=re.M)


class ExampleSections(griffe.Extension):
    """Rename ``Example:`` section headers to ``Examples:`` in every docstring griffe loads."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None and "Example:" in obj.docstring.value:
            obj.docstring.value = _HEADER.sub(r"\1Examples:", obj.docstring.value)
