r"""PAL: Parabolic Approximation Line Search (Mutschler & Zell, NeurIPS 2020), Algorithm 2.

One PAL step on the loss :math:`L` of the current batch, with direction state
:math:`\mathrm{buf}` (zeros at the start):

.. math::

    l_0,\ g &= L(\theta),\ \nabla L(\theta)                  && \text{one forward, one backward}\\
    \mathrm{buf} &\leftarrow \beta_t\,\mathrm{buf} + g,\quad d = -\mathrm{buf} && \text{(Eq. 3)}\\
    n &= \lVert \mathrm{buf} \rVert_2 \ (\varepsilon \text{ if } n = 0),\quad
        \hat d = -\mathrm{buf}/n\\
    b &= -g\cdot\mathrm{buf}/n = l'(0)                          && \text{(Eq. 4)}\\
    l_\mu &= L(\theta + \mu \hat d)                              && \text{one forward, same batch}\\
    a &= (l_\mu - l_0 - b\mu)/\mu^2                               && \text{(Eq. 2)}

then the case logic of :func:`pal_case` chooses the step :math:`s \in [0, s_{max}]` and
:math:`\theta \leftarrow \theta + s\,\hat d`. The reported learning rate is :math:`s/n`
(the paper's Section 5.1).

Two evaluators of one step (see :mod:`paltest.optimizers.pal_cases`): on a device
namespace (CuPy, JAX, PyTorch, array-api-strict) the step is branch-free: every case is
chosen with ``where`` on 0-d arrays, so a step performs no device-to-host transfer (unless
``on_nonfinite="raise"``, which reads one flag). On NumPy, where reading a 0-d value is
free, the scalar work after the vector operations (the norm's zero rule, :math:`b`,
:math:`\beta_t`, finiteness, the case logic, the learning rate) runs on host scalars,
Python floats for float64 and ``numpy.float32`` for float32, with the same IEEE
operations in the same order and dtype, so the results are bitwise those of the array
evaluator (``paltest.optimizers.pal_cases.HOST_FAST_PATH = False`` forces the array
evaluator on NumPy too). The record's computed fields are then made 0-d NumPy arrays;
:math:`l_0` and :math:`l_\mu` are passed on as the loss functions returned them, as on the
array path.

Non-finite values (this project's rule, not the paper's): when :math:`l_0`, the gradient
or :math:`l_\mu` is NaN or infinite (or the direction norm overflows), :math:`\theta` is
returned bitwise unchanged, the direction state keeps its previous value, and the record
reports case 3. The authors' code instead leaves :math:`\theta` at the measuring point.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from paltest import backend
from paltest.optimizers import pal_cases as _cases
from paltest.optimizers import pal_direction as _direction
from paltest.optimizers.base import (
    as_loss,
    check_on_nonfinite,
    check_positive,
    evaluate,
    host_norm,
    raise_if_nonfinite,
    select,
    select_state,
    takes_theta_as_data,
)
from paltest.optimizers.pal_beta import (  # noqa: F401 - CONJUGATE_FORMULAS kept here too
    CONJUGATE_FORMULAS,
    array_beta,
    check_beta,
    host_beta,
)
from paltest.optimizers.pal_cases import PALCase, host_case, pal_case
from paltest.optimizers.pal_line import measure, own_direction
from paltest.optimizers.pal_state import CASE_NAMES, PALInfo, PALState

#: Loss types and dtypes that :func:`as_loss` returns unchanged on NumPy (0-d).
_HOST_LOSSES = (np.ndarray, np.float32)
_HOST_DTYPES = (np.dtype("float32"), np.dtype("float64"))

__all__ = ["CASE_NAMES", "PAL", "PALCase", "PALInfo", "PALState", "pal_case"]

_asarray = np.asarray
_F32 = np.dtype("float32")
_new_info = functools.partial(tuple.__new__, PALInfo)  # PALInfo(*fields), without a call
_new_state = functools.partial(tuple.__new__, PALState)


def _traced_or(check: Any, name: str, value: Any) -> Any:
    """``check(name, value)``, or a traced 0-d real floating ``value`` itself (JAX's
    ``jit``, ``vmap``, ``optax.inject_hyperparams``): its value cannot be read, so its
    range is not checked; the step computes with it in the parameters' dtype."""
    if not backend.is_traced(value):
        return check(name, value)
    if value.ndim != 0 or not backend.namespace(value).isdtype(value.dtype, "real floating"):
        raise TypeError(f"{name}: a traced hyperparameter must be a 0-d real floating "
                        f"array, got shape {tuple(value.shape)} and dtype {value.dtype}")
    return value


