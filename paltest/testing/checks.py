r"""``check_optimizer``: property tests of the optimizer protocol's invariants.

Each check draws SPD quadratics (:func:`~paltest.testing.strategies.spd_quadratics`),
a start :math:`\theta` and 0 to 2 warm-up steps (so the state is not only the initial
one), then tests one step ``opt.step(theta, state, value_and_grad, value)``:

``"nonfinite"``
    with a NaN or infinite loss or gradient entry, :math:`\theta` comes back bitwise
    unchanged, ``info.nonfinite`` is true and no finite state array becomes non-finite;
    an optimizer built with ``on_nonfinite="raise"`` raises instead: skip this check;
``"preserves"``
    the returned :math:`\theta` and state arrays keep namespace, device, dtype and shape;
``"no_mutation"``
    the input :math:`\theta` and state arrays are bitwise unchanged after the step;
``"deterministic"``
    the same step twice, and on a fresh optimizer, gives bitwise the same outputs;
``"descent"``
    (line searches that promise descent: ``is_line_search = True`` on the class and no
    ``no_descent`` reason, or ``line_search=True``)
    :math:`f(\theta_{t+1}) \le f(\theta_t) + \tau` with the
    rounding bound :math:`\tau = 8\,n\,\epsilon\,\lambda_{max}(\|\theta_t-\theta^*\|^2 +
    \|\theta_{t+1}-\theta^*\|^2)`;
``"counts"``
    ``info.n_fun`` and ``info.n_grad`` equal the calls made (``value_and_grad`` counts
    one loss and one gradient, ``value`` one loss).

A failing check raises ``AssertionError`` naming the check; Hypothesis shrinks and
prints the minimal example (``quadratic(n=..., condition=..., seed=...)``, the start).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from paltest import backend
from paltest.testing._hyp import hypothesis
from paltest.testing.strategies import arrays, spd_quadratics

__all__ = ["CHECKS", "check_optimizer"]

#: The checks, in the order they run.
CHECKS = ("nonfinite", "preserves", "no_mutation", "deterministic", "descent", "counts")

_BAD = ("loss_nan", "loss_inf", "grad_nan", "grad_inf")


def _host(x: Any) -> np.ndarray:
    """A host copy of an array or Python number (never a view of the input)."""
    return np.array(backend.to_host(x), copy=True)


def _arrays_of(tree: Any) -> list[tuple[str, Any]]:
    """The ``(name, array)`` fields of a state NamedTuple (or tuple) that are arrays,
    nested states included (``"base.m"``: e.g. PAL's ``base``, another optimizer's
    state)."""
    if tree is None:
        return []
    names = getattr(tree, "_fields", None) or [str(i) for i in range(len(tree))]
    out = []
    for name, v in zip(names, tree, strict=True):
        if hasattr(v, "shape") and hasattr(v, "dtype"):
            out.append((name, v))
        elif isinstance(v, tuple):
            out.extend((f"{name}.{k}", a) for k, a in _arrays_of(v))
    return out


def _bits(x: Any) -> bytes:
    h = _host(x)
    return h.dtype.str.encode() + str(h.shape).encode() + h.tobytes()


def _snapshot(theta: Any, state: Any) -> list[tuple[str, bytes]]:
    return [("theta", _bits(theta))] + [(f"state.{k}", _bits(v)) for k, v in _arrays_of(state)]


def _info_bits(info: Any) -> list[tuple[str, bytes]]:
    names = getattr(info, "_fields", None) or [str(i) for i in range(len(info))]
    out = []
    for k, v in zip(names, info, strict=True):
        try:
            out.append((f"info.{k}", _bits(v)))
        except (TypeError, ValueError):
            out.append((f"info.{k}", repr(v).encode()))
    return out


def _fail(check: str, message: str) -> AssertionError:
    return AssertionError(f"check_optimizer: check {check!r} failed: {message}")


class _Counted:
    """``value_and_grad`` and ``value`` that count their calls."""

    def __init__(self, vg: Callable, v: Callable) -> None:
        self.n_vg = self.n_v = 0
        self._vg, self._v = vg, v

    def value_and_grad(self, theta: Any) -> Any:
        self.n_vg += 1
        return self._vg(theta)

    def value(self, theta: Any) -> Any:
        self.n_v += 1
        return self._v(theta)


def _poisoned(q: Any, xp: Any, dtype: str, kind: str, index: int) -> tuple[Callable, Callable]:
    """``value_and_grad`` / ``value`` whose loss or one gradient entry is NaN or inf."""
    bad = float("nan") if kind.endswith("nan") else float("inf")

    def value(theta: Any) -> Any:
        loss = q.value(theta)
        return loss + bad if kind.startswith("loss") else loss

    def value_and_grad(theta: Any) -> Any:
        loss, g = q.value_and_grad(theta)
        if kind.startswith("loss"):
            return loss + bad, g
        mask = np.zeros(g.shape[0], dtype=bool)
        mask[index % g.shape[0]] = True
        poison = backend.from_host(np.where(mask, bad, 0.0), xp, dtype=dtype)
        return loss, g + poison  # x + inf = inf, x + nan = nan; no in-place write

    return value_and_grad, value


def _meta(x: Any) -> tuple:
    return (
        backend.namespace(x).__name__,
        str(x.dtype),
        tuple(x.shape),
        str(backend.device(x)),
    )


def _run_check(
    name: str,
    make: Callable,
    xp: Any,
    dtype: str,
    q: Any,
    theta: Any,
    warm: int,
    kind: str,
    index: int,
) -> None:
    opt = make()
    state = opt.init(theta)
    for _ in range(warm):
        theta, state, _ = opt.step(theta, state, q.value_and_grad, q.value)
    if name == "nonfinite":
        vg, v = _poisoned(q, xp, dtype, kind, index)
        before = _bits(theta)
        finite = {
            k: bool(np.all(np.isfinite(_host(s))))
            for k, s in _arrays_of(state)
            if xp.isdtype(s.dtype, "real floating")
        }
        with np.errstate(all="ignore"):  # NumPy warns on the NaN/inf arithmetic
            theta1, state1, info = opt.step(theta, state, vg, v)
        if _bits(theta1) != before:
            raise _fail(
                name,
                f"theta changed on a step with a {kind} (it must come back bitwise unchanged)",
            )
        if not bool(_host(info.nonfinite)):
            raise _fail(name, f"info.nonfinite is false on a step with a {kind}")
        for k, s in _arrays_of(state1):
            if finite.get(k) and not np.all(np.isfinite(_host(s))):
                raise _fail(name, f"state.{k} became non-finite on a step with a {kind}")
        return
    counted = _Counted(q.value_and_grad, q.value)
    before = _snapshot(theta, state)
    metas = {"theta": _meta(theta)} | {f"state.{k}": _meta(s) for k, s in _arrays_of(state)}
    theta1, state1, info = opt.step(theta, state, counted.value_and_grad, counted.value)
    if name == "preserves":
        after = {"theta": theta1} | {f"state.{k}": s for k, s in _arrays_of(state1)}
        for key, meta in metas.items():
            if key not in after:
                raise _fail(name, f"{key} is no longer an array")
            got = _meta(after[key])
            if got != meta:
                raise _fail(
                    name, f"{key}: (namespace, dtype, shape, device) {meta} became {got}"
                )
    elif name == "no_mutation":
        for (key, b0), (_, b1) in zip(before, _snapshot(theta, state), strict=True):
            if b0 != b1:
                raise _fail(name, f"the input {key} was modified in place by step")
    elif name == "deterministic":
        out = _snapshot(theta1, state1) + _info_bits(info)
        for label, o in (("the same optimizer", opt), ("a fresh optimizer", None)):
            if o is None:
                o = make()
            t2, s2, i2 = o.step(theta, state, q.value_and_grad, q.value)
            for (key, b0), (_, b1) in zip(
                out, _snapshot(t2, s2) + _info_bits(i2), strict=True
            ):
                if b0 != b1:
                    raise _fail(name, f"{key} differs when {label} repeats the step")
    elif name == "descent":
        f0, f1 = float(_host(q.value(theta))), float(_host(q.value(theta1)))
        star = _host(q.minimiser).astype(np.float64)
        r2 = sum(
            float(np.sum((_host(t).astype(np.float64) - star) ** 2)) for t in (theta, theta1)
        )
        lam = float(np.linalg.eigvalsh(q.matrix)[-1])
        tol = 8 * star.size * float(np.finfo(dtype).eps) * lam * r2
        if not f1 <= f0 + tol:
            raise _fail(
                name,
                f"a line search increased the loss of a convex quadratic "
                f"from {f0!r} to {f1!r} (rounding bound {tol:.3g})",
            )
    elif name == "counts":
        n_fun, n_grad = int(_host(info.n_fun)), int(_host(info.n_grad))
        want = (counted.n_vg + counted.n_v, counted.n_vg)
        if (n_fun, n_grad) != want:
            raise _fail(
                name,
                f"info reports n_fun={n_fun}, n_grad={n_grad} but the step "
                f"called value_and_grad {counted.n_vg} and value "
                f"{counted.n_v} times (n_fun={want[0]}, n_grad={want[1]})",
            )


def _property(name: str, make: Callable, xp: Any, dtype: str) -> Callable:
    """The test function of check ``name``, for ``hypothesis.given``."""

    def check(case: tuple, warm: int, kind: str, index: int) -> None:
        _run_check(name, make, xp, dtype, *case, warm, kind, index)

    check.__name__ = check.__qualname__ = f"check_{name}"
    return check


def _selected(checks: Any, skip: Any) -> list[str]:
    for arg, val in (("checks", checks), ("skip", skip)):
        if val is None:
            continue
        if isinstance(val, (str, bytes)) or not isinstance(val, (list, tuple, set, frozenset)) \
                or not all(isinstance(c, str) for c in val):
            raise TypeError(f"{arg}: must be a sequence of check names, got {val!r}")
        unknown = sorted(set(val) - set(CHECKS))
        if unknown:
            raise ValueError(f"{arg}: unknown check(s) {unknown}; choose from {CHECKS}")
    chosen = CHECKS if checks is None else tuple(checks)
    return [c for c in CHECKS if c in chosen and c not in set(skip)]


def check_optimizer(
    make_optimizer: Callable[[], Any],
    *,
    xp: Any = "numpy",
    dtype: str = "float64",
    checks: Any = None,
    skip: Any = (),
    max_examples: int = 20,
    line_search: bool | None = None,
    n: Any = None,
    condition: Any = None,
) -> dict[str, str]:
    """Property-test an optimizer factory against the protocol's invariants.

    Args:
        make_optimizer: a callable with no arguments returning a fresh optimizer
            (``init(theta)``, ``step(theta, state, value_and_grad, value)``).
        xp: the namespace under test, or its name (``"numpy"``, ``"array_api_strict"``).
        dtype: ``"float32"`` or ``"float64"``.
        checks: the names of the checks to run (default: all of :data:`CHECKS`).
        skip: names of checks not to run.
        max_examples: Hypothesis examples per check; the other settings (e.g.
            ``derandomize``) come from the active Hypothesis profile, without deadline.
        line_search: whether ``"descent"`` applies (a bool); ``None`` reads the class:
            a line search (``is_line_search``) that does not say why it may not descend
            (a ``no_descent`` reason, e.g. :class:`~paltest.optimizers.sls_variants.SLSPolyak`,
            whose momentum is added after its search); otherwise the check is reported
            as skipped, with the reason.
        n, condition: the dimension and condition number of the quadratics (values or
            strategies, see :func:`~paltest.testing.strategies.spd_quadratics`).

    Returns:
        ``{check: "passed" or "skipped: why"}`` for every selected check.

    Raises:
        AssertionError: naming the failing check; Hypothesis prints the minimal example.

    >>> from paltest.optimizers.sgd import SGD
    >>> check_optimizer(lambda: SGD(lr=0.1), max_examples=5)["counts"]
    'passed'
    """
    hyp, st = hypothesis()
    if not callable(make_optimizer):
        raise TypeError(
            "make_optimizer: must be a callable returning a fresh optimizer, "
            f"got {type(make_optimizer).__name__}"
        )
    if dtype not in backend.FLOAT_DTYPES:
        raise ValueError(f"dtype: must be one of {backend.FLOAT_DTYPES}, got {dtype!r}")
    if not isinstance(max_examples, int) or isinstance(max_examples, bool) or max_examples < 1:
        raise ValueError(f"max_examples: must be an int >= 1, got {max_examples!r}")
    space = backend.resolve_namespace(xp)
    names = _selected(checks, skip)
    if line_search is not None and not isinstance(line_search, bool):
        raise TypeError(f"line_search: expected True, False or None, got {line_search!r}")
    sample = make_optimizer()
    if isinstance(sample, type) or not (callable(getattr(sample, "init", None))
                                        and callable(getattr(sample, "step", None))):
        raise TypeError(
            "make_optimizer: must return an optimizer (an instance with init(theta) and "
            f"step(theta, state, value_and_grad, value)), got {sample!r}")
    why_not = "not a line search (is_line_search / line_search)"
    if line_search is None:
        kind = type(sample)
        line_search = bool(getattr(kind, "is_line_search", False))
        reason = getattr(kind, "no_descent", None)
        if line_search and reason:
            line_search, why_not = False, f"{kind.__name__} may not descend: {reason}"
    conf = hyp.settings(
        hyp.settings.default,
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=list(hyp.HealthCheck),
    )
    ns = n if n is not None else st.integers(1, 6)
    problems = spd_quadratics(space, dtype, n=ns, condition=condition)

    @st.composite
    def cases(draw: Any) -> tuple:
        q = draw(problems)
        theta = draw(arrays(space, dtype, q.matrix.shape[0]))
        return q, theta

    report = {}
    for name in names:
        if name == "descent" and not line_search:
            report[name] = f"skipped: {why_not}"
            continue

        run = conf(
            hyp.given(
                case=cases(),
                warm=st.integers(0, 2),
                kind=st.sampled_from(_BAD),
                index=st.integers(0, 5),
            )(_property(name, make_optimizer, space, dtype))
        )
        run()
        report[name] = "passed"
    return report
