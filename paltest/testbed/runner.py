"""``run()``: train one optimizer on one problem for some epochs and log it.

The loop is ``epochs`` × the problem's mini-batches. For the ``k``-th epoch
(``k = 1 .. epochs``) the batches are ``problem.batches(k - 1, seed, batch_size)``; the
parameters start at ``problem.init_params(seed)``, so a run is a pure function of its
config: the same seed on the same backend gives bit-for-bit the same numbers.

What is logged:

* the loss over the whole training set and the test metrics before the first step
  (epoch 0) and after every epoch;
* every numeric field of every step record (``loss``, ``lr``, ``step``, ``case``,
  ``n_fun``, ``nonfinite``, ...): 0-d device arrays are kept on the device during the
  epoch and moved to the host **once per epoch**, together with the epoch's training
  loss and test metrics (one ``xp.stack`` and one :func:`paltest.backend.to_host`);
  Python numbers (such as fixed evaluation counts) stay on the host;
* wall time per epoch (``epoch_time``, with the epoch's full-data evaluations), the
  time of the epoch's steps alone (``step_time``) and in total, and the evaluation
  counts: the optimizers' own ``n_fun``/``n_grad`` and, separately, the runner's
  full-data evaluations;
* per epoch, ``lr_mean``, ``lr_median`` and ``lr_zero``, the number of steps whose
  learning rate was exactly 0 (the optimizer did not move).

Example:
    >>> from paltest.testbed.runner import run
    >>> r = run("quadratic", "pal", epochs=2, batch_size=1, seed=0,
    ...         problem_options={"n": 4}, hyperparameters={"mu": 0.1})
    >>> r.epochs["train_loss"].shape, int(r.totals["n_steps"])
    ((3,), 2)
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from paltest import backend
from paltest.checks import check_int
from paltest.optimizers import registry
from paltest.testbed import results

__all__ = ["run"]

_HOST_SCALARS = (bool, int, float)


def _check_dict(name: str, value: Any) -> dict[str, Any]:
    """``value`` (``None`` or a dict with string keys) as a new dict."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise TypeError(f"{name}: expected a dict with string keys (or None), got "
                        f"{type(value).__name__} {value!r}"[:300])
    return dict(value)


def _resolve_problem(problem: Any, options: dict[str, Any] | None,
                     name: str | None) -> tuple[Any, str, dict]:
    if isinstance(problem, type):
        raise TypeError(f"problem: got the class {problem.__name__}; pass a problem built "
                        "from it (an instance) or a registry name")
    if isinstance(problem, str):
        import problems

        opts = dict(options or {})
        obj = problems.get(problem, **opts)
        opts["xp"] = results.xp_name(obj.xp)
        opts["dtype"] = obj.dtype_name
        return obj, name or problem, opts
    for attr in ("init_params", "batches", "bind", "train_loss", "test_metrics", "xp"):
        if not hasattr(problem, attr):
            raise TypeError(f"problem: expected a name or a Problem, got {problem!r} "
                            f"(no {attr!r})")
    opts = dict(options or {})  # for an object: the options it was built with (recorded)
    opts.update(xp=results.xp_name(problem.xp), dtype=problem.dtype_name)
    return problem, name or str(getattr(problem, "name", type(problem).__name__)), opts


def _resolve_optimizer(optimizer: Any, hps: dict[str, Any] | None, n_batches: int,
                       name: str | None) -> tuple[Any, str, dict]:
    if isinstance(optimizer, type):
        raise TypeError(f"optimizer: got the class {optimizer.__name__}; pass an instance "
                        f"({optimizer.__name__}(...)) or a registry name")
    if isinstance(optimizer, str):
        given = dict(hps or {})
        if registry.NBATCHES in given:
            raise TypeError(f"hyperparameters: {registry.NBATCHES} is set by the runner")
        opt = registry.make(optimizer, n_batches_per_epoch=n_batches, **given)
        return opt, name or optimizer, registry.canonical_hyperparameters(optimizer, **given)
    if hps:
        raise TypeError("hyperparameters: only allowed when optimizer is given by name")
    if not (hasattr(optimizer, "init") and hasattr(optimizer, "step")):
        raise TypeError(f"optimizer: expected a name or an optimizer, got {optimizer!r}")
    name = name or registry.name_of(optimizer) or type(optimizer).__name__.lower()
    return optimizer, name, registry.hyperparameters(optimizer)


