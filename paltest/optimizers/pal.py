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

The step is branch-free: every case is chosen with ``where`` on 0-d arrays, so a step
performs no device-to-host transfer (unless ``on_nonfinite="raise"``, which reads one
flag).

Non-finite values (this project's rule, not the paper's): when :math:`l_0`, the gradient
or :math:`l_\mu` is NaN or infinite (or the direction norm overflows), :math:`\theta` is
returned bitwise unchanged, the direction state keeps its previous value, and the record
reports case 3. The authors' code instead leaves :math:`\theta` at the measuring point.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from paltest import backend
from paltest.optimizers.base import (
    as_loss,
    check_in_range,
    check_on_nonfinite,
    check_positive,
    evaluate,
    raise_if_nonfinite,
    select,
    takes_theta_as_data,
)

__all__ = ["CASE_NAMES", "PAL", "PALCase", "PALInfo", "PALState", "pal_case"]

#: Names of the cases reported in :attr:`PALInfo.case`.
CASE_NAMES = {0: "no update", 1: "parabola minimum", 2: "measuring step", 3: "non-finite"}

#: Formulas accepted for ``beta`` besides a constant.
CONJUGATE_FORMULAS = ("fletcher-reeves", "polak-ribiere", "hestenes-stiefel", "dai-yuan")
_ALIASES = {"fr": "fletcher-reeves", "pr": "polak-ribiere", "hs": "hestenes-stiefel",
            "dy": "dai-yuan"}


class PALCase(NamedTuple):
    """The outcome of the case logic (all arrays of the inputs' broadcast shape).

    Attributes:
        step: the update step :math:`s \\in [0, s_{max}]` along the unit direction.
        a: the parabola's leading coefficient :math:`(l_\\mu - l_0 - b\\mu)/\\mu^2`
            (NaN or infinite only when an input is, or when it overflows).
        case: int32; 0 no update, 1 parabola minimum, 2 measuring step, 3 non-finite.
        clipped: bool; whether :math:`s_{max}` cut the step.
    """

    step: Any
    a: Any
    case: Any
    clipped: Any


def pal_case(l0: Any, l_mu: Any, b: Any, mu: float, alpha: float, s_max: float) -> PALCase:
    r"""PAL's case discrimination (Section 4.2 with the additions of Section 4.3).

    For the parabola :math:`\hat l(s) = a s^2 + b s + l_0` through :math:`l_0`,
    :math:`l'(0) = b` and :math:`l_\mu = \hat l(\mu)`:

    * case 1, :math:`a > 0` and :math:`b < 0`: :math:`s = \alpha\cdot(-b / 2a)`, the
      parabola's minimum times :math:`\alpha`;
    * case 2, :math:`a \le 0` and :math:`b < 0`: :math:`s = \mu`, the measured point
      (:math:`\alpha` is not applied);
    * case 0, :math:`b \ge 0`: :math:`s = 0`, no descent along the direction;
    * case 3, any input not finite: :math:`s = 0`.

    Then :math:`s \leftarrow \min(s, s_{max})`, after :math:`\alpha`.

    The function is pure and elementwise: the inputs are arrays of one namespace (any
    broadcastable shapes, real floating dtype); ``mu``, ``alpha`` and ``s_max`` are
    positive Python floats. It has no branches on data, so it never moves data to the
    host. The returned step is never NaN.

    To be robust for tiny and huge loss magnitudes, the inputs are first divided by the
    power of two :math:`m` within a factor 4 below :math:`\max(|l_0|, |l_\mu|, |b|)`. That
    division is exact, so no intermediate overflows, an exactly linear
    :math:`l_\mu = l_0 + b\mu` is recognised as such (case 2), scaling
    :math:`l_0, l_\mu, b` by a power of two leaves ``step`` bitwise unchanged, and
    scaling by any :math:`c > 0` changes it only by rounding.

    Example:
        >>> import array_api_compat.numpy as xp
        >>> r = pal_case(xp.asarray(1.0), xp.asarray(0.5), xp.asarray(-1.0),
        ...              mu=1.0, alpha=1.0, s_max=10.0)
        >>> float(r.a), float(r.step), int(r.case)   # l(s) = 0.5 s^2 - s + 1
        (0.5, 1.0, 1)
    """
    xp = backend.namespace(l0, l_mu, b)
    finite = xp.isfinite(l0) & xp.isfinite(l_mu) & xp.isfinite(b)
    return _pal_case(xp, l0, l_mu, b, mu, alpha, s_max, finite)


