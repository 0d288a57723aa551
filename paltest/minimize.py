"""A SciPy-style driver for deterministic (full-batch) objectives.

:func:`minimize` runs an optimizer (PAL by default) on ``fun`` until the gradient norm
falls below ``gtol`` and returns a :class:`scipy.optimize.OptimizeResult`.
:func:`scipy_method` is the same thing in the form ``scipy.optimize.minimize`` accepts
as a custom ``method=``.

The driver reads the loss and the gradient norm on the host once per iteration for its
stopping test; the optimizer steps themselves stay on the device. The gradient at the new
point is evaluated once and reused by the next step (no evaluation is repeated), so
``nfev`` and ``njev`` count exactly the calls made. The loss may be anything a step
accepts (:func:`paltest.optimizers.base.as_loss`: a Python float, a 0-d or 1-element
real array). A 0-d ``x0`` is treated as shape ``(1,)``, as
:func:`scipy.optimize.minimize` does (``fun`` then sees 1-D ``x`` and ``x`` is
returned 1-D).

Example:
    >>> import numpy as np
    >>> from paltest import minimize
    >>> A = np.diag([1.0, 4.0, 9.0])
    >>> res = minimize(lambda x: (0.5 * x @ A @ x, A @ x), np.ones(3), jac=True,
    ...                gtol=1e-8, alpha=1.0, beta=0.0)
    >>> res.success, bool(res.fun < 1e-15)
    (True, True)
"""

from __future__ import annotations

import inspect
import math
from typing import TYPE_CHECKING, Any

from paltest import backend
from paltest.checks import check_int, check_nonneg
from paltest.optimizers import registry
from paltest.optimizers.base import as_loss
from paltest.optimizers.pal import PAL

if TYPE_CHECKING:
    from scipy.optimize import OptimizeResult

__all__ = ["minimize", "scipy_method"]

_MESSAGES = {
    0: "Optimization terminated successfully: gradient norm <= gtol.",
    1: "Maximum number of iterations has been exceeded.",
    3: "A non-finite loss or gradient was met; x is the last finite iterate.",
    99: "`callback` raised `StopIteration`.",
}
#: Status 3 before any step: there is no finite iterate to return.
_AT_X0 = "The loss or gradient at x0 is not finite; x is x0."


class _Counted:
    """The objective with call counters and a one-entry cache for ``value_and_grad``."""

    def __init__(self, fun: Any, jac: Any, args: tuple) -> None:
        self.fun, self.jac, self.args = fun, jac, args
        self.nfev = self.njev = 0
        self._key: Any = None
        self._val: Any = None

    def value_and_grad(self, x: Any) -> tuple[Any, Any]:
        if self._key is x:
            return self._val
        if self.jac is True:
            out = self.fun(x, *self.args)
            if not (isinstance(out, (tuple, list)) and len(out) == 2):
                raise TypeError("fun: with jac=True it must return a (value, gradient) pair")
            out = tuple(out)
        else:
            out = (self.fun(x, *self.args), self.jac(x, *self.args))
        self.nfev += 1
        self.njev += 1
        self._key, self._val = x, out
        return out

    def value(self, x: Any) -> Any:
        self.nfev += 1
        out = self.fun(x, *self.args)
        return out[0] if self.jac is True else out


def _loss_value(f: Any, xp: Any, x: Any) -> float:
    """The loss ``f`` returned by ``fun`` as a Python float, accepted as a step accepts it."""
    if isinstance(f, (int, float)) and not isinstance(f, bool):
        return float(f)
    try:
        return backend.to_float(as_loss(f, xp, x))
    except (TypeError, ValueError) as err:
        raise type(err)(f"fun: returned an invalid loss; {err}") from err


