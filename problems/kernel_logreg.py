"""RBF-kernel logistic regression on LIBSVM binary data (PAL paper Figure 9).

Protocol (SLS reference code): the data, labels in {0, 1} and the 80/20 split come from
:func:`problems.splits.load_split` (re-exported here); features of a sample ``a`` are
the RBF kernel values against the ``n`` training points,

    k(a)_j = exp(-||a - x_j||^2 / (2 sigma^2)),   j = 1..n,

with ``sigma`` 0.5 (mushrooms) or 0.05 (ijcnn); the model is linear without bias,
``z = k(a)^T theta`` with ``theta in R^n`` initialised ``U(-1/sqrt(n), 1/sqrt(n))``; the
loss is the mean binary cross-entropy on the logits,

    l(z, y) = softplus(z) - y z = max(z, 0) - y z + log1p(exp(-|z|)),

which never overflows, with gradient ``(1/b) K_B^T (s(z) - y)``, ``s`` the logistic
function (evaluated as ``1/(1+e)`` or ``e/(1+e)`` with ``e = exp(-|z|)``).

Memory. Kernel entries are computed in float64 on the device from the raw features
(moved once with ``backend.from_host``) by the norm expansion of ``||a - b||^2`` (see
:func:`rbf_kernel`), then cast to ``dtype``, in chunks of at most 500,000 entries (under
4 MiB of float64, so the allocator reuses the memory instead of faulting in fresh pages)
that run on all the process's CPUs for NumPy. (JAX needs 64-bit mode for that, even for
a float32 problem; without it the constructor says how to enable it.)
``memory_budget`` (bytes, default 2 GiB) caps what the problem holds beyond the raw
data: stored kernels plus temporaries, counted as 32 bytes per kernel entry in flight
(four float64 arrays) for a block of at most 2**22 entries (a batch's rows; the chunks
in flight fit in one block).

No array of the namespace is written in place (JAX's arrays cannot be): a stored kernel
is assembled chunk by chunk in one host (NumPy) array and moved to the namespace once
(on NumPy that array is the kernel itself; array-api-strict and PyTorch on the CPU take
it without a copy; CuPy copies it to the GPU). JAX on the CPU copies it into host memory
of its own, so there the budget counts each stored kernel twice (``staged``). A batch's
rows computed during a step are assembled the same way on NumPy, and joined with
``concat`` on the device elsewhere (no host transfer inside a step). Modes:

``"precompute"``
    stores the train kernel (n x n) and the test kernel (m x n) in ``dtype``, each built
    chunk by chunk into one host array (peak = kernels + one block); needs
    ``(n + m) n itemsize`` plus one block row under the budget, else ``ValueError``.
``"precompute-train"``
    stores only the train kernel; test metrics are computed chunk by chunk.
``"onthefly"``
    stores no kernel: a batch's kernel rows are computed when needed (and kept for the
    next call with the same batch object, so ``value_and_grad`` then ``value`` on one
    batch computes them once), full-set losses are accumulated chunk by chunk.
``"auto"`` (default)
    keeps one full block of temporaries (128 MiB) spare and fills the rest of the budget
    in order: the train kernel, whole or not at all (batches gather its rows), then as
    many leading rows of the test kernel as fit; the other test rows are computed in
    chunks at each ``test_metrics`` call. ``mode`` reports the outcome
    (``"precompute"``: both whole; ``"precompute-train"``: the train kernel and
    ``test_rows_stored < n_test`` test rows; ``"onthefly"``: no train kernel, possibly
    test rows).

Measured on 2 CPU cores, ijcnn (28,000 train x 7,000 test points; 6.27 + 1.57 GB of
kernels in float64), ``paltest run ijcnn pal``, seconds per epoch (280 PAL steps, one
``train_loss``, one ``test_metrics``) and peak RSS of the process:

* float64, default budget: the test kernel stored, train rows computed per batch:
  about 9 s per epoch, 1.8 GB;
* float64, ``memory_budget=7.75e9``: the train kernel and 6,000 of the 7,000 test rows
  stored (built in about 14 s): about 1.9 s per epoch, 7.9 GB; 35 epochs in 73–85 s;
* float32, ``memory_budget=4.5e9`` (the Figure 9 setting): both kernels stored (3.9 GB):
  about 0.8 s per epoch, 4.1 GB. With a batch's rows gathered into one kept buffer and the
  cheap line's NumPy shortcut (:mod:`problems.host`), 2-epoch runs in one process, the
  shortcuts on and off interleaved: PAL 0.93 s against 1.07 s, SGD 0.81 against 0.98,
  the exact line search 1.52 against 1.83 (the whole epoch, its full-set losses
  included).

All modes agree up to rounding (1e-12 in float64). The stored kernels are built with
BLAS held to one thread in fixed chunks: bitwise independent of the thread count. The
products of a call run at BLAS's own thread count and may differ in the last bits
between counts (two BLAS threads changed 3 of mushrooms' 6,499 gradient entries by
4e-20), which result files record (:func:`paltest.testbed.results.environment`).
``blas_threads=n`` holds BLAS to ``n`` threads during every call (threadpoolctl,
process-wide meanwhile), so the values no longer depend on the setting; ``1`` costs
mushrooms 1.35x per PAL epoch on 2 idle cores.

Example
-------
>>> import numpy as np, tempfile, os
>>> from problems import kernel_logreg
>>> rng = np.random.default_rng(0)
>>> path = os.path.join(tempfile.mkdtemp(), "toy.txt")
>>> with open(path, "w") as f:
...     for i in range(50):
...         _ = f.write(f"{1 + i % 2} 1:{rng.normal():.4f} 2:{rng.normal():.4f}\\n")
>>> p = kernel_logreg.make(path=path, sigma=1.0)
>>> p.n_train, p.mode
(40, 'precompute')
>>> theta = p.init_params(0)
>>> loss, grad = p.value_and_grad(theta, next(p.batches(0, 0, 10)))
>>> grad.shape
(40,)
"""

