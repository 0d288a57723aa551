"""Kernel storage for :mod:`problems.kernel_logreg`: what to keep under a memory budget,
how large the computed blocks and chunks are, and holding BLAS to a thread count.

:func:`plan_storage` applies the rule of the ``memory_budget`` option (see
:mod:`problems.kernel_logreg`, "Memory" and the modes): stored kernels plus temporaries,
counted as :data:`BYTES_PER_ENTRY` bytes per kernel entry in flight for a block of at
most :data:`BLOCK_ENTRIES` entries; entries are computed :data:`CHUNK_ENTRIES` at a time.

>>> plan_storage(1000, 250, 8, 2 * 2**30, "auto")
(True, 250, 1000)
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from threadpoolctl import ThreadpoolController

__all__ = ["BLOCK_ENTRIES", "BYTES_PER_ENTRY", "CHUNK_ENTRIES", "MODES", "blas_limit",
           "plan_storage"]

MODES = ("auto", "precompute", "precompute-train", "onthefly")
#: Bytes of temporaries per kernel entry computed in a block (four float64 arrays).
BYTES_PER_ENTRY = 32
#: Kernel entries per block at most (32 MiB of float64), for cache and allocator reuse.
BLOCK_ENTRIES = 2**22
#: Kernel entries computed at once (float64 temporaries under 4 MiB): NumPy gives
#: larger arrays huge pages, and the allocator returns freed ones to the system, so
#: each larger block was faulted in afresh (measured: 2x the time per entry).
CHUNK_ENTRIES = 500_000


_CONTROLLER: ThreadpoolController | None = None


def blas_limit(threads: int = 1) -> AbstractContextManager:
    """Hold BLAS to ``threads`` threads (one while kernel chunks run on several host
    threads: no oversubscription, and values independent of the thread count)."""
    global _CONTROLLER
    if _CONTROLLER is None:  # finding the loaded BLAS libraries once costs ~1 ms
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=threads, user_api="blas")


def plan_storage(n_train: int, n_test: int, itemsize: int, budget: float, mode: str,
                 staged: bool = False) -> tuple[bool, int, int]:
    """``(store_train, test_rows_stored, rows_per_block)`` for ``mode`` under ``budget``.

    See the module docstring for the rule. ``staged``: the namespace copies host arrays
    into other host memory (JAX on the CPU, :func:`paltest.backend.copies_host_memory`),
    so a stored kernel is held twice while it moves from its host array, and counts
    twice. Raises ``ValueError`` (naming ``memory_budget``) when an explicit precompute
    mode does not fit.
    """
    if not isinstance(mode, str) or mode not in MODES:
        raise ValueError(f"mode: must be one of {MODES}, got {mode!r}")
    copies = 2 if staged else 1
    row_cost = BYTES_PER_ENTRY * n_train
    row_b = n_train * itemsize
    train_b = n_train * row_b
    if mode == "auto":
        spare = max(row_cost, BLOCK_ENTRIES * BYTES_PER_ENTRY)
        store_train = copies * train_b + spare <= budget
        left = budget - spare - train_b * store_train
        test_rows = int(min(n_test, max(0, left // (copies * row_b))))
    else:
        store_train = mode in ("precompute", "precompute-train")
        test_rows = n_test if mode == "precompute" else 0
        need = train_b * store_train + test_rows * row_b
        peak = need + (copies - 1) * max(train_b * store_train, test_rows * row_b)
        if store_train and peak + row_cost > budget:
            twice = " (each held twice while it is moved)" if staged else ""
            raise ValueError(
                f"memory_budget: mode {mode!r} stores {need / 1e9:.2f} GB of kernels"
                f"{twice} plus temporaries, over the budget {budget / 1e9:.2f} GB; raise "
                "memory_budget or use mode='onthefly'")
    left = budget - train_b * store_train - test_rows * row_b
    rows = int(max(1, min(n_train, left // row_cost, BLOCK_ENTRIES // n_train)))
    return store_train, test_rows, rows
