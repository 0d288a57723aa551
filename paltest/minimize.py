"""A SciPy-style driver for deterministic (full-batch) objectives.

:func:`minimize` runs an optimizer (PAL by default) on ``fun`` until the gradient norm
falls below ``gtol`` and returns a :class:`scipy.optimize.OptimizeResult`.
:func:`scipy_method` is the same thing in the form ``scipy.optimize.minimize`` accepts
as a custom ``method=``.

SciPy's conventions are followed where they apply: ``x0`` may be a list, a Python
number or a NumPy integer array (converted to a float64 NumPy array, as SciPy does);
``jac=None``/``False``/``"2-point"``/``"3-point"`` estimate the gradient by finite
differences (SciPy's step rule; their evaluations count in ``nfev``); ``tol`` sets
``gtol``; ``disp=True`` prints SciPy's closing summary (``options={"disp": True}`` through
:func:`scipy_method`).

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
from paltest.checks import check_bool, check_int, check_nonneg
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


#: The finite-difference schemes of ``jac`` (SciPy's names); ``None``/``False`` is the first.
FINITE_DIFFERENCES = ("2-point", "3-point")


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
        elif self.jac in FINITE_DIFFERENCES:
            out = self._finite_differences(x)
        else:
            out = (self.fun(x, *self.args), self.jac(x, *self.args))
        self.nfev += 1
        self.njev += 1
        self._key, self._val = x, out
        return out

    def _finite_differences(self, x: Any) -> tuple[Any, Any]:
        r"""``(fun(x), gradient)``, the gradient by forward (``"2-point"``) or central
        (``"3-point"``) differences with SciPy's steps
        :math:`h_i = \epsilon^{1/2}` (or :math:`\epsilon^{1/3}`)
        :math:`\cdot\,\mathrm{sign}(x_i)\max(1, |x_i|)`, rounded so that
        :math:`x_i + h_i` is exact; ``n`` (or ``2n``) more calls of ``fun``."""
        import numpy as np

        xp = backend.namespace(x)
        f0 = self.fun(x, *self.args)
        host = np.asarray(backend.to_host(x), dtype=np.float64)
        dtype = backend.dtype_name(x.dtype)
        central = self.jac == "3-point"
        eps = float(np.finfo(dtype).eps) ** (1 / 3 if central else 1 / 2)
        h = eps * np.where(host >= 0, 1.0, -1.0) * np.maximum(1.0, np.abs(host))
        grad = np.empty_like(host)
        for i in range(host.size):
            e = np.zeros_like(host)
            e[i] = h[i]
            up = backend.from_host(host + e, xp, dtype=dtype, device=backend.device(x))
            hi = float(backend.to_host(up)[i]) - host[i]  # the step actually taken
            f_up = _loss_value(self.fun(up, *self.args), xp, x)
            if central:
                down = backend.from_host(host - e, xp, dtype=dtype, device=backend.device(x))
                lo = host[i] - float(backend.to_host(down)[i])
                grad[i] = (f_up - _loss_value(self.fun(down, *self.args), xp, x)) / (hi + lo)
            else:
                grad[i] = (f_up - _loss_value(f0, xp, x)) / hi
        self.nfev += host.size * (2 if central else 1)
        return f0, backend.from_host(grad, xp, dtype=dtype, device=backend.device(x))

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
        known = set(inspect.signature(PAL).parameters)
        unknown = sorted(set(options) - known)
        if unknown:  # PAL's constructor would say "unexpected keyword argument"
            raise TypeError(f"options: {unknown} are neither options of minimize (gtol, "
                            f"maxiter, tol, disp, callback, optimizer) nor hyperparameters "
                            f"of PAL ({sorted(known)})")
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


def _start(x0: Any) -> Any:
    """``x0`` as a 1-D array: an array of a namespace as it is (a 0-d one as shape
    ``(1,)``); a list, a Python number or a NumPy array as SciPy takes it
    (``np.atleast_1d``, integers converted to float64). Bools and strings are refused."""
    import numpy as np

    if isinstance(x0, (bool, str, bytes)):
        raise TypeError(f"x0: expected real numbers, got {x0!r}")
    if isinstance(x0, (list, tuple, int, float, np.ndarray, np.generic)):
        try:
            host = np.asarray(x0)
        except ValueError as err:  # ragged lists
            raise ValueError(f"x0: not an array of numbers ({err})") from None
        if host.dtype.kind in "iu":
            host = host.astype(np.float64)
        elif host.dtype.kind != "f":
            raise TypeError(f"x0: expected real numbers, got dtype {host.dtype}")
        return np.atleast_1d(host) if host.ndim == 0 else host
    if getattr(x0, "shape", None) == ():  # SciPy's convention: a scalar start is 1-D
        try:
            return backend.namespace(x0).reshape(x0, (1,))
        except TypeError:
            pass  # not an array: check_params names x0
    return x0


def _check_jac(jac: Any) -> Any:
    if jac is None or jac is False:
        return FINITE_DIFFERENCES[0]
    if isinstance(jac, str):
        if jac not in FINITE_DIFFERENCES:
            raise ValueError(f"jac: {jac!r} is not supported; use True (fun returns the "
                             f"gradient), a callable, or finite differences "
                             f"{FINITE_DIFFERENCES}")
        return jac
    if jac is not True and not callable(jac):
        raise TypeError(f"jac: expected True, a callable, None or one of "
                        f"{FINITE_DIFFERENCES}, got {jac!r}")
    return jac


def _show(res: Any) -> None:
    """SciPy's closing summary of ``disp=True``."""
    head = res.message if res.success else f"Warning: {res.message}"
    print(f"{head}\n         Current function value: {res.fun:f}\n         Iterations: "
          f"{res.nit}\n         Function evaluations: {res.nfev}\n         Gradient "
          f"evaluations: {res.njev}")


