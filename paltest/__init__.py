"""paltest: PAL (Parabolic Approximation Line Search) on the Python array API.

Optimizers share one functional interface (see :mod:`paltest.optimizers.base`)::

    state = opt.init(theta)
    theta, state, info = opt.step(theta, state, value_and_grad, value)

The testbed's problems are ``paltest.problems`` (the package ``problems``, the same
module objects: see :mod:`paltest._aliases`).
"""

from paltest import _aliases, backend  # noqa: F401 - _aliases: import paltest.problems
from paltest.minimize import minimize, scipy_method
from paltest.optimizers.adam import Adam
from paltest.optimizers.alig import ALIG
from paltest.optimizers.base import NonFiniteError, Optimizer, TraceError
from paltest.optimizers.cocob import COCOBBackprop
from paltest.optimizers.exact import ExactLineSearch
from paltest.optimizers.pal import PAL, PALInfo, PALState, pal_case
from paltest.optimizers.rmsprop import RMSProp
from paltest.optimizers.sgd import SGD
from paltest.optimizers.sgdhd import SGDHD
from paltest.optimizers.sls import SLS
from paltest.optimizers.sls_variants import SLSGoldstein, SLSPolyak
from paltest.testbed.results import RunResult, load, load_steps, load_table, save
from paltest.testbed.runner import run
from paltest.testbed.sweep import load_config, sweep

__all__ = [
    "ALIG",
    "PAL",
    "SGD",
    "SGDHD",
    "SLS",
    "Adam",
    "COCOBBackprop",
    "ExactLineSearch",
    "NonFiniteError",
    "Optimizer",
    "PALInfo",
    "PALState",
    "RMSProp",
    "SLSGoldstein",
    "SLSPolyak",
    "TraceError",
    "backend",
    "minimize",
    "load",
    "load_config",
    "load_steps",
    "load_table",
    "pal_case",
    "run",
    "RunResult",
    "save",
    "scipy_method",
    "sweep",
]
__version__ = "0.1.0"

#: Imported on first use, so that ``import paltest`` needs neither framework:
#: ``paltest.torch`` (:class:`paltest.torch.PAL`, a ``torch.optim.Optimizer``),
#: ``paltest.optax`` (:func:`paltest.optax.pal`, an optax transformation on pytrees),
#: and ``paltest.problems`` (the testbed's problems, the same modules as ``problems``).
_LAZY = ("optax", "problems", "torch")


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return importlib.import_module(f"paltest.{name}")
    raise AttributeError(f"module 'paltest' has no attribute {name!r}")