from __future__ import annotations

import math
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import array_api_compat
import numpy as np

from paltest import backend
from paltest.checks import check_int, check_positive, shown
from problems import host
from problems.base import Problem
from problems.kernel_math import LOG_FLOOR, bce_with_logits, rbf_kernel, sigmoid
from problems.kernel_storage import (
    BLOCK_ENTRIES,
    BYTES_PER_ENTRY,
    CHUNK_ENTRIES,
    MODES,
    blas_limit,
    plan_storage,
)
from problems.lines import KernelLine
from problems.splits import Split, load_split

__all__ = ["BLOCK_ENTRIES", "BYTES_PER_ENTRY", "CHUNK_ENTRIES", "LOG_FLOOR", "MODES",
           "KernelLogReg", "Split", "bce_with_logits", "load_split", "make", "plan_storage",
           "rbf_kernel", "sigmoid"]

#: The largest ``blas_threads`` (BLAS libraries take the count as a C int).
MAX_BLAS_THREADS = 2**31 - 1


class KernelLogReg(Problem):
    """RBF-kernel logistic regression; see the module docstring for math and modes.

    After construction ``mode``, ``test_rows_stored`` and ``kernel_bytes`` say what is
    stored, ``rows_per_block`` and ``rows_per_chunk`` how the rest is computed, and
    ``staged`` whether the budget counted each stored kernel twice (the namespace copies
    the host array it is assembled in: JAX on the CPU).
    ``blas_threads`` (``None``: BLAS's own setting) holds BLAS to that many threads in
    every call, see the module docstring.
    Kernel rows of the last single-block batch are kept and reused when the *same*
    batch array object comes back in the same thread (PAL's ``value_and_grad`` then
    ``value``); do not modify a batch array in place between calls. On NumPy a batch's
    rows of the stored train kernel go into one kept buffer (no fresh 11 MB a step), and
    all kernel rows come from :func:`problems.host.rbf_rows` (``rbf_kernel``'s operations
    in place, cast straight into the stored kernel; the same bits). ``line`` is cheap
    (:class:`problems.lines.KernelLine`: two products, then vector work per step).
    """

    line_class = KernelLine

    def __init__(self, split: Split, *, xp: Any = "numpy", device: Any = None,
                 dtype: Any = "float64", memory_budget: float = 2 * 2**30,
                 mode: str = "auto", blas_threads: int | None = None) -> None:
        if not isinstance(mode, str) or mode not in MODES:
            raise ValueError(f"mode: must be one of {MODES}, got {mode!r}")
        memory_budget = check_positive("memory_budget", memory_budget)
        if split.sigma is None:
            raise ValueError("sigma: required (the RBF width) when path is given")
        self.blas_threads = None if blas_threads is None else check_int(
            "blas_threads", blas_threads, 1)
        if self.blas_threads is not None and self.blas_threads > MAX_BLAS_THREADS:
            raise ValueError(f"blas_threads: at most {MAX_BLAS_THREADS} (BLAS takes a C "
                             f"int), got {shown(blas_threads)}")
        self.xp = xp = backend.resolve_namespace(xp)
        self.dtype = backend.float_dtype(xp, dtype)
        why = backend.float64_unavailable(xp)
        if why is not None:  # a float32 problem still computes its kernels in float64
            raise ValueError(f"xp: the kernel entries are computed in float64 (then cast to "
                             f"{backend.dtype_name(self.dtype)}), which {xp.__name__} "
                             f"cannot do now: {why}")
        self.name, self.sigma = split.name, split.sigma
        n, m = split.X_train.shape[0], split.X_test.shape[0]
        self.n_train = self.n_params = n
        self.n_test = m
        f64 = xp.float64
        self._Xtr = backend.from_host(split.X_train, xp, device=device, dtype=f64)
        self.device = backend.device(self._Xtr)
        put = dict(device=self.device)
        self._Xte = backend.from_host(split.X_test, xp, dtype=f64, **put)
        self._ytr = backend.from_host(split.y_train, xp, dtype=self.dtype, **put)
        self._yte = backend.from_host(split.y_test, xp, dtype=self.dtype, **put)
        self._sq_tr = xp.sum(self._Xtr * self._Xtr, axis=1)
        itemsize = 4 if self.dtype_name == "float32" else 8
        self.memory_budget = float(memory_budget)
        self.staged = backend.copies_host_memory(xp, self.device)
        store_train, self.test_rows_stored, self.rows_per_block = plan_storage(
            n, m, itemsize, self.memory_budget, mode, self.staged)
        self.mode = ("onthefly" if not store_train else
                     "precompute" if self.test_rows_stored == m else "precompute-train")
        self.kernel_bytes = (n * store_train + self.test_rows_stored) * n * itemsize
        self.rows_per_chunk = max(1, min(self.rows_per_block, CHUNK_ENTRIES // n))
        self._cache: tuple[Any, Any, int] | None = None  # (batch, rows, thread)
        self._kept: tuple[int, Any] | None = None  # (thread, buffer) of _gather
        self._threads = min(backend.host_threads(xp),
                            max(1, self.rows_per_block // self.rows_per_chunk))
        self._on_host = backend.on_host(xp)
        self._numpy_rows = type(self._Xtr) is np.ndarray  # problems.host.rbf_rows then
        self._host_blas = (array_api_compat.is_numpy_namespace(xp)
                           or array_api_compat.is_array_api_strict_namespace(xp))
        with blas_limit() if self._host_blas else nullcontext():
            self._K_train = self._rows(self._Xtr) if store_train else None
            self._K_test = (self._rows(self._Xte[: self.test_rows_stored, :])
                            if self.test_rows_stored else None)

    def _blas_limit(self) -> AbstractContextManager:
        """BLAS held to ``blas_threads`` during a call (host namespaces; else nothing)."""
        if self.blas_threads is None or not self._host_blas:
            return nullcontext()
        return blas_limit(self.blas_threads)

    # -- kernel rows -------------------------------------------------------------------
    def _host_rows(self) -> bool:
        """Whether kernel rows come from :func:`problems.host.rbf_rows` (NumPy arrays,
        shortcuts on)."""
        return self._numpy_rows and host.enabled(self.xp)

    def _kernel(self, rows: Any) -> Any:
        if self._host_rows():  # the same operations, in place
            K = host.rbf_rows(rows, self._Xtr, self.sigma, self._sq_tr)
        else:
            K = rbf_kernel(rows, self._Xtr, self.sigma, sq_b=self._sq_tr)
        return self.xp.astype(K, self.dtype, copy=False)

    def _map_chunks(self, X: Any, fn: Any, threaded: bool = True) -> Any:
        """Yield ``fn(rows, X[rows])`` in order over ``X`` in chunks of ``rows_per_chunk``
        (``fn`` computes the chunk's kernel rows, :meth:`_kernel`).

        With ``threaded`` on the host the chunks run on up to
        :func:`paltest.backend.host_threads` threads (at most as many as one block's
        temporaries allow; BLAS held to one thread meanwhile), with no more chunks in
        flight than threads. ``fn`` runs in the worker with the chunk, so the chunk is
        allocated and freed on one thread (the allocator then reuses its memory;
        measured on ijcnn: freeing on another thread raised the page faults sixfold and
        the build from 15 s to 26 s). Every chunk is computed by the same code, so the
        values do not depend on the thread count.

        Batches are not threaded: the calling thread reads their rows three times, and
        rows written by another core came back slower than they took to compute
        (measured: 16 ms per 100-row batch on one thread, 21 ms on two).
        """
        c, n = self.rows_per_chunk, X.shape[0]
        parts = [slice(i, min(i + c, n)) for i in range(0, n, c)]
        threads = min(self._threads, len(parts)) if threaded else 1
        if threads < 2:
            for s in parts:
                yield fn(s, X[s, :])
            return

        def work(s: slice) -> Any:
            return fn(s, X[s, :])

        with blas_limit(), ThreadPoolExecutor(threads) as pool:
            pending: deque = deque()
            for s in parts:
                pending.append(pool.submit(work, s))
                if len(pending) == threads:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

    def _rows(self, X: Any, threaded: bool = True) -> Any:
        """The kernel rows of all of ``X`` as one new array, assembled on the host.

        The chunks are computed by the namespace (on its device), copied into one host
        (NumPy) array and moved to the namespace once, so no array of the namespace is
        ever written in place (JAX's cannot be). On NumPy the host array is the result:
        no copy and no transfer, as fast as writing into the array itself.
        """
        buf = np.empty((X.shape[0], self.n_train), dtype=self.dtype_name)

        def put(s: slice, x: Any) -> None:
            if self._host_rows():  # cast straight into the buffer
                host.rbf_rows(x, self._Xtr, self.sigma, self._sq_tr, out=buf[s, :])
            else:
                buf[s, :] = backend.to_host(self._kernel(x))

        for _ in self._map_chunks(X, put, threaded):
            pass
        return backend.from_host(buf, self.xp, device=self.device)

    def _batch_rows(self, X: Any) -> Any:
        """A batch's kernel rows inside a step: on NumPy assembled on the host (see
        :meth:`_rows`); elsewhere the chunks are joined on the device (one block's
        temporaries: no host transfer, no synchronization)."""
        if self._on_host:
            return self._rows(X, threaded=False)
        parts = [k for k in self._map_chunks(X, lambda s, x: self._kernel(x), threaded=False)]
        return parts[0] if len(parts) == 1 else self.xp.concat(parts, axis=0)

    def _logits(self, which: str, theta: Any) -> Any:
        """Yield ``(z, y)`` over the whole train or test set: stored rows, then computed."""
        xp, r = self.xp, self.rows_per_block
        if which == "test":
            X, y, K = self._Xte, self._yte, self._K_test
        else:
            X, y, K = self._Xtr, self._ytr, self._K_train
        stored = 0 if K is None else K.shape[0]
        for i in range(0, stored, r):
            s = slice(i, min(i + r, stored))
            yield xp.matmul(K[s, :], theta), y[s]
        for s, z in self._map_chunks(X[stored:, :],
                                     lambda s, x: (s, xp.matmul(self._kernel(x), theta))):
            yield z, y[stored + s.start : stored + s.stop]

    def _batch_blocks(self, idx: Any) -> Any:
        """Yield ``(K_rows, y_rows)`` over a train batch, in blocks of ``rows_per_block``.

        A single-block batch's rows are kept for the next call of the same thread with
        the same batch object. On NumPy the blocks are gathered into one buffer kept per
        problem (:func:`problems.host.take_rows`), which only the thread that made it
        writes: a block is valid until the next one is yielded or the next batch comes.
        """
        xp, r, K, n = self.xp, self.rows_per_block, self._K_train, idx.shape[0]
        me, cache = threading.get_ident(), self._cache
        if n <= r and cache is not None and cache[0] is idx and cache[2] == me:
            yield cache[1], xp.take(self._ytr, idx)
            return
        self._cache = None  # its rows may be in the kept buffer, written below
        for i in range(0, n, r):
            j = idx[i : min(i + r, n)]
            rows = self._gather(j, me) if K is not None else \
                self._batch_rows(xp.take(self._Xtr, j, axis=0))
            if n <= r:  # one block: keep it for the next call with this batch object
                self._cache = (idx, rows, me)
            yield rows, xp.take(self._ytr, j)

    def _gather(self, idx: Any, me: int) -> Any:
        """The stored train kernel's rows ``idx``: on NumPy into the buffer of thread
        ``me`` (made, or replaced, for another thread or shape), elsewhere ``take``."""
        K, kept = self._K_train, self._kept
        if host.enabled(self.xp):
            rows = host.take_rows(K, idx, kept[1] if kept and kept[0] == me else None)
            if rows is not None:
                self._kept = (me, rows)
                return rows
        return self.xp.take(K, idx, axis=0)

    def _loss(self, theta: Any, batch: Any, grad: bool) -> Any:
        xp = self.xp
        total = xp.zeros((), dtype=self.dtype, device=self.device)
        g = xp.zeros_like(theta) if grad else None
        for K, y in self._batch_blocks(batch):
            z = xp.matmul(K, theta)
            total = total + xp.sum(bce_with_logits(z, y))
            if grad:
                g = g + xp.matmul(sigmoid(z) - y, K)
        count = batch.shape[0]
        return (total / count, g / count) if grad else total / count

    def _check(self, theta: Any, batch: Any) -> None:
        backend.check_params(theta)
        if theta.shape[0] != self.n_params or theta.dtype != self.dtype:
            raise ValueError(f"theta: expected shape ({self.n_params},) {self.dtype_name}, "
                             f"got {tuple(theta.shape)} {theta.dtype}")
        self.check_batch(batch)

    # -- protocol ----------------------------------------------------------------------
    def init_params(self, seed: int) -> Any:
        """``U(-1/sqrt(n), 1/sqrt(n))`` drawn on the host with ``default_rng(seed)``."""
        bound = 1.0 / math.sqrt(self.n_train)
        theta = np.random.default_rng(check_int("seed", seed)).uniform(-bound, bound,
                                                                         self.n_train)
        return backend.from_host(theta, self.xp, device=self.device, dtype=self.dtype)

    def value(self, theta: Any, batch: Any) -> Any:
        self._check(theta, batch)
        with self._blas_limit():
            return self._loss(theta, batch, False)

    def value_and_grad(self, theta: Any, batch: Any) -> tuple[Any, Any]:
        self._check(theta, batch)
        with self._blas_limit():
            return self._loss(theta, batch, True)

    def train_loss(self, theta: Any) -> Any:
        backend.check_params(theta)
        total = self.xp.zeros((), dtype=self.dtype, device=self.device)
        with self._blas_limit():
            for z, y in self._logits("train", theta):
                total = total + self.xp.sum(bce_with_logits(z, y))
        return total / self.n_train

    def test_metrics(self, theta: Any) -> dict[str, Any]:
        """``test_loss`` (mean cross-entropy) and ``test_accuracy`` (``z > 0`` means 1)."""
        xp = self.xp
        backend.check_params(theta)
        loss = xp.zeros((), dtype=self.dtype, device=self.device)
        hits = xp.zeros((), dtype=self.dtype, device=self.device)
        with self._blas_limit():
            for z, y in self._logits("test", theta):
                loss = loss + xp.sum(bce_with_logits(z, y))
                hits = hits + xp.sum(xp.astype((z > 0) == (y > 0.5), self.dtype))
        return {"test_loss": loss / self.n_test, "test_accuracy": hits / self.n_test}


def make(*, dataset: str | None = None, path: Any = None, test_path: Any = None,
         sigma: float | None = None, n_rows: int | None = None, xp: Any = "numpy",
         device: Any = None, dtype: Any = "float64", memory_budget: float = 2 * 2**30,
         mode: str = "auto", data_dir: Any = None, base_url: str | None = None,
         download: bool = True, blas_threads: int | None = None) -> KernelLogReg:
    """Build the problem: :func:`load_split` then :class:`KernelLogReg` (see the module)."""
    if not isinstance(mode, str) or mode not in MODES:  # fail before loading data
        raise ValueError(f"mode: must be one of {MODES}, got {mode!r}")
    memory_budget = check_positive("memory_budget", memory_budget)
    if blas_threads is not None and check_int("blas_threads", blas_threads, 1) \
            > MAX_BLAS_THREADS:  # fail before loading data
        raise ValueError(f"blas_threads: at most {MAX_BLAS_THREADS} (BLAS takes a C int), "
                         f"got {shown(blas_threads)}")
    split = load_split(dataset=dataset, path=path, test_path=test_path, n_rows=n_rows,
                       sigma=sigma, data_dir=data_dir, base_url=base_url,
                       download=download)
    return KernelLogReg(split, xp=xp, device=device, dtype=dtype,
                        memory_budget=memory_budget, mode=mode, blas_threads=blas_threads)