def minimize(
    fun: Any,
    x0: Any,
    args: tuple = (),
    *,
    jac: Any = True,
    optimizer: Any = None,
    gtol: float | None = None,
    maxiter: int = 1000,
    callback: Any = None,
    tol: float | None = None,
    disp: bool = False,
    **pal_options: Any,
) -> OptimizeResult:
    """Minimize a deterministic objective with PAL (or another paltest optimizer).

    Args:
        fun: ``fun(x, *args)``; returns the loss, or ``(loss, gradient)`` when
            ``jac=True``. ``x`` is a 1-D float32/float64 array of any array-API
            namespace; the loss a Python float or a 0-d (or 1-element) real array.
        x0: the start, a 1-D floating array (its namespace and device are kept); a
            0-d array is treated as shape ``(1,)``, and a list, a Python number or a
            NumPy integer array is made a float64 NumPy array, as SciPy does.
        args: extra positional arguments for ``fun`` and ``jac``.
        jac: ``True`` when ``fun`` returns the gradient too, a callable
            ``jac(x, *args)``, or finite differences: ``"2-point"`` (also ``None`` and
            ``False``, SciPy's default) or ``"3-point"`` (``n`` or ``2n`` more calls of
            ``fun`` per gradient, counted in ``nfev``).
        optimizer: an optimizer with ``init``/``step``, or a registry name such as
            ``"pal"`` or ``"sls"`` (:func:`paltest.optimizers.registry.make`, built with
            ``pal_options``; the SLS family then uses its default
            ``n_batches_per_epoch``); default ``PAL(**pal_options)``.
        gtol: stop when the gradient's 2-norm is ``<= gtol`` (default ``tol``, else
            1e-5).
        maxiter: the maximum number of optimizer steps.
        callback: ``callback(intermediate_result)`` (an ``OptimizeResult`` with ``x``,
            ``fun``, ``jac``, ``nit``) or ``callback(xk)``; return ``True`` or raise
            ``StopIteration`` to stop. Anything not callable is rejected up front.
        tol: SciPy's tolerance: the ``gtol`` when that is not given.
        disp: print SciPy's closing summary (message, function value, iterations,
            evaluations).
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
    x0 = _start(x0)
    xp = backend.check_params(x0, "x0")
    jac = _check_jac(jac)
    if not callable(fun):
        raise TypeError(f"fun: expected a callable, got {fun!r}")
    if not isinstance(args, tuple):
        args = (args,)
    disp = check_bool("disp", disp)
    gtol = check_nonneg("gtol", gtol if gtol is not None else tol if tol is not None
                        else 1e-5)
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
    res = _result(
        x=x, fun=fval, jac=g, nit=nit, nfev=obj.nfev, njev=obj.njev,
        success=status == 0, status=status,
        message=_AT_X0 if status == 3 and nit == 0 else _MESSAGES[status],
    )
    if disp:
        _show(res)
    return res


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
    ``disp``, ``optimizer``: an object or a registry name) and the optimizer's
    hyperparameters; ``tol=`` sets ``gtol``; ``jac`` as in :func:`minimize` (finite
    differences for ``None``, ``"2-point"`` and ``"3-point"``). Bounds, constraints and
    Hessians are not supported and raise ``ValueError``. SciPy hands over ``x0`` as a 1-D
    array (a scalar start as shape ``(1,)``), so ``x`` comes back 1-D, as from SciPy's own
    methods.

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
    # scipy.optimize.minimize wraps fun for jac=True and hands over jac=fun.derivative;
    # for a finite-difference jac it hands the string over (or None).
    return minimize(fun, x0, args, jac=jac, callback=callback, tol=tol, **options)
