r"""PAL as an optax transformation on pytrees: :func:`pal`.

JAX models hold their parameters as pytrees (nested dicts of arrays in Flax, Equinox,
Haiku). :func:`pal` runs PAL's step on them as an
``optax.GradientTransformationExtraArgs`` that follows the convention of optax's own
line searches (``optax.scale_by_backtracking_linesearch``,
``optax.scale_by_zoom_linesearch``)::

    updates, state = optimizer.update(grads, state, params, value=loss, grad=grads,
                                      value_fn=loss_fn, **extra_args)
    params = optax.apply_updates(params, updates)

``value`` is the batch loss at ``params`` and ``grad`` its gradient (what
``jax.value_and_grad(loss_fn)(params, **extra_args)`` returned); ``value_fn(params,
**extra_args)`` evaluates the same batch (and the same random numbers) at PAL's
measuring point, once per step. With :math:`g` the incoming ``updates`` (the gradient,
or what earlier members of an ``optax.chain`` made of it), one step is PAL's Algorithm 2
(:class:`paltest.PAL`):

.. math::

    \mathrm{buf} &\leftarrow \beta_t\,\mathrm{buf} + g,\quad n = \lVert\mathrm{buf}\rVert,
        \quad \hat d = -\mathrm{buf}/n,\quad b = \nabla L\cdot\hat d\\
    l_\mu &= \mathtt{value\_fn}(\theta + \mu\hat d),\quad
        a = (l_\mu - l_0 - b\mu)/\mu^2\\
    \mathtt{updates} &= s\,\hat d = (-s/n)\,\mathrm{buf},\quad s \text{ from PAL's cases}

computed by the very functions :class:`paltest.PAL` runs on device arrays
(:mod:`paltest.optimizers.pal_line`: the direction with its :math:`\beta` formulas, the
slope, the non-finite rule and the case logic), leaf by leaf: the norm and the dot
products sum over the leaves, and nothing is concatenated (XLA on the CPU compiled the
concatenation of a raveled pytree into loops 40 times slower than the leaves' own).
So ``optax.apply_updates`` gives the parameters ``paltest.PAL().step`` gives on the
raveled vector to rounding (the sums' order; bitwise for a single 1-D array, eagerly;
under ``jax.jit`` XLA may also reorder sums and fuse multiply-adds: see the tests'
derived bound). The slope :math:`b` uses ``grad`` (the true gradient) when given, so
PAL's parabola stays exact after a transformation that rescales the gradient (e.g.
``optax.clip_by_global_norm`` before ``pal``). A step that does not move (case 0 or a
non-finite loss or gradient) returns zero updates: the parameters are unchanged (a
parameter ``-0.0`` becomes ``+0.0``), and on a non-finite step the state keeps its
direction.

Pytrees: any pytree of floating arrays of one dtype (float32 or float64; mixed dtypes
are refused: run one ``pal`` per dtype with ``optax.partition``); ``jax.jit`` traces
the update once per tree structure, shapes and dtype; it runs under ``jax.lax.scan``
and ``jax.vmap`` (e.g. over seeds or starting points). Hyperparameters may be traced:
``optax.inject_hyperparams(pal)(mu=0.5)`` keeps them in the state, so a schedule or
a sweep over ``mu`` (or ``alpha``, ``beta``, ``s_max``) does not recompile.

PAL along another transformation's direction (the init2winit design, as
``paltest.PAL(direction=...)``): ``pal(direction=optax.adam(1.0))`` searches along the
base's updates :math:`u` (the updates it would add to the parameters, so
:math:`\hat d = u/\lVert u\rVert`; its learning rate only scales :math:`u` and drops
out), and the base's state advances exactly as in its own ``update`` (kept on a
non-finite step). A ``scale_by_*`` transformation without the learning rate's sign
points uphill: use e.g. ``optax.chain(optax.scale_by_adam(), optax.scale(-1.0))``.

The state carries no loss or gradient at the new parameters (PAL evaluates the gradient
only at the start of a step), so ``optax.value_and_grad_from_state`` does not apply:
use ``jax.value_and_grad``. Auxiliary outputs: with ``has_aux=True``, ``value_fn``
returns ``(loss, aux)`` (e.g. a model state) and the probe's ``aux`` is discarded,
since the step keeps the one of your own evaluation at ``params``.

Example:
    >>> import jax, jax.numpy as jnp, optax
    >>> from paltest.optax import pal
    >>> def loss_fn(params, x, y):
    ...     return jnp.mean((x @ params["w"] + params["b"] - y) ** 2)
    >>> x = jnp.linspace(-1.0, 1.0, 8)[:, None] * jnp.ones((1, 3))
    >>> y = x @ jnp.array([1.0, -2.0, 0.5]) + 0.3
    >>> params = {"w": jnp.zeros(3), "b": jnp.zeros(())}
    >>> opt = pal(mu=0.1, alpha=1.0, beta=0.0)
    >>> state = opt.init(params)
    >>> @jax.jit
    ... def train_step(params, state):
    ...     loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
    ...     updates, state = opt.update(grads, state, params, value=loss, grad=grads,
    ...                                 value_fn=loss_fn, x=x, y=y)
    ...     return optax.apply_updates(params, updates), state
    >>> for _ in range(30):
    ...     params, state = train_step(params, state)
    >>> bool(loss_fn(params, x, y) < 1e-3), int(state.count), int(state.info.case)
    (True, 30, 1)
"""

