"""The README's example code, for the tests that run it verbatim."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def run_section_example(heading: str, capsys) -> list[str]:
    """Run the first ``python`` block under the README heading ``heading`` in a fresh
    namespace (in the current directory) and return what it printed, split on space."""
    section = README.read_text().split(f"\n{heading}\n", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    exec(compile(code, str(README), "exec"), {})
    return capsys.readouterr().out.split()