@takes_theta_as_data
class PAL:
    r"""PAL, Algorithm 2 with all additions: direction adaptation :math:`\beta`, update
    step adaptation :math:`\alpha`, maximum step :math:`s_{max}`, measuring step
    :math:`\mu`.

    Args:
        mu: measuring step :math:`\mu > 0`, a distance along the unit direction.
        alpha: update step adaptation :math:`\alpha > 0`, multiplies the parabola's
            minimum (case 1 only). On a quadratic PAL converges for :math:`0<\alpha<2`.
        beta: the direction adaptation :math:`\beta_t`: a constant in :math:`[0, 1]`, or
            one of the conjugate-gradient formulas ``"fletcher-reeves"`` (``"fr"``),
            ``"polak-ribiere"`` (``"pr"``), ``"hestenes-stiefel"`` (``"hs"``),
            ``"dai-yuan"`` (``"dy"``). With :math:`y = g_t - g_{t-1}` and the previous
            search direction :math:`d_{t-1} = -\mathrm{buf}_{t-1}`:
            FR :math:`\lVert g_t\rVert^2/\lVert g_{t-1}\rVert^2`,
            PR :math:`g_t\cdot y/\lVert g_{t-1}\rVert^2`,
            HS :math:`g_t\cdot y/(d_{t-1}\cdot y)`,
            DY :math:`\lVert g_t\rVert^2/(d_{t-1}\cdot y)` (Nocedal & Wright's
            convention; note the sign: :math:`d_{t-1}\cdot y = -\mathrm{buf}_{t-1}\cdot y`).
            Where a denominator is not positive or the value is not finite, the formula
            restarts with :math:`\beta_t = 0` (so the first step is a gradient step).
            Default (``None``): 0.4; not accepted with ``direction``.
        s_max: maximum step :math:`s_{max} > 0` along the unit direction.
        eps: the direction norm used when it is zero.
        on_nonfinite: ``"flag"`` (default: leave :math:`\theta` unchanged and report
            case 3) or ``"raise"`` (raise :class:`~paltest.NonFiniteError`; costs one
            device-to-host transfer per step).
        direction: ``None`` (default: PAL's own direction :math:`-(\beta_t
            \mathrm{buf}_{t-1} + g_t)`), or a first-order optimizer of the library (an
            instance or a registry name: ``"sgd"``, ``"adam"``, ``"rmsprop"``) whose
            update supplies the line (:mod:`paltest.optimizers.pal_direction`): with
            :math:`u_t` the base's update at unit learning rate for the batch gradient,
            PAL searches along :math:`\hat d_t = -u_t/\lVert u_t\rVert` and the base's
            state advances as in its own ``step``; its ``lr`` and ``on_nonfinite`` are
            not used. ``PAL(direction=SGD(momentum=b))`` is ``PAL(beta=b)``. Others
            raise ``ValueError`` naming ``direction`` (their ``no_direction``).

    Defaults: :math:`\mu = 1`, :math:`\alpha = 1/0.6`, :math:`\beta = 0.4` as in the
    authors' PyTorch class, and the paper's :math:`s_{max} = 10^{0.5} \approx 3.1623`
    (the authors' class rounds it to 3.16).

    Hyperparameters are Python floats, checked when the optimizer is made. Under JAX
    tracing (``jax.jit``, ``vmap``, ``optax.inject_hyperparams``) ``mu``, ``alpha``,
    ``beta`` (a constant), ``s_max`` and ``eps`` may also be traced 0-d arrays, so a
    schedule or a sweep over them does not recompile; their range cannot be checked
    then, and the step computes with them in the parameters' dtype.

    Cost per step: one ``value_and_grad`` and one ``value`` call, a few vector
    operations, and one vector of state (two for the conjugate formulas).

    Example:
        >>> import numpy as np
        >>> from paltest import PAL
        >>> A = np.diag([1.0, 10.0])
        >>> vg = lambda th: (0.5 * th @ A @ th, A @ th)
        >>> f = lambda th: 0.5 * th @ A @ th
        >>> opt = PAL(mu=0.1, alpha=1.0, beta="fletcher-reeves")
        >>> theta = np.array([1.0, 1.0])
        >>> state = opt.init(theta)
        >>> for _ in range(2):
        ...     theta, state, info = opt.step(theta, state, vg, f)
        >>> bool(np.linalg.norm(theta) < 1e-12)   # conjugate gradients: 2 steps in 2-D
        True

        Along Adam's direction (the base's state advances as Adam's own would):

        >>> from paltest.optimizers.adam import Adam
        >>> opt = PAL(mu=0.1, alpha=1.0, direction=Adam())
        >>> theta = np.array([1.0, 1.0])
        >>> state = opt.init(theta)
        >>> theta, state, info = opt.step(theta, state, vg, f)
        >>> float(state.base.count), int(info.case)   # one Adam step; parabola minimum
        (1.0, 1)
        >>> np.round(opt.line_direction(state), 6).tolist()   # -sign(g)/sqrt(2)
        [-0.707107, -0.707107]
    """

    #: A line search: it measures the loss along its direction to choose the step.
    is_line_search = True
    #: Why PAL cannot lead another PAL (``direction=``).
    no_direction = "it is a line search itself; give its direction optimizer instead"

    def __init__(
        self,
        mu: float = 1.0,
        alpha: float = 1.0 / 0.6,
        beta: float | str | None = None,
        s_max: float = 10.0**0.5,
        eps: float = 1e-10,
        on_nonfinite: str = "flag",
        direction: Any = None,
    ) -> None:
        self.mu = _traced_or(check_positive, "mu", mu)
        self.alpha = _traced_or(check_positive, "alpha", alpha)
        if direction is not None and beta is not None:
            raise ValueError(
                "beta: PAL's own direction adaptation is not used with direction=...; "
                "leave beta unset (e.g. direction=SGD(momentum=b) is PAL(beta=b))")
        self.direction = None if direction is None else _direction.resolve(direction)
        self.beta = None if direction is not None else _traced_or(
            lambda _, b: check_beta(b), "beta", 0.4 if beta is None else beta)
        self.s_max = _traced_or(check_positive, "s_max", s_max)
        self.eps = _traced_or(check_positive, "eps", eps)
        self.on_nonfinite = check_on_nonfinite(on_nonfinite)
        #: The hyperparameters that are traced values (cast to theta's dtype per step).
        self._traced = tuple(k for k in ("mu", "alpha", "beta", "s_max", "eps")
                             if backend.is_traced(getattr(self, k)))

    def __repr__(self) -> str:
        lead = (f"beta={self.beta!r}" if self.direction is None
                else f"direction={self.direction!r}")
        return (
            f"PAL(mu={self.mu!r}, alpha={self.alpha!r}, {lead}, "
            f"s_max={self.s_max!r}, eps={self.eps!r}, on_nonfinite={self.on_nonfinite!r})"
        )

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The hyperparameters as a dict (for result files). Along another optimizer:
        ``direction`` (its registry name) and its hyperparameters as
        ``"direction.<name>"`` (not its ``lr``, which PAL does not use), no ``beta``."""
        if self.direction is None:
            return {"mu": self.mu, "alpha": self.alpha, "beta": self.beta,
                    "s_max": self.s_max, "eps": self.eps}
        return {"mu": self.mu, "alpha": self.alpha, "s_max": self.s_max, "eps": self.eps,
                **_direction.record(self.direction)}

    @property
    def unused_hyperparameters(self) -> tuple[str, ...]:
        """Constructor arguments this PAL does not use (left out of result records, so
        records of PAL's own direction are as they were before ``direction`` existed)."""
        return ("direction",) if self.direction is None else ("beta",)

    def init(self, theta: Any) -> PALState:
        """The initial state: a zero direction state (and a zero previous gradient, or
        the base optimizer's initial state)."""
        xp = backend.check_params(theta)
        buf = xp.zeros_like(theta)
        if self.direction is not None:
            return PALState(buf=buf, prev_grad=None, base=self.direction.init(theta))
        prev = xp.zeros_like(theta) if isinstance(self.beta, str) else None
        return PALState(buf=buf, prev_grad=prev)

    def line_hyperparameters(self, xp: Any, dtype: Any) -> tuple[Any, ...]:
        """``(mu, alpha, s_max, eps, beta)`` for a step on parameters of ``dtype``: the
        Python floats (or formula name) as they are, traced ones cast to ``dtype``."""
        hp = (self.mu, self.alpha, self.s_max, self.eps, self.beta)
        if not self._traced:
            return hp
        return tuple(xp.astype(h, dtype) if backend.is_traced(h) else h for h in hp)

    def line_direction(self, state: PALState) -> Any:
        r"""The unit direction :math:`\hat d` of the last finite step, from its
        returned state: :math:`-\mathrm{buf}/\lVert\mathrm{buf}\rVert` with PAL's
        zero-norm rule (norm ``eps`` when it is 0, so a zero ``buf`` gives zeros).

        For PAL's own direction ``buf`` is :math:`\beta_t\mathrm{buf}_{t-1} + g_t`;
        along another optimizer it is the base's update :math:`u_t` at unit learning
        rate. The step's measuring point was :math:`\theta_t + \mu\hat d` and its new
        parameters :math:`\theta_t + s\hat d` (to rounding: the step multiplies
        ``buf`` by :math:`-\mu/\lVert\mathrm{buf}\rVert` once). After a non-finite
        step (parameters and state unchanged) it is the previous step's direction
        (zeros before the first finite step). An array of ``buf``'s namespace, dtype
        and device; no host transfer.
        """
        buf = state.buf
        xp = backend.namespace(buf)
        n = xp.linalg.vector_norm(buf)
        n = xp.where(n == 0, xp.full_like(n, self.eps), n)
        return -(buf / n)

    def step(
        self, theta: Any, state: PALState, value_and_grad: Any, value: Any
    ) -> tuple[Any, PALState, PALInfo]:
        """One PAL step: ``(theta_next, state_next, info)``.

        ``value_and_grad(theta) -> (loss, grad)`` and ``value(theta) -> loss`` must be
        bound to the same batch (and the same random numbers, e.g. dropout masks).
        ``grad`` must have ``theta``'s namespace, shape and dtype; ``loss`` is a 0-d
        array or a Python float. ``grad`` may be kept in the returned state (as the
        direction when ``beta == 0``), so ``value_and_grad`` must return a fresh array,
        not a buffer it overwrites later. Neither ``theta`` nor ``grad`` is modified.
        """
        xp, l0, g = evaluate(theta, state, value_and_grad)
        base = self.direction
        if base is not None:
            _direction.check_state(theta, state.base)
        if _cases.HOST_FAST_PATH and backend.on_host(xp):
            return self._host_step(xp, theta, state, value, l0, g)

        # The two stages of :mod:`paltest.optimizers.pal_line` (shared with the optax
        # and torch front ends), then the update (one multiply-add into a fresh array)
        # and the selections. ``buf * (-c)`` then ``+= theta`` is bitwise
        # ``theta - c * buf`` (IEEE: x - y == x + (-y), and rounding is symmetric in sign).
        mu, alpha, s_max, eps, formula = self.line_hyperparameters(xp, theta.dtype)
        base_next = None
        if base is not None:  # the base's update at unit learning rate (a fresh array)
            buf, base_next = base.update(theta, state.base, g, 1.0)
            beta = math.nan
        else:
            buf, beta = own_direction(formula, xp, g, state)
        line = measure(xp, theta, buf, g, l0, value, mu, alpha, s_max, eps,
                       self.on_nonfinite)
        finite, lr = line.finite, line.lr
        update = buf * (-lr)
        update += theta
        theta_next = select(xp, line.moved, update, theta)
        del update

        new_buf = select(xp, finite, buf, state.buf)
        new_prev = None if state.prev_grad is None else select(xp, finite, g, state.prev_grad)
        new_base = None if base is None else select_state(xp, finite, base_next, state.base)
        beta_rec = beta if not isinstance(beta, float) else xp.full_like(line.n, beta)
        info = PALInfo(
            l0=l0, l_mu=line.l_mu, a=line.a, b=line.b, step=line.step, lr=lr,
            case=line.case, clipped=line.clipped, beta=beta_rec, nonfinite=~finite,
            n_fun=2, n_grad=1,
        )
        return theta_next, PALState(buf=new_buf, prev_grad=new_prev, base=new_base), info

    def _host_step(self, xp: Any, theta: Any, state: PALState, value: Any, l0: Any,
                   g: Any) -> tuple[Any, PALState, PALInfo]:
        """:meth:`step` after the first evaluation, on NumPy: the scalar work on host
        scalars (see the module docstring), bitwise equal to the array evaluator."""
        dt = theta.dtype
        cast = np.float32 if (dt is _F32 or dt == _F32) else float
        base, base_next = self.direction, None
        if base is not None:  # the base's update at unit learning rate (a fresh array)
            buf, base_next = base.update(theta, state.base, g, 1.0)
            beta = math.nan
        else:
            conj = isinstance(self.beta, str)
            beta = host_beta(self.beta, g, state, cast) if conj else self.beta
            if not conj and beta == 0.0:
                buf = g  # 0 * buf + g equals g (it may differ only in the sign of a zero)
            else:
                buf = state.buf * beta
                buf += g
        n = cast(host_norm(buf))
        if n == 0:
            n = cast(self.eps)  # NaN stays NaN
        b = -cast(np.vecdot(g, buf)) / n
        probe = buf * (-(self.mu / n))
        probe += theta
        l_mu = value(probe)
        del probe
        # as_loss without its namespace lookup for the common cases, with its results:
        # a Python float (np.float64 is one) becomes a 0-d array of theta's dtype, and a
        # 0-d float32/float64 array (or np.float32) passes unchanged.
        if type(l_mu) in (float, np.float64):
            l_mu = np.asarray(float(l_mu), dtype=dt)
        elif not (type(l_mu) in _HOST_LOSSES and l_mu.ndim == 0
                  and l_mu.dtype in _HOST_DTYPES):
            l_mu = as_loss(l_mu, xp, theta)

        if l0.dtype is dt and l_mu.dtype is dt:
            ct, ccast = dt, cast
        else:
            ct = dt if l0.dtype == l_mu.dtype == dt else np.result_type(l0.dtype, l_mu.dtype,
                                                                         dt)
            ccast = np.float32 if ct == np.float32 else float
        l0c, lmuc, bc = ccast(l0), ccast(l_mu), ccast(b)
        n_ok = math.isfinite(n)
        if not n_ok:
            bc = ccast(math.nan)
        finite = n_ok and math.isfinite(l0c) and math.isfinite(lmuc) and math.isfinite(bc)
        if self.on_nonfinite == "raise":
            raise_if_nonfinite(np.asarray(finite), "loss, gradient or measured loss")
        res = host_case(l0c, lmuc, bc, self.mu, self.alpha, self.s_max, finite, ct)
        step = cast(res.step)
        moved = res.step > 0
        lr = step / n if moved else cast(0.0)
        if moved:
            theta_next = buf * (-lr)
            theta_next += theta
        else:
            theta_next = theta
        new_buf = buf if finite else state.buf
        new_prev = None if state.prev_grad is None else (g if finite else state.prev_grad)
        new_base = None if base is None else (base_next if finite else state.base)
        # 0-d arrays (the case and bool fields: shared read-only ones), positionally:
        # l0, l_mu, a, b, step, lr, case, clipped, beta, nonfinite, n_fun, n_grad
        info = _new_info((
            l0, l_mu, _asarray(res.a, dtype=ct), _asarray(b, dtype=dt),
            _asarray(step, dtype=dt), _asarray(lr, dtype=dt), _cases.CASE_ARRAYS[res.case],
            _cases.BOOL_ARRAYS[bool(res.clipped)], _asarray(beta, dtype=dt),
            _cases.BOOL_ARRAYS[not finite], 2, 1))
        return theta_next, _new_state((new_buf, new_prev, new_base)), info
