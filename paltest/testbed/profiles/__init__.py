"""Performance and data profiles of solvers on full-batch problems (CUTEst via sif2jax).

* :mod:`.problem_sets` - the curated default CUTEst subset, its rules, a tiny set;
* :mod:`.solvers` - the solvers (PAL variants, the exact search, SLS, SciPy's methods)
  and one run with evaluations counted the same way for all;
* :mod:`.convergence` - the convergence tests;
* :mod:`.runs` - the runs in parallel, resumable, and the tidy table;
* :mod:`.profiles` - Dolan–Moré performance profiles, Moré–Wild data profiles, summary;
* :mod:`.drawing` - the plots;
* :mod:`.experiment` - :func:`profile`, all of it (``paltest profile``).
"""

from paltest.testbed.profiles.experiment import DEFAULT_SOLVERS, ProfileResult, profile

__all__ = ["DEFAULT_SOLVERS", "ProfileResult", "profile"]