_TINY: dict[Any, tuple[float, float]] = {}


def _tiny(xp: Any, dtype: Any) -> tuple[float, float]:
    """``(smallest normal, its log2)`` of ``dtype`` (cached: ``finfo`` is slow)."""
    key = (xp.__name__, str(dtype))
    if key not in _TINY:
        tiny = float(xp.finfo(dtype).smallest_normal)
        _TINY[key] = (tiny, math.log2(tiny))
    return _TINY[key]


def _flush(xp: Any, host: bool, x: Any, tiny: float) -> Any:
    """``x`` with every entry of magnitude below ``tiny`` (a subnormal) made a zero of
    its sign: what a backend that flushes subnormals (FTZ/DAZ) computes.

    On NumPy (``host``) a 0-d ``x`` is read as a Python float (free on the host) and
    returned itself unless it is subnormal, so normal values cost no array operation.
    """
    if host and x.ndim == 0:
        v = float(x)
        return x if v == 0.0 or not abs(v) < tiny else x * 0.0
    return xp.where(xp.abs(x) < tiny, x * 0.0, x)


def _pal_case(xp: Any, l0: Any, l_mu: Any, b: Any, mu: float, alpha: float, s_max: float,
              finite: Any) -> PALCase:
    """:func:`pal_case` with the namespace and the finiteness of the inputs given."""
    host = backend.on_host(xp)
    tiny, e_min = _tiny(xp, l0.dtype)

    def ftz(x: Any) -> Any:
        return _flush(xp, host, x, tiny)

    # Subnormal inputs and intermediates count as zeros (see pal_case), so a backend that
    # flushes them (JAX on the CPU) decides every case as one that does not.
    l0, l_mu, b = ftz(l0), ftz(l_mu), ftz(b)
    m = xp.maximum(xp.maximum(xp.abs(l0), xp.abs(l_mu)), xp.abs(b))
    m = xp.where(finite & (m > 0), m, xp.ones_like(m))
    # A power of two in [m/4, m] (log2 may round up near 2^k, hence the -1), at least the
    # smallest normal number: dividing by it is exact and never overflows.
    m = 2.0 ** xp.maximum(xp.floor(xp.log2(m)) - 1.0, xp.full_like(m, e_min))
    l0n, lmun, bn = ftz(l0 / m), ftz(l_mu / m), ftz(b / m)
    # D = a * mu^2 / m; its sign is the sign of a.
    dn = ftz(ftz(lmun - l0n) - ftz(bn * mu))
    a = ftz(dn * ftz(m / (mu * mu)))
    descent = finite & (b < 0)  # b itself: b/m may underflow to 0
    case1 = descent & (dn > 0)
    case2 = descent & (dn <= 0)
    one = xp.ones_like(dn)
    s1 = ftz(ftz((alpha * mu * mu) * (-bn)) / (2.0 * xp.where(case1, dn, one)))
    zero = xp.zeros_like(s1)
    s_raw = xp.where(case1, s1, xp.where(case2, mu * one, zero))
    clipped = s_raw > s_max
    step = xp.where(clipped, s_max * one, s_raw)
    i32 = xp.int32
    case = (
        xp.astype(case1, i32) + 2 * xp.astype(case2, i32) + 3 * xp.astype(~finite, i32)
    )
    return PALCase(step=step, a=a, case=case, clipped=clipped)


