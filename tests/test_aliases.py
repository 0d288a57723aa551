"""``paltest.problems`` is the package ``problems`` under a second name: same modules."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_paltest_problems_and_problems_are_the_same_modules_whichever_comes_first():
    code = """
import paltest.problems.registry as r1
from paltest.problems import register, quadratic
import problems, problems.registry, problems.quadratic, paltest
assert r1 is problems.registry and paltest.problems is problems
assert quadratic is problems.quadratic and register is problems.registry.register
import paltest.problems.mlp as m
assert m is problems.mlp and problems.mlp.__spec__.name == "problems.mlp"
assert problems.__spec__.name == "problems" and problems.registry.__name__ == "problems.registry"
r1.register("alias-test", problems.quadratic.make_least_squares)
assert "alias-test" in problems.names()  # one registry
import sys
assert sum(1 for k in sys.modules if k.endswith(".registry") and "problems" in k) == 2
assert sys.modules["paltest.problems.registry"] is sys.modules["problems.registry"]
print("ok")
"""
    for first in ("", "import problems\n"):
        out = subprocess.run([sys.executable, "-c", first + code], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