_FIELDS: dict[type, tuple[str, ...]] = {}
#: Whether an epoch's step records are collected without the device round trip on NumPy
#: (:meth:`_EpochBuffer.flush`; the same arrays, tests/test_fast_paths.py).
HOST_FAST_PATH = True


def _numeric_fields(info: Any) -> dict[str, Any]:
    """The numeric fields of a step record (``loss`` first; PAL has it as a property)."""
    out = {"loss": info.loss}
    cls = type(info)
    keys = _FIELDS.get(cls)
    if keys is None:  # the field names of a record type, looked up once
        keys = _FIELDS[cls] = tuple(getattr(info, "_fields", ()))
    values = info if type(info).__iter__ is tuple.__iter__ else (
        getattr(info, key) for key in keys)  # a NamedTuple's fields, in order
    for key, value in zip(keys, values, strict=False):
        if value is None or isinstance(value, (str, bytes)):
            continue
        if isinstance(value, _HOST_SCALARS) or getattr(value, "shape", None) == ():
            out.setdefault(key, value)
    return out


class _EpochBuffer:
    """Step records of one epoch: device values stay on the device until :meth:`flush`.

    :meth:`add` only keeps the record (O(1)); :meth:`flush` sorts the fields into host
    values (Python numbers) and device values (0-d arrays). An epoch of records of one
    NamedTuple type is sorted column by column (:meth:`_columns`: one transpose, one
    type check per column); anything else (mixed record types, a column of mixed types,
    ``None`` in some steps) goes record by record (:meth:`_sort_one`), with the same
    fields in the same order either way.
    """

    def __init__(self, xp: Any) -> None:
        self.xp = xp
        self.records: list[Any] = []
        self.device: dict[str, list] = {}
        self.host: dict[str, list] = {}
        self.n = 0

    def add(self, info: Any) -> None:
        self.records.append(info)
        self.n += 1

    def _sort(self) -> None:
        columns = self._columns() if self.records else None
        if columns is None:
            for info in self.records:
                self._sort_one(info)
        else:
            self.device, self.host = columns
        self.records = []

    def _sort_one(self, info: Any) -> None:
        host, device = self.host, self.device
        for key, value in _numeric_fields(info).items():
            if isinstance(value, _HOST_SCALARS):
                vals = host.get(key)
                if vals is None:
                    vals = host[key] = []
            else:
                vals = device.get(key)
                if vals is None:
                    vals = device[key] = []
            vals.append(value)

    def _columns(self) -> tuple[dict[str, tuple], dict[str, tuple]] | None:
        """:meth:`_sort_one`'s ``(device, host)`` columns for an epoch of records of one
        NamedTuple type, a column at a time; ``None`` when a column is not of one type
        (mixed types, ``None`` in some steps) or holds 0-d and other values: then the
        records are sorted one by one (which raises for a field missing in some steps)."""
        recs = self.records
        cls = type(recs[0])
        if cls.__iter__ is not tuple.__iter__ or any(type(r) is not cls for r in recs):
            return None
        keys = _FIELDS.get(cls)
        if keys is None:
            keys = _FIELDS[cls] = tuple(getattr(recs[0], "_fields", ()))
        if not keys:
            return None
        columns = dict(zip(keys, zip(*recs, strict=True), strict=False))
        columns = {"loss": tuple(r.loss for r in recs), **columns}
        device: dict[str, tuple] = {}
        host: dict[str, tuple] = {}
        for key, col in columns.items():
            kinds = set(map(type, col))
            if len(kinds) != 1:
                return None
            kind = kinds.pop()
            if kind is type(None) or issubclass(kind, (str, bytes)):
                continue
            if issubclass(kind, _HOST_SCALARS):
                host[key] = col
                continue
            shapes = {v.shape for v in col} if hasattr(kind, "shape") else {None}
            if () not in shapes:
                continue  # no 0-d value: not a record field (as in _sort_one)
            if len(shapes) != 1:
                return None
            device[key] = col
        return device, host

    def flush(self, extra: list[Any]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Host arrays of the step fields, and the host values of ``extra`` 0-d arrays.

        One device-to-host transfer: every device value, cast to float64 (exact for the
        float32/float64, int32 and bool values of step records), is stacked into one
        vector.
        """
        xp = self.xp
        self._sort()
        if HOST_FAST_PATH and backend.on_host(xp):
            return self._flush_host(extra)
        wide = xp.float64
        parts, kinds = [], []
        for key, vals in self.device.items():
            if len(vals) != self.n:
                raise ValueError(f"step record field {key!r} missing in some steps")
            if len({v.dtype for v in vals}) > 1:
                vals = [xp.astype(v, wide) for v in vals]
            stacked = xp.stack(vals)
            kinds.append((key, _host_dtype(xp, stacked.dtype)))
            parts.append(xp.astype(stacked, wide))
        parts.extend(xp.reshape(xp.astype(v, wide), (1,)) for v in extra)
        flat = backend.to_host(xp.concat(parts)) if parts else np.zeros(0)
        out: dict[str, np.ndarray] = {}
        for i, (key, dtype) in enumerate(kinds):
            out[key] = flat[i * self.n:(i + 1) * self.n].astype(dtype)
        for key, vals in self.host.items():
            out[key] = np.asarray(vals)
        return out, flat[len(kinds) * self.n:]

    def _flush_host(self, extra: list[Any]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """:meth:`flush` on NumPy, with the same arrays: the values are already on the
        host, and the round trip through float64 is exact for every record dtype, so
        each field is stacked in its own dtype and cast to the host dtype directly."""
        out: dict[str, np.ndarray] = {}
        for key, vals in self.device.items():
            if len(vals) != self.n:
                raise ValueError(f"step record field {key!r} missing in some steps")
            dtypes = {v.dtype for v in vals}
            if len(dtypes) > 1:
                stacked = np.array(vals, dtype=np.float64)
            else:  # 0-d values of one dtype: np.array is np.stack, at a fifth of the cost
                stacked = np.array(vals, dtype=dtypes.pop())
            out[key] = stacked.astype(_host_dtype_cached(self.xp, stacked.dtype), copy=False)
        for key, vals in self.host.items():
            out[key] = np.asarray(vals)
        return out, np.array(extra, dtype=np.float64).reshape(-1)


_HOST_DTYPES: dict[Any, str] = {}


def _host_dtype_cached(xp: Any, dtype: np.dtype) -> str:
    """:func:`_host_dtype` of a NumPy dtype on NumPy's namespace ``xp`` (cached)."""
    name = _HOST_DTYPES.get(dtype)
    if name is None:
        name = _HOST_DTYPES[dtype] = _host_dtype(xp, dtype)
    return name


def _host_dtype(xp: Any, dtype: Any) -> str:
    if xp.isdtype(dtype, "bool"):
        return "bool"
    if xp.isdtype(dtype, "integral"):
        return "int64"
    if dtype == xp.float32:
        return "float32"
    return "float64"


def _evaluate(problem: Any, theta: Any) -> tuple[list[str], list[Any]]:
    metrics = problem.test_metrics(theta)
    names = ["train_loss", *metrics]
    return names, [problem.train_loss(theta), *metrics.values()]


def run(
    problem: Any, optimizer: Any, *, epochs: int, batch_size: int, seed: int,
    progress: bool = False, optimizer_name: str | None = None,
    config: dict[str, Any] | None = None, problem_options: dict[str, Any] | None = None,
    hyperparameters: dict[str, Any] | None = None, problem_name: str | None = None,
    observe: Any = None, start_ulps: int = 0,
) -> results.RunResult:
    """Train ``optimizer`` on ``problem``; return a :class:`~paltest.testbed.results.RunResult`.

    Args:
        problem: a :class:`problems.base.Problem`, or a registry name built with
            ``problem_options`` (``xp``, ``dtype``, ``device``, ...).
        optimizer: an optimizer object, or a registry name built with ``hyperparameters``
            (``n_batches_per_epoch`` is filled in from the problem).
        epochs: number of passes over the training set (>= 0).
        batch_size: mini-batch size (the last partial batch is dropped).
        seed: seeds the initial parameters and the batch order.
        progress: show a tqdm progress bar over the epochs.
        optimizer_name: the name recorded for an optimizer object (default: its
            registry name, else its class name in lower case).
        config: extra JSON-able entries recorded in the config (they enter the run id).
        problem_options: options to build ``problem`` by name; with a Problem object,
            the options it was built with (only recorded in the config).
        hyperparameters: see ``optimizer``.
        problem_name: the name recorded for the problem (default: the registry name, or
            a Problem object's ``name``).
        observe: ``None``, or a callable ``observe(step, batch, theta, state, theta_next,
            state_next, info)`` called after every optimizer step (``step`` counts from
            0 over the whole run) with the batch, the parameters and state before and
            after the step and its record. Its return value is ignored; it must not
            modify the arrays it is given (the run's trajectory is then the same with
            and without it, which is how :mod:`paltest.testbed.lines` samples lines).
            Its time counts in ``step_time``.
        start_ulps: move every entry of the start ``problem.init_params(seed)`` this many
            units in the last place (``nextafter`` toward +inf; toward -inf when
            negative): the smallest change of a run, to measure how far rounding-level
            differences (another BLAS kernel, another thread count) carry a trajectory.
            Recorded in the config as ``start_ulps`` (so it enters the run id) when not 0;
            0 (the default) leaves the run and its id as they were. A ``config`` with a
            ``start_ulps`` entry (the extra entries of a sweep's or a figure's config)
            asks for the same.
    """
    t_start = time.perf_counter()
    problem_options = _check_dict("problem_options", problem_options)
    hyperparameters = _check_dict("hyperparameters", hyperparameters)
    config = None if config is None else _check_dict("config", config)
    for key, label in ((optimizer_name, "optimizer_name"), (problem_name, "problem_name")):
        if key is not None and not (isinstance(key, str) and key):
            raise TypeError(f"{label}: expected a non-empty str or None, got {key!r}")
    epochs = check_int("epochs", epochs, 0)
    if observe is not None and not callable(observe):
        raise TypeError(f"observe: must be None or callable, got {type(observe).__name__}")
    batch_size = check_int("batch_size", batch_size, 1)
    seed = check_int("seed", seed, 0)
    # a config that records start_ulps (a sweep's or a figure's run) asks for it too
    recorded = (config or {}).get("start_ulps", 0)
    for name, v in (("start_ulps", start_ulps), ("config['start_ulps']", recorded)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"{name}: an int, got {v!r}")
    if start_ulps and recorded and start_ulps != recorded:
        raise ValueError(f"start_ulps: {start_ulps} differs from config['start_ulps'] "
                         f"{recorded}")
    start_ulps = start_ulps or recorded
    if start_ulps:
        config = {**(config or {}), "start_ulps": start_ulps}
    prob, prob_name, prob_opts = _resolve_problem(problem, problem_options, problem_name)
    if batch_size > prob.n_train:
        raise ValueError(f"batch_size: {batch_size} exceeds the training set size "
                         f"{prob.n_train} of problem {prob_name!r}")
    n_batches = prob.n_train // batch_size
    opt, opt_name, hps = _resolve_optimizer(optimizer, hyperparameters, n_batches,
                                            optimizer_name)
    cfg = results.make_config(prob_name, prob_opts, opt_name, hps, epochs, batch_size, seed,
                              extra=config)
    xp = prob.xp
    theta = prob.init_params(seed)
    if start_ulps:
        theta = _move_ulps(xp, theta, start_ulps)
    state = opt.init(theta)
    t_setup = time.perf_counter()

    names, values = _evaluate(prob, theta)
    _, first = _EpochBuffer(xp).flush(values)
    rows = [first]
    step_logs: list[dict[str, np.ndarray]] = []
    epoch_time = [time.perf_counter() - t_setup]
    step_time = [0.0]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs, desc=f"{opt_name} on {prob_name}", unit="epoch")
    n_step = 0
    for k in range(epochs):
        t0 = time.perf_counter()
        buf = _EpochBuffer(xp)
        for batch in prob.batches(k, seed, batch_size):
            value_and_grad, value = prob.bind(batch)
            if observe is None:
                theta, state, info = opt.step(theta, state, value_and_grad, value)
            else:
                theta_next, state_next, info = opt.step(theta, state, value_and_grad, value)
                observe(n_step, batch, theta, state, theta_next, state_next, info)
                theta, state = theta_next, state_next
                n_step += 1
            buf.add(info)
        step_time.append(time.perf_counter() - t0)
        names_k, values = _evaluate(prob, theta)
        if names_k != names:
            raise ValueError(f"problem: test metrics changed from {names} to {names_k}")
        steps, row = buf.flush(values)
        steps["epoch"] = np.full(buf.n, k + 1, dtype=np.int64)
        step_logs.append(steps)
        rows.append(row)
        epoch_time.append(time.perf_counter() - t0)
        if bar is not None:
            bar.set_postfix(train_loss=f"{row[0]:.4g}")
            bar.update(1)
    if bar is not None:
        bar.close()
    env = results.environment(xp, backend.device(theta), prob.dtype_name)
    return _assemble(cfg, env, prob, names, rows, step_logs, epoch_time, step_time,
                     {"setup": t_setup - t_start, "total": time.perf_counter() - t_start})


