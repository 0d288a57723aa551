"""Registry of the optimizers: ``make(name, **hyperparameters)``, ``names()`` and the
hyperparameter record of an optimizer for result files.

Modules are imported only when an optimizer is asked for. Optimizers whose constructor
takes ``n_batches_per_epoch`` (the SLS family) get it from :func:`make` when it is given
(the runner always gives the true number); without it they use their own default (SLS:
500, see :data:`paltest.optimizers.sls.DEFAULT_N_BATCHES_PER_EPOCH`), so ``make("sls")``
works. The others never see it.

>>> from paltest.optimizers import registry
>>> opt = registry.make("pal", mu=0.1)
>>> registry.hyperparameters(opt)["mu"]
0.1
>>> registry.make("sls", n_batches_per_epoch=8).n_batches_per_epoch
8
>>> registry.make("sls").n_batches_per_epoch
500

PAL along another optimizer's direction (:mod:`paltest.optimizers.pal_direction`) has
the names ``pal-momentum`` (SGD, ``momentum=0.9`` unless set), ``pal-adam`` and
``pal-rmsprop``. PAL's own hyperparameters keep their names; the base optimizer's are
``"direction.<name>"`` (its ``lr`` is not used, so not accepted), in ``make``, in
records and in sweep and figure grids (in TOML, quote the key: ``"direction.beta1" =
[0.9, 0.99]``):

>>> opt = registry.make("pal-adam", mu=0.1, **{"direction.beta2": 0.99})
>>> opt.direction.beta2, registry.name_of(opt)
(0.99, 'pal-adam')
>>> registry.hyperparameters(opt)["direction.beta2"]
0.99
"""

from __future__ import annotations

import importlib
import inspect
import math
from types import ModuleType
from typing import Any

__all__ = [
    "NBATCHES",
    "canonical_hyperparameters",
    "describe",
    "get_class",
    "hyperparameters",
    "make",
    "name_of",
    "names",
]

#: The constructor argument the runner fills in from the problem and the batch size.
NBATCHES = "n_batches_per_epoch"

# name -> (module, class, one-line description)
_ENTRIES: dict[str, tuple[str, str, str]] = {
    "pal": ("paltest.optimizers.pal", "PAL", "PAL, Parabolic Approximation Line Search"),
    "sls": ("paltest.optimizers.sls", "SLS", "SGD with the stochastic Armijo line search"),
    "sls-goldstein": ("paltest.optimizers.sls_variants", "SLSGoldstein",
                      "SLS with the Goldstein conditions"),
    "sls-polyak": ("paltest.optimizers.sls_variants", "SLSPolyak",
                   "SLS with Polyak (heavy-ball) momentum"),
    "exact": ("paltest.optimizers.exact", "ExactLineSearch",
              "exact line search along the negative gradient (bisection)"),
    "sgd": ("paltest.optimizers.sgd", "SGD", "SGD with optional (Nesterov) momentum"),
    "adam": ("paltest.optimizers.adam", "Adam", "Adam"),
    "rmsprop": ("paltest.optimizers.rmsprop", "RMSProp", "RMSProp"),
    "sgdhd": ("paltest.optimizers.sgdhd", "SGDHD", "SGD with hypergradient descent"),
    "alig": ("paltest.optimizers.alig", "ALIG", "Adaptive Learning-rates for Interpolation"),
    "cocob": ("paltest.optimizers.cocob", "COCOBBackprop", "COCOB-Backprop (coin betting)"),
    "pal-momentum": ("paltest.optimizers.pal", "PAL",
                     "PAL along SGD's heavy-ball momentum direction (momentum 0.9)"),
    "pal-adam": ("paltest.optimizers.pal", "PAL", "PAL along Adam's update direction"),
    "pal-rmsprop": ("paltest.optimizers.pal", "PAL", "PAL along RMSProp's update direction"),
}

#: The prefix of a base optimizer's hyperparameters in a PAL variant's.
NESTED = "direction."


def _variant(name: str) -> tuple[str, dict[str, Any]] | None:
    """``(base name, base defaults)`` of a PAL variant, or ``None``."""
    from paltest.optimizers.pal_direction import VARIANTS

    return VARIANTS.get(name)


def _make_variant(name: str, base_name: str, base_defaults: dict[str, Any],
                  hyperparameters: dict[str, Any]) -> Any:
    """PAL along ``base_name`` from PAL's and ``"direction.<name>"`` hyperparameters."""
    from paltest.optimizers.pal_direction import UNUSED

    own = {k: v for k, v in hyperparameters.items() if not k.startswith(NESTED)}
    nested = {k[len(NESTED):]: v for k, v in hyperparameters.items() if k.startswith(NESTED)}
    given = own.pop("direction", base_name)
    if given != base_name:
        raise ValueError(f"optimizer {name!r}: direction: is {base_name!r} for this name, "
                         f"got {given!r} (choose the name pal-... of that direction)")
    pal_params = sorted(k for k in _parameters(get_class(name)) if k not in ("direction",
                                                                             "beta"))
    base_params = sorted(k for k in _parameters(get_class(base_name)) if k not in UNUSED)
    unknown = sorted(set(own) - set(pal_params)) + sorted(
        NESTED + k for k in set(nested) - set(base_params))
    if unknown:
        raise TypeError(
            f"optimizer {name!r}: unknown hyperparameter(s) {unknown}; accepted: "
            f"{pal_params + [NESTED + k for k in base_params]}")
    try:
        base = get_class(base_name)(**{**base_defaults, **nested})
    except (TypeError, ValueError) as err:
        raise type(err)(f"optimizer {name!r}: {NESTED}{err}") from err
    try:
        return get_class(name)(direction=base, **own)
    except (TypeError, ValueError) as err:
        raise type(err)(f"optimizer {name!r}: {err}") from err


