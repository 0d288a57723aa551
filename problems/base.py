"""The problem protocol: what every testbed problem offers the runner and the optimizers.

A problem is built once on a chosen array namespace, device and dtype and never leaves
them. Its parameters are one flat vector ``theta`` (float32 or float64). It offers:

``n_params``, ``n_train``
    the number of parameters and of training samples;
``default_batch_size``
    the batch size used when none is given (``paltest run``): 100 by default, or the
    whole training set when it is smaller; a problem may choose its own;
``xp``, ``device``, ``dtype``
    where it lives (``dtype`` is ``xp.float32`` or ``xp.float64``; ``dtype_name`` gives
    ``"float32"``/``"float64"``);
``init_params(seed)``
    a parameter vector, drawn on the host with NumPy and moved to the device, so a seed
    gives the same start on every backend;
``batches(epoch, seed, batch_size)``
    the epoch's mini-batches: index arrays on the device, from a permutation of the
    training set that is reshuffled every epoch (a pure function of ``seed`` and
    ``epoch``, drawn on the host), the last partial batch dropped;

seeds and epochs are ints >= 0 (Python or NumPy ints): anything else, ``None``
included (which would draw a fresh, irreproducible start), raises an error naming
``seed`` or ``epoch``;
``value(theta, batch)`` and ``value_and_grad(theta, batch)``
    the mean loss over the batch (a 0-d array), and it with its analytic gradient;
    ``batch`` is a non-empty 1-D integer index array of the problem's namespace, as
    :meth:`~Problem.batches` yields (:meth:`~Problem.check_batch`: ``None``, lists,
    empty, 2-D, float and bool arrays raise an error naming ``batch``; the whole
    training set as a batch is :meth:`~Problem.full_batch`, its loss ``train_loss``);
``train_loss(theta)``
    the loss over the whole training set (0-d array);
``test_metrics(theta)``
    a dict of 0-d arrays (for example ``test_loss``, ``test_accuracy``); empty when the
    problem has no test set;
``floor``
    the analytic optimum of the training loss when known (a Python float), else ``None``;
``line(theta, direction, batch)``
    the batch loss along a line, :math:`l(s) = L_B(\theta + s d)`, as a
    :class:`Line`: called with a 1-d array of steps ``s`` it returns the losses at all of
    them (a 1-d array). The base class evaluates each point directly (one ``value`` per
    point, ``cheap`` false); a problem may override it with a cheaper evaluation
    (``cheap`` true, :mod:`problems.lines`: one set-up of the batch's products, then
    vector work per point) whose values equal direct evaluation up to rounding (the
    bound is stated and tested there). ``line_class`` names the class, so
    ``line_class.cheap`` says whether a problem's line is cheap without building one;
``bind(batch)``
    ``(value_and_grad, value)`` callables of ``theta`` on ``batch``; when the problem's
    line is cheap, ``value`` also has a method ``value.line(theta, direction)`` (the
    batch's :class:`Line`), which optimizers find by ``getattr(value, "line", None)``
    without importing problems (the exact line search uses it).

None of these methods transfers data from the device to the host.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Iterator
from typing import Any

import numpy as np

from paltest import backend
from paltest.checks import check_int

__all__ = ["BoundValue", "BoundValueWithLine", "DirectLine", "Line", "Problem",
           "epoch_permutation"]


_ndarray, _INT64 = np.ndarray, np.dtype(np.int64)
#: (array type, dtype) -> namespace of the batch types accepted so far.
_BATCH_OK: dict[tuple[type, Any], Any] = {}


def _check_batch(xp: Any, batch: Any) -> None:
    """:meth:`Problem.check_batch` past its NumPy shortcut."""
    try:
        ok = _BATCH_OK.get((type(batch), batch.dtype))
    except (AttributeError, TypeError):
        ok = None
    if ok is None:
        if batch is None:
            raise TypeError("batch: expected an index array (from batches()), got None; "
                            "the whole training set is full_batch(), its loss "
                            "train_loss(theta)")
        try:
            bxp = backend.namespace(batch)
        except TypeError:
            bxp = None
        if bxp is None or isinstance(batch, (list, tuple)):
            raise TypeError(f"batch: expected an index array of the problem's namespace "
                            f"{xp.__name__}, got {type(batch).__name__}")
        if bxp is not xp:
            raise TypeError(f"batch: an array of {bxp.__name__}, not of the problem's "
                            f"namespace {xp.__name__}")
        if not xp.isdtype(batch.dtype, "integral"):
            raise TypeError(f"batch: expected integer indices, got dtype {batch.dtype}")
        _BATCH_OK[(type(batch), batch.dtype)] = ok = xp
    if ok is not xp:
        raise TypeError(f"batch: an array of {ok.__name__}, not of the problem's namespace "
                        f"{xp.__name__}")
    if batch.ndim != 1:
        raise ValueError(f"batch: expected a 1-D index array, got shape {tuple(batch.shape)}")
    if batch.shape[0] == 0:
        raise ValueError("batch: empty (the mean loss of no samples is undefined)")


def epoch_permutation(n: int, epoch: int, seed: int) -> np.ndarray:
    """The host permutation of ``range(n)`` for ``epoch`` of a run with ``seed``.

    A pure function of its arguments (NumPy ``PCG64`` seeded with ``[seed, epoch]``), so
    batches are identical on every backend and on resumption. ``seed`` and ``epoch`` must
    be ints >= 0 (``TypeError``/``ValueError`` naming them; a float is not rounded).
    """
    return _permutation(n, check_int("seed", seed), check_int("epoch", epoch)).copy()


@functools.lru_cache(maxsize=64)
def _permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """:func:`epoch_permutation`, cached and read-only (runs of one process share their
    epochs' permutations: every tuning run of a seed draws the same ones)."""
    perm = np.random.default_rng([seed, epoch]).permutation(n)
    perm.flags.writeable = False
    return perm


class Line(abc.ABC):
    r"""The batch loss along one line, :math:`s \mapsto L_B(\theta + s\,d)`, for a fixed
    ``theta``, direction ``d`` and batch.

    Calling it with a 1-d array ``s`` of steps (the problem's namespace and dtype; a
    Python float or a sequence of floats is converted) returns a 1-d array of the batch
    losses at :math:`\theta + s_i d`, in the order of ``s``.

    Attributes:
        cheap: whether the values come from a set-up done once for the line (true) rather
            than from one direct evaluation per point (false).
        n_points: how many points have been evaluated on this line so far.
    """

    cheap: bool = False
    n_points: int = 0

    def __init__(self, problem: Problem, theta: Any, direction: Any, batch: Any) -> None:
        self.problem, self.theta, self.direction, self.batch = problem, theta, direction, batch
        self.n_points = 0

    def steps(self, s: Any) -> Any:
        """``s`` as a 1-d array of the problem's namespace, device and dtype."""
        p = self.problem
        if isinstance(s, (int, float)) and not isinstance(s, bool):
            s = [float(s)]
        if type(s) is list and backend.on_host(p.xp):  # from_host's steps, without its calls
            s = np.asarray(s, dtype=np.float64).astype(p.dtype, copy=False)
        elif not hasattr(s, "shape"):
            s = backend.from_host(np.asarray(s, dtype=np.float64), p.xp, device=p.device,
                                  dtype=backend.dtype_name(p.dtype))
        if s.ndim != 1:
            raise ValueError(f"s: must be 1-d, got shape {tuple(s.shape)}")
        return s

    def __call__(self, s: Any) -> Any:
        s = self.steps(s)
        self.n_points += int(s.shape[0])
        return self.values(s)

    @abc.abstractmethod
    def values(self, s: Any) -> Any:
        """The losses at the 1-d array of steps ``s`` (already converted)."""


class DirectLine(Line):
    """A :class:`Line` evaluated directly: one ``problem.value`` per point."""

    cheap = False

    def values(self, s: Any) -> Any:
        p, xp = self.problem, self.problem.xp
        s_host = backend.to_host(s)  # the steps are the caller's numbers: read them once
        losses = [p.value(self.theta + float(si) * self.direction, self.batch)
                  for si in s_host]
        if not losses:
            return xp.zeros((0,), dtype=p.dtype, device=p.device)
        return xp.stack([xp.reshape(v, ()) for v in losses])


class BoundValue:
    """``value`` of :meth:`Problem.bind`: ``BoundValue(problem, batch)(theta)`` is
    ``problem.value(theta, batch)``."""

    __slots__ = ("batch", "problem")

    def __init__(self, problem: Problem, batch: Any) -> None:
        self.problem, self.batch = problem, batch

    def __call__(self, theta: Any) -> Any:
        return self.problem.value(theta, self.batch)


class BoundValueWithLine(BoundValue):
    """A :class:`BoundValue` of a problem whose line is cheap: it also offers
    :meth:`line`."""

    __slots__ = ()

    def line(self, theta: Any, direction: Any) -> Line:
        """The problem's (cheap) :class:`Line` through ``theta`` along ``direction``."""
        return self.problem.line(theta, direction, self.batch)


class Problem(abc.ABC):
    """Base class for testbed problems; see the module docstring for the protocol.

    Subclasses set ``name``, ``n_params``, ``n_train``, ``xp``, ``device`` and ``dtype``
    in ``__init__``, and implement :meth:`init_params`, :meth:`value`,
    :meth:`value_and_grad`, :meth:`train_loss` and :meth:`test_metrics`. The default
    :meth:`batches` shuffles ``range(n_train)``.
    """

    name: str = "problem"
    n_params: int
    n_train: int
    xp: Any
    device: Any
    dtype: Any
    floor: float | None = None
    #: The :class:`Line` class of :meth:`line` (:class:`DirectLine` unless overridden).
    line_class: type[Line] = DirectLine

    @property
    def default_batch_size(self) -> int:
        """The batch size used when none is given: ``min(100, n_train)``."""
        return min(100, int(self.n_train))

    @property
    def dtype_name(self) -> str:
        """``"float32"`` or ``"float64"``."""
        return backend.dtype_name(self.dtype)

    def batches(self, epoch: int, seed: int, batch_size: int) -> Iterator[Any]:
        """Index arrays (on the device) of the epoch's batches; last partial batch dropped.

        The arguments are checked when it is called (not at the first batch).
        """
        batch_size = check_int("batch_size", batch_size, 1)  # None, 2.0, inf: named errors
        if batch_size > self.n_train:
            raise ValueError(
                f"batch_size: {batch_size} exceeds the training set size {self.n_train}"
            )
        perm = _permutation(self.n_train, check_int("seed", seed), check_int("epoch", epoch))
        n_batches = self.n_train // batch_size
        host = perm[: n_batches * batch_size]
        if not backend.on_host(self.xp):  # (a device copy: its own writeable array)
            host = np.array(host)
        idx = backend.from_host(host, self.xp, device=self.device, dtype="int64")
        return (idx[i * batch_size : (i + 1) * batch_size] for i in range(n_batches))

    def check_batch(self, batch: Any) -> None:
        """``batch`` must be a non-empty 1-D integer array of the problem's namespace (an
        index array as :meth:`batches` yields); anything else raises ``TypeError`` or
        ``ValueError`` naming ``batch``. Only metadata is read (the indices themselves are
        not: an index out of range is the namespace's own error). The batch methods call
        it, so a mistaken ``None`` (the whole training set is ``train_loss``), a list, a
        2-D or an empty batch (a NaN mean) never passes silently."""
        if type(batch) is _ndarray and batch.dtype is _INT64 and batch.ndim == 1 \
                and batch.shape[0]:
            return  # NumPy's index arrays (what batches yields): four checks
        _check_batch(self.xp, batch)

    def full_batch(self) -> Any:
        """Every training index as one batch (on the device): ``value(theta,
        problem.full_batch())`` is the mean loss over the training set, for full-batch
        optimization (``train_loss`` computes it without the gather)."""
        return backend.from_host(np.arange(self.n_train), self.xp, device=self.device,
                                 dtype="int64")

    def n_batches(self, batch_size: int) -> int:
        """Batches per epoch at ``batch_size`` (the last partial batch is dropped)."""
        return self.n_train // int(batch_size)

    @abc.abstractmethod
    def init_params(self, seed: int) -> Any:
        """Initial parameters for ``seed`` (drawn on the host, moved to the device).

        ``seed`` must be an int >= 0 (``paltest.checks.check_int("seed", seed)``).
        """

    @abc.abstractmethod
    def value(self, theta: Any, batch: Any) -> Any:
        """Mean loss over ``batch`` (0-d array)."""

    @abc.abstractmethod
    def value_and_grad(self, theta: Any, batch: Any) -> tuple[Any, Any]:
        """Mean loss over ``batch`` and its gradient with respect to ``theta``."""

    @abc.abstractmethod
    def train_loss(self, theta: Any) -> Any:
        """Loss over the whole training set (0-d array)."""

    def test_metrics(self, theta: Any) -> dict[str, Any]:
        """Test-set metrics as 0-d arrays (empty when there is no test set)."""
        return {}

    def line(self, theta: Any, direction: Any, batch: Any) -> Line:
        """The batch loss along ``theta + s * direction`` (see :class:`Line`).

        An instance of ``line_class``: :class:`DirectLine` (each point evaluated
        directly) unless the problem sets a cheap one (:mod:`problems.lines`).
        """
        self.check_batch(batch)
        return self.line_class(self, theta, direction, batch)

    def bind(self, batch: Any) -> tuple[Any, Any]:
        """``(value_and_grad, value)`` callables of ``theta`` bound to ``batch``.

        ``value`` is a :class:`BoundValue`; when ``line_class.cheap`` it is a
        :class:`BoundValueWithLine`, whose ``value.line(theta, direction)`` is
        ``self.line(theta, direction, batch)``.
        """
        bound = BoundValueWithLine if self.line_class.cheap else BoundValue
        return (lambda theta: self.value_and_grad(theta, batch), bound(self, batch))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, n_params={self.n_params}, "
            f"n_train={self.n_train}, dtype={self.dtype_name}, xp={self.xp.__name__})"
        )
