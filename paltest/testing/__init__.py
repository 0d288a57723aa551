"""Property testing for optimizers: Hypothesis strategies and :func:`check_optimizer`.

For researchers writing their own line search or optimizer: the invariants the
library's optimizers promise (the non-finite rule, namespace/dtype/shape preserved, no
mutation of the inputs, determinism, descent of line searches on convex quadratics,
honest evaluation counts) as named property checks, and the strategies they draw from.
Hypothesis is imported lazily; without it the functions raise ``ImportError`` naming
the extra (``pip install "paltest[test]"``).

>>> from paltest.testing import check_optimizer
>>> from paltest.optimizers.adam import Adam
>>> report = check_optimizer(Adam, max_examples=5, skip=["deterministic"])
>>> sorted(report)
['counts', 'descent', 'no_mutation', 'nonfinite', 'preserves']
"""

from __future__ import annotations

from paltest.testing.batches import BatchQuadratics, batch_quadratic, batch_quadratics
from paltest.testing.checks import CHECKS, check_optimizer
from paltest.testing.strategies import (
    LineFunction,
    Quadratic,
    arrays,
    line_functions,
    quadratic,
    spd_quadratics,
)

__all__ = [
    "CHECKS",
    "BatchQuadratics",
    "LineFunction",
    "Quadratic",
    "arrays",
    "batch_quadratic",
    "batch_quadratics",
    "check_optimizer",
    "line_functions",
    "quadratic",
    "spd_quadratics",
]
