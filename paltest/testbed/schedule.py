"""The order of a round of runs on a pool of workers: longest first, idle time filled
(used by :mod:`paltest.testbed.experiments`).

:func:`paltest.testbed.sweep.run_configs` hands its runs to joblib in order, and joblib
starts each on the first worker that is free (list scheduling). A round lasts as long as
its busiest worker. When runs differ in length (Figure 9: a mushrooms run takes 1-3 s,
an ijcnn run 13-35 s) a round in problem order can end with one long run while the
other workers wait, and counting runs does not see it. So a round is put longest first
(Graham's LPT rule: at most 4/3 of the shortest possible round), and runs that do not
depend on the round (the *fillers*) join it where they use its idle time: a filler is
taken when the simulated round grows by less than its share of one worker's time
(its length divided by the workers: what it costs later if it then packs perfectly),
so a filler that fits into the idle time, which costs nothing, is always taken.

The lengths are estimates (:class:`Estimates`): the measured seconds of earlier runs of
the same problem and optimizer, else the mean of the problem's measured runs, else of
all measured runs, else one unit. With nothing measured yet every run counts the same,
and a round takes as many fillers as it leaves workers idle at its end. The order
changes no run and no file, only when each one runs.

Example:
    >>> est = Estimates()
    >>> est.add({"problem": "big", "optimizer": "sgd"}, 10.0)
    >>> est.add({"problem": "small", "optimizer": "sgd"}, 1.0)
    >>> todo = [{"problem": "small", "optimizer": "sgd"}] * 2 + \\
    ...     [{"problem": "big", "optimizer": "sgd"}] * 3
    >>> free = [{"problem": "small", "optimizer": "sls"}] * 9
    >>> ordered = order_round(todo, free, 2, est)
    >>> [c["problem"] for c in ordered][:4], len(ordered), len(free)
    (['big', 'big', 'big', 'small'], 13, 1)
    >>> makespan([est(c) for c in ordered], 2)  # 20 s with 8 fillers, as without them
    20.0
"""

from __future__ import annotations

import heapq
import math
from typing import Any

__all__ = ["Estimates", "longest_first", "makespan", "order_round", "workers"]


def workers(jobs: dict) -> int:
    """How many runs ``run_configs`` runs at once with ``jobs`` (its ``n_jobs`` and
    ``backend``; 1 when joblib cannot say, e.g. a Dask backend without a client).

    >>> workers({"backend": "sequential", "n_jobs": 4})
    1
    """
    import joblib

    try:
        with joblib.parallel_config(backend=jobs["backend"]):
            return max(1, int(joblib.effective_n_jobs(jobs["n_jobs"])))
    except Exception:  # no filling, no reordering
        return 1


class Estimates:
    """Seconds per run, learned from measured runs (see the module)."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str], list[float]] = {}
        self._memo: dict[tuple[str, str], float] = {}

    def add(self, config: dict[str, Any], seconds: Any) -> None:
        """Record that a run of ``config``'s problem and optimizer took ``seconds``
        (ignored unless a finite number >= 0, e.g. a result file without timings)."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            return
        if math.isfinite(seconds) and seconds >= 0:
            key = (config["problem"], config["optimizer"])
            self._by_key.setdefault(key, []).append(float(seconds))
            self._memo.clear()

    def __call__(self, config: dict[str, Any]) -> float:
        """The estimate for ``config``: the mean of its problem and optimizer's measured
        runs, else of its problem's, else of all, else 1.0."""
        key = (config["problem"], config["optimizer"])
        if key not in self._memo:
            self._memo[key] = self._mean(key)
        return self._memo[key]

    def _mean(self, key: tuple[str, str]) -> float:
        for pick in (lambda k: k == key, lambda k: k[0] == key[0], lambda k: True):
            seen = [s for k, v in self._by_key.items() if pick(k) for s in v]
            if seen:
                return sum(seen) / len(seen)
        return 1.0


def makespan(times: list[float], n_workers: int) -> float:
    """The length of a round that starts ``times`` in this order, each on the first
    worker free (list scheduling on ``n_workers``)."""
    loads = [0.0] * max(1, n_workers)
    for t in times:
        heapq.heapreplace(loads, loads[0] + t)
    return max(loads)


def longest_first(configs: list[dict[str, Any]], estimate: Any) -> list[dict[str, Any]]:
    """``configs`` by ``estimate(config)``, longest first (ties keep their order)."""
    times = [estimate(c) for c in configs]
    return [configs[i] for i in sorted(range(len(configs)), key=lambda i: -times[i])]


def order_round(todo: list[dict[str, Any]], free: list[dict[str, Any]], n_workers: int,
                estimate: Any, prefer: str | None = None) -> list[dict[str, Any]]:
    """The round's runs: ``todo`` plus the fillers taken out of ``free`` (removed from
    it), longest first (see the module).

    Fillers are tried longest first (among equals those of problem ``prefer`` first, then
    in their order), and each is taken when the simulated round with it is longer by
    less than its length divided by ``n_workers`` (or not longer at all). With one
    worker nothing is taken and ``todo`` keeps its order.
    """
    if n_workers < 2 or not todo:
        return list(todo)
    runs = [(-estimate(c), k, c) for k, c in enumerate(todo)]  # (key of the order, ...)
    runs.sort(key=lambda r: r[:2])
    span = makespan([-r[0] for r in runs], n_workers)
    times = [estimate(c) for c in free]
    order = sorted(range(len(free)), key=lambda i: (-times[i],
                                                    free[i]["problem"] != prefer, i))
    taken = []
    for i in order:
        trial = sorted(runs + [(-times[i], len(todo) + i, free[i])], key=lambda r: r[:2])
        longer = makespan([-r[0] for r in trial], n_workers)
        if longer <= span * (1 + 1e-12) or longer - span < times[i] / n_workers:
            runs, span = trial, longer
            taken.append(i)
    for i in sorted(taken, reverse=True):
        del free[i]
    return [c for _, _, c in runs]