from __future__ import annotations

import inspect
import math
import operator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from paltest import backend
from paltest.optimizers.base import as_loss
from paltest.optimizers.pal import PAL
from paltest.optimizers.pal_line import measure, own_direction
from paltest.optimizers.pal_state import PALInfo, PALState
from paltest.optimizers.selection import select

__all__ = ["PALOptaxState", "TreeVectors", "pal"]


class PALOptaxState(NamedTuple):
    """The state of :func:`pal`.

    Attributes:
        buf: the direction state :math:`\\mathrm{buf}` (a pytree like the parameters;
            the search direction is :math:`-\\mathrm{buf}`), zeros at the start. Along
            a base transformation: the negated base updates of the last finite step.
        prev_grad: the previous incoming updates :math:`g_{t-1}` (a pytree) for the
            conjugate-gradient ``beta`` formulas, else ``None``.
        base: the base transformation's state (``direction=``), else ``None``.
        count: int32, the number of updates made.
        info: the last step's record, :class:`paltest.PALInfo` of 0-d arrays: ``l0``,
            ``l_mu``, ``a``, ``b``, ``step``, ``lr`` (:math:`s/n`), ``case`` (0 no
            update, 1 parabola minimum, 2 measuring step, 3 non-finite), ``clipped``,
            ``beta``, ``nonfinite``, and the evaluations ``n_fun`` (2: ``value`` and the
            probe) and ``n_grad`` (1); zeros before the first update. Floating fields
            are in the parameters' dtype.
    """

    buf: Any
    prev_grad: Any
    base: Any
    count: Any
    info: PALInfo


_leaves = jax.tree_util.tree_leaves
_map = jax.tree_util.tree_map


class TreeVectors:
    """PAL's vectors as pytrees of JAX arrays (the interface of
    :class:`paltest.optimizers.pal_line.FlatVectors`), leaf by leaf: the norm is the
    norm of the leaves' norms, the dot product the sum of the leaves' (in leaf order),
    ``x * c + y`` and the difference are elementwise. A single 1-D leaf takes the flat
    vector's own norm and dot product, bit for bit."""

    @staticmethod
    def norm(x: Any) -> Any:
        leaves = _leaves(x)
        if len(leaves) == 1 and leaves[0].ndim == 1:
            return jnp.linalg.vector_norm(leaves[0])
        return jnp.linalg.vector_norm(jnp.stack(
            [jnp.linalg.vector_norm(jnp.ravel(leaf)) for leaf in leaves]))

    @staticmethod
    def dot(x: Any, y: Any) -> Any:
        total = None
        for a, b in zip(_leaves(x), _leaves(y), strict=True):
            d = jnp.vecdot(jnp.ravel(a), jnp.ravel(b))
            total = d if total is None else total + d
        return total

    @staticmethod
    def axpy(x: Any, c: Any, y: Any) -> Any:
        return _map(lambda a, b: a * c + b, x, y)

    @staticmethod
    def sub(x: Any, y: Any) -> Any:
        return _map(operator.sub, x, y)

    @staticmethod
    def like(x: Any) -> Any:
        return _leaves(x)[0]