def _resolve_optimizer(optimizer: Any, options: dict[str, Any]) -> Any:
    """``PAL(**options)``, a registry name built with ``options``, or an optimizer object."""
    if optimizer is None:
        return PAL(**options)
    if isinstance(optimizer, str):
        return registry.make(optimizer, **options)
    if options:
        raise TypeError(
            f"pal_options: {sorted(options)} given together with optimizer=; "
            "set them on the optimizer instead"
        )
    if isinstance(optimizer, type) or not (callable(getattr(optimizer, "init", None))
                                           and callable(getattr(optimizer, "step", None))):
        raise TypeError(
            f"optimizer: expected a registry name ({', '.join(registry.names())}) or an "
            f"optimizer object with init and step methods (an instance, not a class), "
            f"got {optimizer!r}"
        )
    return optimizer


def _result(**fields: Any) -> Any:
    """A :class:`scipy.optimize.OptimizeResult` (SciPy imported on first use: importing
    ``paltest`` should not cost ``scipy.optimize``'s half second)."""
    from scipy.optimize import OptimizeResult

    return OptimizeResult(**fields)


def _finite(fval: float, gnorm: float) -> bool:
    return math.isfinite(fval) and math.isfinite(gnorm)


def _wrap_callback(callback: Any) -> Any:
    """A callable taking the intermediate OptimizeResult (SciPy's two callback styles)."""
    if callback is None:
        return None
    if not callable(callback):
        raise TypeError(f"callback: expected a callable or None, got {callback!r}")
    try:
        params = list(inspect.signature(callback).parameters)
    except (TypeError, ValueError):
        params = []
    if params == ["intermediate_result"]:
        return callback
    return lambda res: callback(res.x)


def minimize(
    fun: Any,
    x0: Any,
    args: tuple = (),
    *,
    jac: Any = True,
    optimizer: Any = None,
    gtol: float = 1e-5,
    maxiter: int = 1000,
    callback: Any = None,
    **pal_options: Any,
) -> OptimizeResult:
    """Minimize a deterministic objective with PAL (or another paltest optimizer).

    Args:
        fun: ``fun(x, *args)``; returns the loss, or ``(loss, gradient)`` when
            ``jac=True``. ``x`` is a 1-D float32/float64 array of any array-API
            namespace; the loss a Python float or a 0-d (or 1-element) real array.
        x0: the start, a 1-D floating array (its namespace and device are kept); a
            0-d array is treated as shape ``(1,)``, as SciPy does.
        args: extra positional arguments for ``fun`` and ``jac``.
        jac: ``True`` when ``fun`` returns the gradient too, or a callable
            ``jac(x, *args)``. PAL needs gradients, so ``None``/``False`` is an error.
        optimizer: an optimizer with ``init``/``step``, or a registry name such as
            ``"pal"`` or ``"sls"`` (:func:`paltest.optimizers.registry.make`, built with
            ``pal_options``; the SLS family then uses its default
            ``n_batches_per_epoch``); default ``PAL(**pal_options)``.
        gtol: stop when the gradient's 2-norm is ``<= gtol``.
        maxiter: the maximum number of optimizer steps.
        callback: ``callback(intermediate_result)`` (an ``OptimizeResult`` with ``x``,
            ``fun``, ``jac``, ``nit``) or ``callback(xk)``; return ``True`` or raise
            ``StopIteration`` to stop. Anything not callable is rejected up front.
        **pal_options: the hyperparameters of PAL (``mu``, ``alpha``, ``beta``,
            ``s_max``, ...) when ``optimizer`` is not given, or of the optimizer it names.

    Returns:
        ``OptimizeResult`` with ``x``, ``fun`` (float), ``jac``, ``nit``, ``nfev``,
        ``njev``, ``success``, ``status`` (0 converged, 1 ``maxiter``, 3 non-finite,
        99 stopped by the callback) and ``message``. With status 3, ``x``, ``fun`` and
        ``jac`` are the last iterate whose loss and gradient were finite (``x0`` itself
        when its loss or gradient is NaN or infinite: then ``nit`` is 0); ``nit``,
        ``nfev`` and ``njev`` include the step that met the non-finite value.
    """
    if getattr(x0, "shape", None) == ():  # SciPy's convention: a scalar start is 1-D
        try:
            x0 = backend.namespace(x0).reshape(x0, (1,))
        except TypeError:
            pass  # not an array: check_params names x0
    xp = backend.check_params(x0, "x0")
    if jac is None or jac is False:
        raise ValueError(
            "jac: PAL needs the gradient; pass jac=True (fun returns (value, gradient)) "
            "or a callable jac(x, *args)"
        )
    if jac is not True and not callable(jac):
        raise TypeError(f"jac: expected True or a callable, got {jac!r}")
    if not callable(fun):
        raise TypeError(f"fun: expected a callable, got {fun!r}")
    if not isinstance(args, tuple):
        args = (args,)
    gtol = check_nonneg("gtol", gtol)
    maxiter = check_int("maxiter", maxiter, 0)
    optimizer = _resolve_optimizer(optimizer, pal_options)
    notify = _wrap_callback(callback)
    obj = _Counted(fun, jac, args)

    x = x0
    f, g = obj.value_and_grad(x)
    state = optimizer.init(x)
    gnorm = backend.to_float(xp.linalg.vector_norm(g))
    fval = _loss_value(f, xp, x)
    status = 0 if gnorm <= gtol else 1
    nit = 0
    if not _finite(fval, gnorm):
        status = 3
    while status == 1 and nit < maxiter:
        x_new, state, info = optimizer.step(x, state, obj.value_and_grad, obj.value)
        nit += 1
        if bool(backend.to_host(info.nonfinite)):
            status = 3
            break
        f_new, g_new = obj.value_and_grad(x_new)
        fval_new = _loss_value(f_new, xp, x_new)
        gnorm_new = backend.to_float(xp.linalg.vector_norm(g_new))
        if not _finite(fval_new, gnorm_new):
            status = 3  # x, fval, g stay the last finite iterate
            break
        x, g, fval, gnorm = x_new, g_new, fval_new, gnorm_new
        if gnorm <= gtol:
            status = 0
        if notify is not None:
            try:
                stop = notify(_result(x=x, fun=fval, jac=g, nit=nit))
            except StopIteration:
                stop = True
            if stop is True:
                status = 99 if status != 0 else 0
                break
    return _result(
        x=x, fun=fval, jac=g, nit=nit, nfev=obj.nfev, njev=obj.njev,
        success=status == 0, status=status,
        message=_AT_X0 if status == 3 and nit == 0 else _MESSAGES[status],
    )


