"""The paltest testbed problems: matrix factorization, RBF-kernel logistic regression on
LIBSVM data, quadratics and a small network. See :mod:`problems.base` for the protocol,
:mod:`problems.registry` for ``get(name, **options)`` and ``register(name, factory)``
(problems of your own), and :mod:`problems.plugins` for how the command line and worker
processes find them. Also importable as ``paltest.problems`` (the same modules)."""

from problems.base import Problem, epoch_permutation
from problems.registry import describe, get, known, names, register, unregister

__all__ = ["Problem", "describe", "epoch_permutation", "get", "known", "names", "register",
           "unregister"]
