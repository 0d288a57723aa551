"""A SciPy-style driver for deterministic (full-batch) objectives.

:func:`minimize` runs an optimizer (PAL by default) on ``fun`` until the gradient norm
falls below ``gtol`` and returns a :class:`scipy.optimize.OptimizeResult`.
:func:`scipy_method` is the same thing in the form ``scipy.optimize.minimize`` accepts
as a custom ``method=``.

The driver reads the gradient norm on the host once per iteration for its stopping test;
the optimizer steps themselves stay on the device. The gradient at the new point is
evaluated once and reused by the next step (no evaluation is repeated), so ``nfev`` and
``njev`` count exactly the calls made.

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
from typing import Any

from scipy.optimize import OptimizeResult

from paltest import backend
from paltest.checks import check_int, check_nonneg
from paltest.optimizers.pal import PAL

__all__ = ["minimize", "scipy_method"]

_MESSAGES = {
    0: "Optimization terminated successfully: gradient norm <= gtol.",
    1: "Maximum number of iterations has been exceeded.",
    3: "A non-finite loss or gradient was met; x is the last finite iterate.",
    99: "`callback` raised `StopIteration`.",
}


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
            if not (isinstance(out, tuple) and len(out) == 2):
                raise TypeError("fun: with jac=True it must return a (value, gradient) pair")
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


def _wrap_callback(callback: Any) -> Any:
    """A callable taking the intermediate OptimizeResult (SciPy's two callback styles)."""
    if callback is None:
        return None
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
            namespace; the loss a 0-d array or a Python float.
        x0: the start, a 1-D floating array (its namespace and device are kept).
        args: extra positional arguments for ``fun`` and ``jac``.
        jac: ``True`` when ``fun`` returns the gradient too, or a callable
            ``jac(x, *args)``. PAL needs gradients, so ``None``/``False`` is an error.
        optimizer: an optimizer with ``init``/``step``; default ``PAL(**pal_options)``.
        gtol: stop when the gradient's 2-norm is ``<= gtol``.
        maxiter: the maximum number of optimizer steps.
        callback: ``callback(intermediate_result)`` (an ``OptimizeResult`` with ``x``,
            ``fun``, ``jac``, ``nit``) or ``callback(xk)``; return ``True`` or raise
            ``StopIteration`` to stop.
        **pal_options: PAL's hyperparameters (``mu``, ``alpha``, ``beta``, ``s_max``, ...)
            when ``optimizer`` is not given.

    Returns:
        ``OptimizeResult`` with ``x``, ``fun`` (float), ``jac``, ``nit``, ``nfev``,
        ``njev``, ``success``, ``status`` (0 converged, 1 ``maxiter``, 3 non-finite,
        99 stopped by the callback) and ``message``.
    """
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
    if optimizer is None:
        optimizer = PAL(**pal_options)
    elif pal_options:
        raise TypeError(
            f"pal_options: {sorted(pal_options)} given together with optimizer=; "
            "set them on the optimizer instead"
        )
    notify = _wrap_callback(callback)
    obj = _Counted(fun, jac, args)

    x = x0
    f, g = obj.value_and_grad(x)
    state = optimizer.init(x)
    gnorm = backend.to_float(xp.linalg.vector_norm(g))
    fval = backend.to_float(f)
    status = 0 if gnorm <= gtol else 1
    nit = 0
    if not (gnorm == gnorm and fval == fval and abs(gnorm) != float("inf")):
        status = 3
    while status == 1 and nit < maxiter:
        x_new, state, info = optimizer.step(x, state, obj.value_and_grad, obj.value)
        nit += 1
        if bool(backend.to_host(info.nonfinite)):
            status = 3
            break
        x = x_new
        f, g = obj.value_and_grad(x)
        fval = backend.to_float(f)
        gnorm = backend.to_float(xp.linalg.vector_norm(g))
        if not (fval == fval and gnorm == gnorm and abs(gnorm) != float("inf")):
            status = 3
            break
        if gnorm <= gtol:
            status = 0
        if notify is not None:
            try:
                stop = notify(OptimizeResult(x=x, fun=fval, jac=g, nit=nit))
            except StopIteration:
                stop = True
            if stop is True:
                status = 99 if status != 0 else 0
                break
    return OptimizeResult(
        x=x, fun=fval, jac=g, nit=nit, nfev=obj.nfev, njev=obj.njev,
        success=status == 0, status=status, message=_MESSAGES[status],
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
    ``optimizer``) and PAL's hyperparameters; ``tol=`` sets ``gtol``. Bounds,
    constraints and Hessians are not supported and raise ``ValueError``.

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