def _check_tree(tree: Any, name: str, like: Any = None) -> Any:
    """The dtype of ``tree``'s leaves: one floating dtype (float32 or float64), and the
    structure and shapes of ``like`` when given (errors name ``name``)."""
    leaves = _leaves(tree)
    if not leaves:
        raise ValueError(f"{name}: an empty pytree has nothing to optimize")
    if like is not None:
        want = jax.tree_util.tree_structure(like)
        if jax.tree_util.tree_structure(tree) != want or any(
                jnp.shape(a) != jnp.shape(b) for a, b in zip(leaves, _leaves(like),
                                                             strict=True)):
            raise ValueError(f"{name}: must be a pytree like params (structure {want} "
                             "and the same shapes)")
    dtypes = sorted({str(jnp.result_type(leaf)) for leaf in leaves})
    if len(dtypes) > 1:
        raise TypeError(
            f"{name}: pal needs every leaf in one floating dtype, got {dtypes}; cast the "
            "parameters to one dtype, or give each dtype its own pal with optax.partition")
    if dtypes[0] not in ("float32", "float64"):
        raise TypeError(f"{name}: dtype must be float32 or float64, got {dtypes[0]}")
    return jnp.result_type(leaves[0])


def _value_kwargs(value_fn: Any, extra_args: dict[str, Any]) -> dict[str, Any]:
    """The extra arguments ``value_fn`` takes (all of them if it takes ``**kwargs``);
    the others raise ``TypeError`` (as optax's line searches do)."""
    try:
        params = inspect.signature(value_fn).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: pass everything
        return extra_args
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return extra_args
    names = {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    unused = sorted(set(extra_args) - names)
    if unused:
        raise TypeError(f"pal.update: extra arguments {unused} are not arguments of "
                        "value_fn; pass only what value_fn(params, **extra_args) takes")
    return extra_args


def pal(mu: Any = 1.0, alpha: Any = 1.0 / 0.6, beta: Any = None, s_max: Any = 10.0**0.5,
        eps: Any = 1e-10, *, direction: Any = None,
        has_aux: bool = False) -> optax.GradientTransformationExtraArgs:
    r"""PAL (Mutschler & Zell, 2020) as an optax transformation (see the module
    docstring for the update rule, pytrees and composition).

    Args:
        mu, alpha, beta, s_max, eps: as in :class:`paltest.PAL` (``beta``: a constant in
            [0, 1] or a conjugate-gradient formula's name; default 0.4); Python floats,
            or 0-d arrays (traced ones under ``jit``/``inject_hyperparams``, used
            in the parameters' dtype, their range unchecked).
        direction: ``None`` (PAL's own direction) or an optax
            ``GradientTransformation`` whose updates give the line (not with ``beta``).
        has_aux: ``value_fn`` returns ``(loss, aux)``; the probe's ``aux`` is dropped.

    Returns:
        ``optax.GradientTransformationExtraArgs`` with state :class:`PALOptaxState`;
        ``update(updates, state, params, *, value, grad=None, value_fn,
        **extra_args)``.
    """
    checked = PAL(mu=mu, alpha=alpha, beta=beta if direction is None else None,
                  s_max=s_max, eps=eps)
    if direction is not None:
        if beta is not None:
            raise ValueError("beta: PAL's own direction adaptation is not used with "
                             "direction=...; leave beta unset")
        if not (callable(getattr(direction, "init", None))
                and callable(getattr(direction, "update", None))):
            raise TypeError(
                "direction: must be an optax GradientTransformation (e.g. optax.adam(1.0),"
                f" optax.sgd(1.0, momentum=0.9)), got {type(direction).__name__}")
        direction = optax.with_extra_args_support(direction)
    conjugate = isinstance(checked.beta, str)
    has_aux = bool(has_aux)

    def init_fn(params: Any) -> PALOptaxState:
        dtype = _check_tree(params, "params")
        zeros = _map(jnp.zeros_like, params)
        z = jnp.zeros((), dtype)
        no, i32 = jnp.asarray(False), jnp.int32
        info = PALInfo(l0=z, l_mu=z, a=z, b=z, step=z, lr=z, case=jnp.zeros((), i32),
                       clipped=no, beta=z, nonfinite=no, n_fun=jnp.zeros((), i32),
                       n_grad=jnp.zeros((), i32))
        return PALOptaxState(
            buf=zeros, prev_grad=zeros if conjugate else None,
            base=None if direction is None else direction.init(params),
            count=jnp.zeros((), i32), info=info)

    def update_fn(updates: Any, state: PALOptaxState, params: Any = None, *,
                  value: Any = None, grad: Any = None, value_fn: Any = None,
                  **extra_args: Any) -> tuple[Any, PALOptaxState]:
        for name, arg in (("params", params), ("value", value), ("value_fn", value_fn)):
            if arg is None:
                raise ValueError(
                    f"{name}: pal.update needs params, value (the loss at params) and "
                    "value_fn (the loss on the same batch), as optax's line searches do")
        if not isinstance(state, PALOptaxState):
            raise TypeError(f"state: expected the PALOptaxState of pal().init, got "
                            f"{type(state).__name__}")
        dt = _check_tree(params, "params")
        _check_tree(updates, "updates", params)
        if grad is not None:
            _check_tree(grad, "grad", params)
        g_in, g = updates, updates if grad is None else grad
        fn_kwargs = _value_kwargs(value_fn, extra_args)
        xp = backend.namespace(TreeVectors.like(params))
        mu_, alpha_, s_max_, eps_, formula = checked.line_hyperparameters(xp, dt)

        def value_at(probe: Any) -> Any:
            out = value_fn(probe, **fn_kwargs)
            if has_aux:
                return out[0]
            if isinstance(out, (tuple, list)):
                raise TypeError(
                    "value_fn: returned a tuple; if it returns (loss, aux), e.g. a model "
                    "state, pass has_aux=True to pal (the probe's aux is discarded)")
            return out

        base_next = None
        if direction is None:
            buf, beta_t = own_direction(formula, xp, g_in,
                                        PALState(buf=state.buf, prev_grad=state.prev_grad),
                                        TreeVectors)
        else:
            base_updates, base_next = direction.update(
                updates, state.base, params, value=value, grad=grad, value_fn=value_fn,
                **extra_args)
            buf, beta_t = _map(jnp.negative, base_updates), math.nan
        l0 = as_loss(value, xp, TreeVectors.like(params))
        line = measure(xp, params, buf, g, l0, value_at, mu_, alpha_, s_max_, eps_, "flag",
                       TreeVectors)
        finite, moved, lr = line.finite, line.moved, line.lr
        delta = _map(lambda b: jnp.where(moved, b * (-lr), jnp.zeros_like(b)), buf)

        def keep(new: Any, old: Any) -> Any:  # the old state on a non-finite step
            return _map(lambda n, o: select(xp, finite, n, o), new, old)

        i32 = jnp.int32
        info = PALInfo(  # in the parameters' dtype, so a scan's carry keeps its type
            l0=l0.astype(dt), l_mu=line.l_mu.astype(dt), a=line.a.astype(dt),
            b=line.b.astype(dt), step=line.step, lr=lr, case=line.case,
            clipped=line.clipped, beta=jnp.asarray(beta_t, dtype=dt), nonfinite=~finite,
            n_fun=jnp.asarray(2, i32), n_grad=jnp.asarray(1, i32))
        new_state = PALOptaxState(
            buf=keep(buf, state.buf),
            prev_grad=None if state.prev_grad is None else keep(g_in, state.prev_grad),
            base=None if base_next is None else keep(base_next, state.base),
            count=state.count + 1, info=info)
        return delta, new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