def _move_ulps(xp: Any, theta: Any, n: int) -> Any:
    """``theta`` with every entry moved ``|n|`` ulps toward +inf (``n > 0``) or -inf."""
    toward = xp.full_like(theta, xp.inf if n > 0 else -xp.inf)
    for _ in range(abs(n)):
        theta = xp.nextafter(theta, toward)
    return theta


def _concat_steps(logs: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    keys = list(logs[0]) if logs else []
    return {k: np.concatenate([log[k] for log in logs]) for k in keys}


def _assemble(cfg: dict, env: dict, prob: Any, names: list[str], rows: list[np.ndarray],
              step_logs: list[dict[str, np.ndarray]], epoch_time: list[float],
              step_time: list[float], timings: dict[str, float]) -> results.RunResult:
    table = np.stack(rows)
    n_epochs = len(rows)
    ep: dict[str, np.ndarray] = {"epoch": np.arange(n_epochs, dtype=np.int64)}
    for i, name in enumerate(names):
        ep[name] = table[:, i].astype(prob.dtype_name)
    ep["epoch_time"] = np.asarray(epoch_time)
    ep["step_time"] = np.asarray(step_time)
    ep["wall_time"] = np.cumsum(ep["epoch_time"])
    zeros = np.zeros(n_epochs, dtype=np.int64)
    per_epoch = {"n_fun": zeros.copy(), "n_grad": zeros.copy(), "n_steps": zeros.copy(),
                 "nonfinite": zeros.copy(), "lr_zero": zeros.copy()}
    lr_mean = np.full(n_epochs, np.nan)
    lr_median = np.full(n_epochs, np.nan)
    for k, log in enumerate(step_logs, start=1):
        n = len(log["epoch"])
        per_epoch["n_steps"][k] = n
        for key in ("n_fun", "n_grad", "nonfinite"):
            if key in log:
                per_epoch[key][k] = int(np.sum(log[key]))
        if n and "lr" in log:
            per_epoch["lr_zero"][k] = int(np.count_nonzero(log["lr"] == 0))
            lr_mean[k] = float(np.mean(log["lr"], dtype=np.float64))
            lr_median[k] = float(np.median(log["lr"]))
    for key in ("n_fun", "n_grad", "n_steps"):
        ep[key] = np.cumsum(per_epoch[key])
    ep["nonfinite"] = per_epoch["nonfinite"]
    ep["lr_zero"] = per_epoch["lr_zero"]
    ep["lr_mean"], ep["lr_median"] = lr_mean, lr_median
    totals = {
        "n_steps": int(ep["n_steps"][-1]), "n_fun": int(ep["n_fun"][-1]),
        "n_grad": int(ep["n_grad"][-1]), "nonfinite": int(np.sum(ep["nonfinite"])),
        "runner_train_loss_evals": n_epochs,
        "runner_test_evals": n_epochs if len(names) > 1 else 0,
        "runner_train_samples": n_epochs * int(prob.n_train),
    }
    return results.RunResult(config=cfg, environment=env, epochs=ep,
                             steps=_concat_steps(step_logs), timings=timings, totals=totals)
