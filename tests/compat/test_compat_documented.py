"""Every ported test marked as an expected difference points at a section of docs/porting.md
that exists (an anchor is the heading, lower-cased, spaces as dashes, as MkDocs builds it)."""
from __future__ import annotations

import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
PORTING = HERE.parents[1] / "docs" / "porting.md"


def anchors() -> set:
    out = set()
    for line in PORTING.read_text().splitlines():
        m = re.match(r"^#+\s+(.*?)\s*(\{#([\w-]+)\})?$", line)
        if m:
            out.add(m.group(3) or re.sub(r"[^\w\s-]", "", m.group(1)).strip().lower()
                    .replace(" ", "-"))
    return out


def test_every_expected_difference_is_documented():
    marked = {}
    for f in sorted(HERE.glob("test_*.py")):
        for anchor in re.findall(r'expected_difference\("([^"]+)"\)', f.read_text()):
            marked.setdefault(anchor, []).append(f.name)
    marked.pop("<anchor>", None)
    assert marked, "no ported test is marked as an expected difference"
    missing = {a: files for a, files in marked.items() if a not in anchors()}
    assert not missing, f"anchors missing from docs/porting.md: {missing}"