class PALState(NamedTuple):
    """PAL's state.

    Attributes:
        buf: the direction state :math:`\\mathrm{buf}` (the search direction is
            :math:`-\\mathrm{buf}`), zeros at the start.
        prev_grad: :math:`g_{t-1}` for the conjugate-gradient formulas (zeros at the
            start); ``None`` when ``beta`` is a constant, which needs no extra vector.
    """

    buf: Any
    prev_grad: Any


class PALInfo(NamedTuple):
    """The record of one PAL step; numeric fields are 0-d arrays on the device.

    Attributes:
        l0: the batch loss at :math:`\\theta` (also available as ``loss``).
        l_mu: the batch loss at the measuring point :math:`\\theta + \\mu\\hat d`.
        a: the parabola's leading coefficient.
        b: the directional derivative :math:`l'(0)` along :math:`\\hat d`.
        step: the update step :math:`s` along the unit direction (0 if not moved).
        lr: the learning rate :math:`s/\\lVert d\\rVert` (Section 5.1).
        case: int32; 0 no update, 1 parabola minimum, 2 measuring step, 3 non-finite
            (see :data:`CASE_NAMES`).
        clipped: bool; :math:`s_{max}` cut the step.
        beta: the :math:`\\beta_t` used for the direction.
        nonfinite: bool; ``case == 3``.
        n_fun: loss evaluations (2: :math:`l_0` and :math:`l_\\mu`).
        n_grad: gradient evaluations (1).
    """

    l0: Any
    l_mu: Any
    a: Any
    b: Any
    step: Any
    lr: Any
    case: Any
    clipped: Any
    beta: Any
    nonfinite: Any
    n_fun: int
    n_grad: int

    @property
    def loss(self) -> Any:
        """The batch loss at the start of the step (:math:`l_0`)."""
        return self.l0


