r"""PAL as a ``torch.optim.Optimizer``: :class:`PAL`.

``paltest.torch.PAL(model.parameters())`` trains any ``nn.Module`` with
``opt.step(closure)``, as with any PyTorch optimizer. Every parameter that has a
gradient after the closure joins one line (a joint line search over all of them), and
the step is :class:`paltest.PAL`'s own code on the concatenated vector: its direction
with the :math:`\beta` formulas (or another optimizer's direction), the non-finite rule
and the case logic; on the CPU it runs PAL's NumPy evaluator on a view of that vector,
on a GPU its branch-free device evaluator (no host synchronization inside ``step``).
So the steps are bitwise those of ``paltest.PAL().step`` on the flattened problem
(on the CPU, on NumPy).

One step, with the closure evaluating the batch loss :math:`L` (Algorithm 2):

.. math::

    l_0,\ g = L(\theta),\ \nabla L(\theta);\quad
    \mathrm{buf} \leftarrow \beta\,\mathrm{buf} + g;\quad \hat d = -\mathrm{buf}/\lVert
    \mathrm{buf}\rVert;\quad l_\mu = L(\theta + \mu\hat d);\quad
    \theta \leftarrow \theta + s\,\hat d

with :math:`s` from the parabola through :math:`l_0`, :math:`l'(0) = g\cdot\hat d` and
:math:`l_\mu` (see :func:`paltest.pal_case`).

The closure. The usual PyTorch closure (``zero_grad``, forward, ``backward()``, return
the loss; what Lightning and most training loops pass) works as it is: PAL calls it
twice per step, so a step costs two forward and two backward passes (the second
backward's gradient is discarded). A closure with a ``backward`` keyword (the authors'
``closure(backward: bool)``) is called with ``backward=False`` at the measuring point,
under ``torch.no_grad()``, and must then skip ``backward()``: two forward passes and
one backward. A closure may return ``(loss, *outputs)``; ``step`` returns what the
first call returned. After a step ``.grad`` holds the batch gradient at the start
point (neither the probe's nor the direction).

Both evaluations of a step draw the same random numbers (dropout masks): the default
CPU generator and, for parameters on a GPU, that device's generator are set back to
their state before the first call for the second one, and left where one forward pass
leaves them. Modules that keep statistics (BatchNorm's running mean and variance and
``num_batches_tracked``) would advance twice per step; pass ``module=model`` and
their buffers are saved before the second evaluation and restored after it, so they
advance once per step, by the first evaluation.

Parameter groups. ``param_groups`` exist (schedulers, ``add_param_group``,
``state_dict``); PAL's line-wide hyperparameters live in every group:
``"lr"`` is the measuring step :math:`\mu` (so ``torch.optim.lr_scheduler`` schedules
:math:`\mu`), and ``"alpha"``, ``"beta"``, ``"s_max"``, ``"eps"``. One line has one
value of each: groups with different values raise ``ValueError`` naming the key (when
the group is added, and at ``step``). Parameters without ``.grad`` after the closure
(frozen ones, or unused in that batch) are left out of the line and untouched.

State. ``state[p]`` holds ``p``'s slice of PAL's state (``"buf"``; ``"prev_grad"``
for the conjugate formulas; ``"base.<field>"`` along another optimizer), so
``state_dict()``/``load_state_dict()`` checkpoint it: a run saved, loaded into a fresh
optimizer and resumed is bitwise the uninterrupted run. :attr:`PAL.info` is the last
step's record (:class:`paltest.PALInfo`: ``loss``, ``l_mu``, ``a``, ``b``, ``step``,
``lr`` :math:`=s/\lVert\mathrm{buf}\rVert`, ``case``, ``n_fun``, ...) as 0-d tensors,
read without a synchronization; :meth:`PAL.read_info` returns it as Python numbers.

Precision: parameters in float32 or float64 (one dtype, one device). Half-precision
parameters raise ``TypeError``: keep float32 parameters and run the forward pass under
``torch.autocast`` (mixed precision), which works as it is.

Differences from the authors' ``PalOptimizer``: every parameter group is stepped (one
line), a non-finite loss or gradient leaves the parameters unchanged instead of at the
probe point, hyperparameters are Python floats (the authors store float32 tensors),
``.grad`` keeps the gradient, CPU-only PyTorch works, ``step`` returns the closure's
value, and ``s_max`` defaults to the paper's :math:`10^{0.5}` (the class's 3.16).

Example:
    >>> import torch
    >>> from paltest.torch import PAL
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(),
    ...                             torch.nn.Linear(8, 1)).double()
    >>> x = torch.randn(32, 4, dtype=torch.float64)
    >>> y = x.sum(dim=1, keepdim=True)
    >>> opt = PAL(model.parameters(), mu=0.1)
    >>> def closure():
    ...     opt.zero_grad()
    ...     loss = torch.nn.functional.mse_loss(model(x), y)
    ...     loss.backward()
    ...     return loss
    >>> first = opt.step(closure).item()
    >>> for _ in range(50):
    ...     loss = opt.step(closure)
    >>> loss.item() < 0.1 * first, opt.read_info()["n_fun"]
    (True, 2)
"""