def scipy_method(
    fun: Any,
    x0: Any,
    args: tuple = (),
    jac: Any = None,
    hess: Any = None,
    hessp: Any = None,
    bounds: Any = None,
    constraints: Any = (),
    callback: Any = None,
    tol: float | None = None,
    **options: Any,
) -> OptimizeResult:
    """PAL as a custom ``method=`` of :func:`scipy.optimize.minimize`.

    Options (``options={...}``) are those of :func:`minimize` (``gtol``, ``maxiter``,
    ``optimizer``: an object or a registry name) and the optimizer's hyperparameters;
    ``tol=`` sets ``gtol``. Bounds, constraints and Hessians are not supported and raise
    ``ValueError``. SciPy hands over ``x0`` as a 1-D array (a scalar start as shape
    ``(1,)``), so ``x`` comes back 1-D, as from SciPy's own methods.

    Example:
        >>> import numpy as np, scipy.optimize
        >>> from paltest import scipy_method
        >>> A = np.diag([1.0, 3.0])
        >>> res = scipy.optimize.minimize(lambda x: (0.5 * x @ A @ x, A @ x), np.ones(2),
        ...                               jac=True, method=scipy_method,
        ...                               options={"gtol": 1e-10, "beta": 0.0})
        >>> res.success
        True
    """
    if bounds is not None:
        raise ValueError("bounds: PAL is an unconstrained method")
    if constraints:
        raise ValueError("constraints: PAL is an unconstrained method")
    if hess is not None or hessp is not None:
        raise ValueError("hess: PAL does not use Hessians")
    if tol is not None:
        options.setdefault("gtol", tol)
    # scipy.optimize.minimize wraps fun for jac=True and hands over jac=fun.derivative.
    return minimize(fun, x0, args, jac=jac, callback=callback, **options)