def names() -> list[str]:
    """The registered optimizer names."""
    return list(_ENTRIES)


def _check(name: Any) -> str:
    if not isinstance(name, str) or name not in _ENTRIES:
        raise ValueError(f"optimizer: unknown name {name!r}; choose one of {names()}")
    return name


def describe(name: str) -> str:
    """The one-line description of optimizer ``name``."""
    return _ENTRIES[_check(name)][2]


def get_class(name: str) -> type:
    """The optimizer class registered as ``name`` (imports its module)."""
    module, cls, _ = _ENTRIES[_check(name)]
    return getattr(importlib.import_module(module), cls)


def _parameters(cls: type) -> dict[str, inspect.Parameter]:
    """The named constructor arguments of ``cls`` (no ``self``, ``*args``, ``**kwargs``)."""
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    sig = inspect.signature(cls.__init__)
    return {k: p for k, p in list(sig.parameters.items())[1:] if p.kind in kinds}


def make(name: str, *, n_batches_per_epoch: int | None = None, **hyperparameters: Any) -> Any:
    """Build optimizer ``name`` with ``hyperparameters``.

    ``n_batches_per_epoch`` is passed on only to optimizers whose constructor takes it
    (``None``: the optimizer's default).
    Unknown names raise ``ValueError``; unknown hyperparameters ``TypeError``; invalid
    values the optimizer's own ``ValueError``/``TypeError``, prefixed with the name.
    """
    cls = get_class(name)
    variant = _variant(name)
    if variant is not None:
        return _make_variant(name, *variant, hyperparameters)
    params = _parameters(cls)
    unknown = sorted(set(hyperparameters) - set(params))
    if NBATCHES in hyperparameters:
        raise TypeError(
            f"optimizer {name!r}: pass {NBATCHES} as its own argument, not as a hyperparameter"
        )
    if unknown:
        accepted = sorted(k for k in params if k != NBATCHES)
        raise TypeError(
            f"optimizer {name!r}: unknown hyperparameter(s) {unknown}; accepted: {accepted}"
        )
    kwargs = dict(hyperparameters)
    if NBATCHES in params and n_batches_per_epoch is not None:
        kwargs[NBATCHES] = n_batches_per_epoch
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise type(err)(f"optimizer {name!r}: {err}") from err


def _jsonable(key: str, value: Any) -> Any:
    """A JSON-able copy of a hyperparameter value (floats, ints, bools, str, None)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, ModuleType):
        return value.__name__
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        value = value.item()  # NumPy scalars
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else repr(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(key, v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(key, v) for k, v in value.items()}
    raise TypeError(
        f"hyperparameter {key!r}: value {value!r} of type {type(value).__name__} cannot be "
        "recorded in a result file"
    )


def hyperparameters(opt: Any, given: dict[str, Any] | None = None) -> dict[str, Any]:
    """The hyperparameters of optimizer ``opt`` as a JSON-able dict, for result files.

    Built from the constructor's defaults, overwritten by same-named attributes of
    ``opt``, by ``given`` (the arguments it was built with) and last by
    ``opt.hyperparameters`` when the optimizer has it (its validated values win).
    Constructor arguments the optimizer lists in ``unused_hyperparameters`` are left
    out (PAL's ``direction`` for its own direction, ``beta`` along another optimizer).
    """
    out: dict[str, Any] = {}
    params = _parameters(type(opt))
    for key, p in params.items():
        if p.default is not inspect.Parameter.empty:
            out[key] = p.default
        if hasattr(opt, key):
            out[key] = getattr(opt, key)
    out.update(given or {})
    own = getattr(opt, "hyperparameters", None)
    if callable(own):
        own = own()
    if isinstance(own, dict):
        out.update(own)
    for key in getattr(opt, "unused_hyperparameters", ()):
        out.pop(key, None)
    return {k: _jsonable(k, v) for k, v in out.items()}


def canonical_hyperparameters(name: str, **given: Any) -> dict[str, Any]:
    """The full hyperparameter record of ``make(name, **given)``, without building data.

    Validates ``given`` by building the optimizer (``n_batches_per_epoch`` set to 1 when
    the constructor takes it) and drops ``n_batches_per_epoch``, which the runner derives
    from the problem and the batch size. Used for run ids, so a sweep knows a run's id
    before it runs.

    >>> canonical_hyperparameters("sgd", lr=0.5)["lr"]
    0.5
    """
    if NBATCHES in given:
        raise TypeError(f"optimizer {name!r}: {NBATCHES} is set by the runner, not by a "
                        "hyperparameter")
    opt = make(name, n_batches_per_epoch=1, **given)
    out = hyperparameters(opt, given)
    out.pop(NBATCHES, None)
    return out


def name_of(opt: Any) -> str | None:
    """The registry name of ``opt``'s class, or ``None`` when it is not registered.

    PAL along another optimizer gets its variant's name (``pal-adam``, ...; any SGD
    direction is ``pal-momentum``, whose ``direction.momentum`` may be 0), or ``None``
    for a base that is not registered.
    """
    cls = type(opt)
    base = getattr(opt, "direction", None)
    if base is not None and not isinstance(base, str) and hasattr(base, "update"):
        from paltest.optimizers.pal_direction import VARIANTS

        base_name = name_of(base)
        return next((k for k, (b, _) in VARIANTS.items() if b == base_name), None)
    for key, (module, clsname, _) in _ENTRIES.items():
        if cls.__module__ == module and cls.__name__ == clsname:
            return key
    return None
