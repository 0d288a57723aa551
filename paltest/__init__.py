"""paltest: PAL (Parabolic Approximation Line Search) on the Python array API."""

from paltest import backend
from paltest.optimizers.base import NonFiniteError, Optimizer
from paltest.minimize import minimize, scipy_method
from paltest.optimizers.pal import PAL, PALInfo, PALState, pal_case

__all__ = ["PAL", "NonFiniteError", "Optimizer", "PALInfo", "PALState", "backend", "minimize",
           "pal_case", "scipy_method"]
__version__ = "0.1.0"
