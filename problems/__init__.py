"""The paltest testbed problems: matrix factorization, RBF-kernel logistic regression on
LIBSVM data, and quadratics. See :mod:`problems.base` for the protocol and
:mod:`problems.registry` for ``get(name, **options)``."""

from problems.base import Problem, epoch_permutation
from problems.registry import describe, get, names

__all__ = ["Problem", "describe", "epoch_permutation", "get", "names"]