from __future__ import annotations

import inspect
import weakref
from typing import Any

import numpy as np
import torch

from paltest.optimizers.pal import PAL as _CorePAL
from paltest.optimizers.pal_state import PALInfo, PALState

__all__ = ["PAL"]

#: PAL's line-wide hyperparameters, by their key in a parameter group.
LINE_KEYS = ("lr", "alpha", "beta", "s_max", "eps")
#: Set to False to run the device evaluator on CPU tensors too (tests of the GPU path).
HOST_PATH = True
_FLOAT = (torch.float32, torch.float64)


def _takes_backward(closure: Any) -> bool:
    """Whether ``closure`` accepts a ``backward`` keyword (the authors' protocol)."""
    try:
        params = inspect.signature(closure).parameters
    except (TypeError, ValueError):
        return False
    p = params.get("backward")
    return p is not None and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)


def _loss_of(out: Any) -> torch.Tensor:
    """The loss a closure returned (its first item when it returned a tuple)."""
    loss = out[0] if isinstance(out, (tuple, list)) else out
    if not isinstance(loss, torch.Tensor):
        loss = torch.as_tensor(loss, dtype=torch.float64)
    return loss.detach()


class _Random:
    """The default generators a step touches: the CPU's and the parameters' GPU's."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device if device.type == "cuda" else None

    def get(self) -> tuple[Any, Any]:
        cuda = None if self.cuda is None else torch.cuda.get_rng_state(self.cuda)
        return torch.get_rng_state(), cuda

    def set(self, states: tuple[Any, Any]) -> None:
        torch.set_rng_state(states[0])
        if self.cuda is not None:
            torch.cuda.set_rng_state(states[1], self.cuda)


def _leaves(state: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """``(dotted name, array)`` for every array of a (nested) NamedTuple state."""
    out = []
    for name, value in zip(state._fields, state, strict=True):
        if value is None:
            continue
        if hasattr(value, "_fields"):
            out += _leaves(value, f"{prefix}{name}.")
        else:
            out.append((f"{prefix}{name}", value))
    return out


def _rebuild(template: Any, values: dict[str, Any], prefix: str = "") -> Any:
    """``template`` (a nested NamedTuple) with its arrays replaced from ``values``."""
    fields = []
    for name, value in zip(template._fields, template, strict=True):
        if value is None:
            fields.append(None)
        elif hasattr(value, "_fields"):
            fields.append(_rebuild(value, values, f"{prefix}{name}."))
        else:
            fields.append(values[f"{prefix}{name}"])
    return type(template)(*fields)


class PAL(torch.optim.Optimizer):
    """PAL, Algorithm 2 with all additions, for a module's parameters (see the module
    docstring for the closure, the random numbers, groups and state).

    Args:
        params: an iterable of tensors or of parameter-group dicts.
        mu: the measuring step :math:`\\mu > 0` (the groups' ``"lr"``).
        alpha, beta, s_max, eps, on_nonfinite, direction: as in :class:`paltest.PAL`
            (``direction``: ``"sgd"``, ``"adam"``, ``"rmsprop"`` or such an optimizer of
            paltest; ``beta`` then stays unset).
        module: a module whose buffers the second evaluation of a step must not change
            (BatchNorm statistics); held by a weak reference.
    """

    def __init__(self, params: Any, mu: float = 1.0, alpha: float = 1.0 / 0.6,
                 beta: Any = None, s_max: float = 10.0**0.5, eps: float = 1e-10, *,
                 on_nonfinite: str = "flag", direction: Any = None,
                 module: torch.nn.Module | None = None) -> None:
        core = _CorePAL(mu=mu, alpha=alpha, beta=beta, s_max=s_max, eps=eps,
                        on_nonfinite=on_nonfinite, direction=direction)
        self._base = core.direction
        self.on_nonfinite = core.on_nonfinite
        self._module = None if module is None else weakref.ref(module)
        self._cores: dict[tuple, _CorePAL] = {}
        self._flat: dict[str, Any] = {}
        self._info: PALInfo | None = None
        defaults = {"lr": core.mu, "alpha": core.alpha, "beta": core.beta,
                    "s_max": core.s_max, "eps": core.eps}
        super().__init__(params, defaults)

    def __getstate__(self) -> dict[str, Any]:
        """torch.optim's pickled state, with the non-finite rule and the direction; the
        ``module`` (a weak reference) is not pickled: pass it to the copy again."""
        return {**super().__getstate__(), "on_nonfinite": self.on_nonfinite,
                "_base": self._base}

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._module, self._cores, self._flat, self._info = None, {}, {}, None

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """``torch.optim.Optimizer.add_param_group``; a group whose line-wide
        hyperparameters differ from the existing groups' raises ``ValueError``."""
        super().add_param_group(param_group)
        self._line_values()

    def _line_values(self) -> tuple:
        """The groups' common values of :data:`LINE_KEYS` (``ValueError`` naming a key on
        which they differ)."""
        first = self.param_groups[0]
        for i, group in enumerate(self.param_groups[1:], start=1):
            for key in LINE_KEYS:
                if group[key] != first[key]:
                    raise ValueError(
                        f"{key}: PAL makes one line search over all parameter groups, so "
                        f"{key!r} must be equal in every group; group 0 has "
                        f"{first[key]!r}, group {i} has {group[key]!r}")
        return tuple(first[key] for key in LINE_KEYS)

    def _core(self) -> _CorePAL:
        """:class:`paltest.PAL` with the groups' current values (cached)."""
        values = self._line_values()
        core = self._cores.get(values)
        if core is None:
            mu, alpha, beta, s_max, eps = values
            try:
                core = _CorePAL(mu=mu, alpha=alpha, beta=beta, s_max=s_max, eps=eps,
                                on_nonfinite=self.on_nonfinite, direction=self._base)
            except (TypeError, ValueError) as err:
                raise type(err)(f"param_groups: {err} (a group's 'lr' is PAL's mu)") from err
            self._cores = {values: core}
        return core

    @property
    def info(self) -> PALInfo | None:
        """The last step's record (:class:`paltest.PALInfo`) as 0-d tensors on the
        parameters' device (``None`` before the first step); no synchronization."""
        info = self._info
        if info is None or not isinstance(info.l0, np.ndarray):
            return info
        return PALInfo(*(torch.tensor(v) if isinstance(v, np.ndarray) else v
                         for v in info))

    def read_info(self) -> dict[str, Any]:
        """The last step's record as Python numbers (one device-to-host transfer):
        floats, the ``case`` as an int, ``clipped`` and ``nonfinite`` as bools, the
        evaluation counts as ints, and ``loss`` (= ``l0``)."""
        info = self.info
        if info is None:
            raise RuntimeError("read_info: no step has been made yet")
        values = torch.stack([v.to(torch.float64) for v in info[:10]]).tolist()
        out = dict(zip(PALInfo._fields[:10], values, strict=True))
        out["case"] = int(out["case"])
        out["clipped"], out["nonfinite"] = bool(out["clipped"]), bool(out["nonfinite"])
        out["n_fun"], out["n_grad"] = info.n_fun, info.n_grad
        out["loss"] = out["l0"]
        return out

    def _line(self) -> list[torch.Tensor]:
        """The parameters with a gradient, checked (one dtype and device, dense)."""
        line = [p for group in self.param_groups for p in group["params"]
                if p.grad is not None]
        if not line:
            raise RuntimeError("PAL.step: no parameter has a gradient after the closure; "
                               "the closure must call backward() on the loss")
        first = line[0]
        for p in line:
            if p.dtype not in _FLOAT:
                raise TypeError(
                    f"params: PAL computes its line in float32 or float64, got a {p.dtype} "
                    "parameter; keep float32 parameters and run the forward pass under "
                    "torch.autocast for mixed precision")
            if p.dtype != first.dtype or p.device != first.device:
                raise TypeError(
                    "params: every parameter of the line must share one dtype and device, "
                    f"got {first.dtype} on {first.device} and {p.dtype} on {p.device}")
            if p.grad.is_sparse:
                raise TypeError("params: PAL does not support sparse gradients")
        return line

    def _flat_state(self, core: _CorePAL, line: list[torch.Tensor], theta: Any,
                    host: bool) -> PALState:
        """PAL's state on the flat vector: the cached one when ``state[p]`` still holds
        its slices (no copy), else concatenated from ``state[p]`` (zeros where a
        parameter has none yet: PAL's initial state)."""
        key = (host, line[0].device, line[0].dtype, *(id(p) for p in line))
        cache = self._flat
        if cache.get("key") == key and all(
                self.state[p].get(name) is views[i]
                for name, views in cache["views"].items() for i, p in enumerate(line)):
            return cache["state"]
        template = core.init(theta)
        values = {}
        for name, init in _leaves(template):
            if init.ndim == 0:
                have = [self.state[p][name] for p in line if name in self.state[p]]
                if have:  # on the parameters' device and in their dtype (moved models)
                    t = have[0].to(device=line[0].device, dtype=line[0].dtype).reshape(())
                    values[name] = t.numpy() if host else t
                else:
                    values[name] = init
                continue
            parts = [self.state[p][name].to(device=p.device, dtype=p.dtype).reshape(-1)
                     if name in self.state[p]
                     else torch.zeros(p.numel(), dtype=p.dtype, device=p.device)
                     for p in line]
            flat = torch.cat(parts) if parts else None
            values[name] = flat.numpy() if host else flat
        return _rebuild(template, values)

    def _keep_state(self, line: list[torch.Tensor], state: PALState, host: bool) -> None:
        """``state[p]`` := ``p``'s slices of the flat ``state`` (views, no copy)."""
        sizes = [p.numel() for p in line]
        views = {}
        for name, value in _leaves(state):
            t = torch.from_numpy(np.asarray(value)) if host else value
            if t.ndim == 0:
                views[name] = [t] * len(line)
            else:
                views[name] = [v.view_as(p) for v, p in zip(t.split(sizes), line,
                                                            strict=True)]
            for p, v in zip(line, views[name], strict=True):
                self.state[p][name] = v
        self._flat = {"key": (host, line[0].device, line[0].dtype, *(id(p) for p in line)),
                      "state": state, "views": views}

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        """One PAL step; ``closure`` evaluates the batch loss (see the module docstring).
        Returns what the closure's first call returned."""
        if closure is None:
            raise RuntimeError(
                "PAL.step needs a closure: PAL evaluates the batch loss twice per step "
                "(opt.step(closure), with closure() = zero_grad, forward, backward, loss)")
        core = self._core()
        with_backward = _takes_backward(closure)
        first_param = next(p for g in self.param_groups for p in g["params"])
        rng = _Random(first_param.device)
        before = rng.get()
        with torch.enable_grad():
            out = closure(backward=True) if with_backward else closure()
        after = rng.get()
        line = self._line()
        sizes = [p.numel() for p in line]
        dtype = line[0].dtype
        host = HOST_PATH and line[0].device.type == "cpu"
        theta = torch.cat([p.detach().reshape(-1) for p in line])
        g = torch.cat([p.grad.reshape(-1) for p in line])
        l0 = _loss_of(out)
        if l0.dtype not in _FLOAT:
            l0 = l0.to(dtype)
        if host:
            theta, g, l0 = theta.numpy(), g.numpy(), l0.cpu().numpy()
        module = None if self._module is None else self._module()

        def write(vector: Any) -> None:
            t = torch.from_numpy(vector) if host else vector
            torch._foreach_copy_(line, [v.view_as(p) for v, p in
                                        zip(t.split(sizes), line, strict=True)])

        def value(probe: Any) -> Any:
            write(probe)
            params = [p for group in self.param_groups for p in group["params"]]
            grads = [p.grad for p in params]
            for p in params:
                p.grad = None
            saved = None if module is None else [b.clone() for b in module.buffers()]
            rng.set(before)
            try:
                if with_backward:
                    loss = _loss_of(closure(backward=False))
                else:
                    with torch.enable_grad():
                        loss = _loss_of(closure())
            finally:
                rng.set(after)
                for p, grad in zip(params, grads, strict=True):
                    p.grad = grad
                if saved is not None:
                    for b, s in zip(module.buffers(), saved, strict=True):
                        b.copy_(s)
            if loss.dtype not in _FLOAT:
                loss = loss.to(dtype)
            return loss.cpu().numpy() if host else loss

        state = self._flat_state(core, line, theta, host)
        try:
            theta_next, state, info = core.step(theta, state, lambda _: (l0, g), value)
        except BaseException:
            write(theta)  # the parameters leave the measuring point whatever happened
            raise
        write(theta_next)
        self._keep_state(line, state, host)
        self._info = info
        return out
