"""Lazy import of Hypothesis for :mod:`paltest.testing`, with an error naming the extra."""

from __future__ import annotations

from types import ModuleType
from typing import Any

INSTALL = 'pip install "paltest[test]" (or pip install hypothesis)'


def hypothesis() -> tuple[ModuleType, ModuleType]:
    """``(hypothesis, hypothesis.strategies)``, or ``ImportError`` saying what to install."""
    try:
        import hypothesis as hyp
        from hypothesis import strategies as st
    except ImportError as err:  # pragma: no cover - the test environment has it
        raise ImportError(
            f"paltest.testing needs Hypothesis, which is not installed: {INSTALL}"
        ) from err
    return hyp, st


def resolve(value: Any, st: ModuleType) -> Any:
    """A strategy for ``value``: strategies pass, plain values become ``st.just``."""
    from hypothesis.strategies import SearchStrategy

    return value if isinstance(value, SearchStrategy) else st.just(value)
