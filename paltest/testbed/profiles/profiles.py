r"""Dolan–Moré performance profiles and Moré–Wild data profiles, and their summary.

Both start from the cost :math:`t_{p,s}` of solver :math:`s` on problem :math:`p`: the
evaluations it needed to pass the convergence test (:mod:`.convergence`), :math:`\infty`
when it did not within the budget. With :math:`P` the problems,

* the **performance profile** (Dolan & Moré 2002) is the fraction of problems solved
  within a factor :math:`\tau` of the best solver's cost,

  .. math:: \rho_s(\tau) = \frac{1}{|P|}\,\bigl|\{p : t_{p,s} \le \tau\,
            \min_{s'} t_{p,s'}\}\bigr|,

  so :math:`\rho_s(1)` is the fraction of problems on which :math:`s` was (one of) the
  fastest and :math:`\rho_s(\infty)` its solved fraction (problems no solver solved
  count against every solver);
* the **data profile** (Moré & Wild 2009) is the fraction solved within a budget of
  :math:`\kappa` evaluations, :math:`d_s(\kappa) = |\{p : t_{p,s} \le \kappa\}|/|P|`
  (Moré & Wild count :math:`\kappa` in simplex gradients, :math:`n_p + 1` function
  values, for derivative-free methods; here every solver has gradients, so
  :math:`\kappa` is in evaluations: ``per_dimension=True`` divides by :math:`n_p + 1`).

Example:
    >>> import numpy as np, pandas as pd
    >>> cost = pd.DataFrame({"a": [10.0, 40.0], "b": [20.0, np.inf]}, index=["p", "q"])
    >>> performance_profile(cost, [1.0, 2.0]).to_dict("list")
    {'a': [1.0, 1.0], 'b': [0.0, 0.5]}
    >>> data_profile(cost, [15.0, 50.0]).to_dict("list")
    {'a': [0.5, 1.0], 'b': [0.0, 0.5]}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["data_profile", "performance_profile", "ratios", "summary"]


def ratios(cost: Any) -> Any:
    """Performance ratios :math:`t_{p,s}/\\min_{s'} t_{p,s'}` (``inf`` where unsolved;
    a problem no solver solved is ``inf`` everywhere)."""
    import pandas as pd

    c = cost.to_numpy(dtype=np.float64)
    best = c.min(axis=1, initial=np.inf, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(np.isfinite(best) & np.isfinite(c), c / best, np.inf)
    return pd.DataFrame(r, index=cost.index, columns=cost.columns)


def performance_profile(cost: Any, taus: Sequence[float]) -> Any:
    """:math:`\\rho_s(\\tau)` for each ``tau`` (rows) and solver (columns) of ``cost``
    (a DataFrame: problems x solvers)."""
    import pandas as pd

    r = ratios(cost).to_numpy()
    taus = np.asarray(taus, dtype=np.float64)
    data = (r[None, :, :] <= taus[:, None, None]).mean(axis=1)
    return pd.DataFrame(data, index=pd.Index(taus, name="tau"), columns=cost.columns)


def data_profile(cost: Any, kappas: Sequence[float], dims: Any = None) -> Any:
    """:math:`d_s(\\kappa)` for each ``kappa`` (rows) and solver (columns); with ``dims``
    (a Series of :math:`n_p` by problem) the cost is counted in units of
    :math:`n_p + 1` evaluations."""
    import pandas as pd

    c = cost if dims is None else cost.div(dims.reindex(cost.index) + 1.0, axis=0)
    k = np.asarray(kappas, dtype=np.float64)
    data = (c.to_numpy()[None, :, :] <= k[:, None, None]).mean(axis=1)
    return pd.DataFrame(data, index=pd.Index(k, name="kappa"), columns=cost.columns)


def summary(cost: Any, taus: Sequence[float] = (1.0, 10.0)) -> Any:
    """One row per solver: ``solved`` (fraction of problems), ``rho_<tau>`` for each
    ``tau``, and ``median_evaluations`` over the problems it solved; sorted by
    ``solved``, then ``rho_1``.

    >>> import numpy as np, pandas as pd
    >>> cost = pd.DataFrame({"a": [10.0, 40.0], "b": [20.0, np.inf]}, index=["p", "q"])
    >>> summary(cost)["solved"].to_dict()
    {'a': 1.0, 'b': 0.5}
    """
    import pandas as pd

    prof = performance_profile(cost, list(taus))
    out = pd.DataFrame({"solved": np.isfinite(cost.to_numpy()).mean(axis=0)},
                       index=cost.columns)
    for tau in taus:
        out[f"rho_{tau:g}"] = prof.loc[tau].to_numpy()
    finite = cost.where(np.isfinite(cost.to_numpy()))
    out["median_evaluations"] = finite.median(axis=0).to_numpy()
    out.index.name = "solver"
    keys = ["solved"] + ([f"rho_{taus[0]:g}"] if taus else [])
    return out.sort_values(keys, ascending=False, kind="stable")