def _check_beta(beta: Any) -> float | str:
    if isinstance(beta, str):
        key = _ALIASES.get(beta.lower(), beta.lower())
        if key not in CONJUGATE_FORMULAS:
            raise ValueError(
                f"beta: must be a float in [0, 1] or one of {CONJUGATE_FORMULAS} "
                f"(or {sorted(_ALIASES)}), got {beta!r}"
            )
        return key
    return check_in_range("beta", beta, 0.0, 1.0)


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
        s_max: maximum step :math:`s_{max} > 0` along the unit direction.
        eps: the direction norm used when it is zero.
        on_nonfinite: ``"flag"`` (default: leave :math:`\theta` unchanged and report
            case 3) or ``"raise"`` (raise :class:`~paltest.NonFiniteError`; costs one
            device-to-host transfer per step).

    Defaults are those of the authors' PyTorch class: :math:`\mu = 1`,
    :math:`\alpha = 1/0.6`, :math:`\beta = 0.4`, :math:`s_{max} = 10^{0.5}`.

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
    """

    def __init__(
        self,
        mu: float = 1.0,
        alpha: float = 1.0 / 0.6,
        beta: float | str = 0.4,
        s_max: float = 10.0**0.5,
        eps: float = 1e-10,
        on_nonfinite: str = "flag",
    ) -> None:
        self.mu = check_positive("mu", mu)
        self.alpha = check_positive("alpha", alpha)
        self.beta = _check_beta(beta)
        self.s_max = check_positive("s_max", s_max)
        self.eps = check_positive("eps", eps)
        self.on_nonfinite = check_on_nonfinite(on_nonfinite)

    def __repr__(self) -> str:
        return (
            f"PAL(mu={self.mu!r}, alpha={self.alpha!r}, beta={self.beta!r}, "
            f"s_max={self.s_max!r}, eps={self.eps!r}, on_nonfinite={self.on_nonfinite!r})"
        )

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The hyperparameters as a dict (for result files)."""
        return {"mu": self.mu, "alpha": self.alpha, "beta": self.beta,
                "s_max": self.s_max, "eps": self.eps}

    def init(self, theta: Any) -> PALState:
        """The initial state: a zero direction state (and a zero previous gradient)."""
        xp = backend.check_params(theta)
        buf = xp.zeros_like(theta)
        prev = xp.zeros_like(theta) if isinstance(self.beta, str) else None
        return PALState(buf=buf, prev_grad=prev)

    def _beta(self, xp: Any, g: Any, state: PALState) -> Any:
        """:math:`\\beta_t` as a 0-d array (or a Python float for a constant)."""
        if not isinstance(self.beta, str):
            return self.beta
        g_prev, buf_prev = state.prev_grad, state.buf
        if self.beta in ("polak-ribiere", "hestenes-stiefel"):
            num = xp.vecdot(g, g - g_prev)
        else:
            num = xp.vecdot(g, g)
        if self.beta in ("fletcher-reeves", "polak-ribiere"):
            den = xp.vecdot(g_prev, g_prev)
        else:
            den = -xp.vecdot(buf_prev, g - g_prev)  # d_{t-1} . y
        ok = den > 0
        beta = num / xp.where(ok, den, xp.ones_like(den))
        ok = ok & xp.isfinite(beta)
        return xp.where(ok, beta, xp.zeros_like(beta))

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

        # Vector work: the direction (one pass, or none when beta == 0), its norm and
        # the dot product (one pass each), the measuring point and the update (one
        # multiply-add each, written in place into a fresh array), and two selections
        # (:func:`select`: no pass at all on NumPy).
        # ``buf * (-c)`` then ``+= theta`` is bitwise ``theta - c * buf`` (IEEE:
        # x - y == x + (-y), and rounding is symmetric in sign).
        beta = self._beta(xp, g, state)
        if isinstance(beta, float) and beta == 0.0:
            buf = g  # 0 * buf + g equals g (it may differ only in the sign of a zero)
        else:
            buf = state.buf * beta
            buf += g
        n = xp.linalg.vector_norm(buf)
        n = xp.where(n == 0, xp.full_like(n, self.eps), n)  # NaN stays NaN
        b = -xp.vecdot(g, buf) / n
        probe = buf * (-(self.mu / n))
        probe += theta
        l_mu = as_loss(value(probe), xp, theta)
        del probe

        # The case logic runs in the widest of the loss and parameter dtypes.
        ct = xp.result_type(l0.dtype, l_mu.dtype, theta.dtype)
        l0c, lmuc, bc = (xp.astype(v, ct, copy=False) for v in (l0, l_mu, b))
        n_ok = xp.isfinite(n)  # a non-finite gradient, or a norm that overflowed
        bc = xp.where(n_ok, bc, xp.full_like(bc, float("nan")))
        finite = n_ok & xp.isfinite(l0c) & xp.isfinite(lmuc) & xp.isfinite(bc)
        if self.on_nonfinite == "raise":
            raise_if_nonfinite(finite, "loss, gradient or measured loss")
        res = _pal_case(xp, l0c, lmuc, bc, self.mu, self.alpha, self.s_max, finite)
        step = xp.astype(res.step, theta.dtype, copy=False)
        moved = res.step > 0
        lr = xp.where(moved, step / n, xp.zeros_like(step))
        update = buf * (-lr)
        update += theta
        theta_next = select(xp, moved, update, theta)
        del update

        new_buf = select(xp, finite, buf, state.buf)
        new_prev = None if state.prev_grad is None else select(xp, finite, g, state.prev_grad)
        beta_rec = beta if not isinstance(beta, float) else xp.full_like(n, beta)
        info = PALInfo(
            l0=l0, l_mu=l_mu, a=res.a, b=b, step=step, lr=lr, case=res.case,
            clipped=res.clipped, beta=beta_rec, nonfinite=~finite, n_fun=2, n_grad=1,
        )
        return theta_next, PALState(buf=new_buf, prev_grad=new_prev), info
