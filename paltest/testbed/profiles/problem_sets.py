"""Problem sets of the profiles: the curated default CUTEst subset, a tiny one, and more.

``cutest_catalog.csv`` (shipped beside this module) lists every unconstrained problem of
sif2jax 0.0.8 at its default parameters with what ``benchmarks/cutest_catalog.py``
measured (float64, NumPy host wrapper, one fresh process per problem, on a shared
2-core machine): the dimension ``n``, the seconds to import and build it and to compile
``value_and_grad``, the microseconds of one further ``value_and_grad`` call, whether the
start's value and gradient are finite, and the status (``ok``, an error, or a timeout
after 60 s in all).

**The default set** (:data:`DEFAULT`) is chosen from it by these rules, in this order
(:func:`select` applies them to any catalog):

1. the problem built and ran in the catalog (status ``ok``) with a finite start;
2. dimension ``2 <= n <= 1000`` (sif2jax's default size: variable-dimension problems
   whose default is larger are left out rather than resized, so every problem is the
   collection's own);
3. one ``value_and_grad`` call at most 1 ms and the compilation of both functions at
   most 10 s, so that a run of 5000 evaluations stays within seconds.

On the shipped catalog these give 131 of the 197 problems (rule 2 removes 66, all larger
than 1000; rule 3 removes none: the slowest call kept is 0.66 ms,
DMN15103LS); `paltest profile` on it with its 11 default solvers is 1441 runs, the
notebook's 28 solvers 3668.

``TINY`` is a handful of small classical problems for CI and smoke tests (a few seconds).
``"all"`` is every problem of the catalog with status ``ok`` (hours at the default
budget). Any list of problem names is accepted too (``cutest:NAME`` for any sif2jax
unconstrained problem, with no catalog needed, or any registered full-batch problem).

>>> "cutest:ROSENBR" in DEFAULT and "cutest:ROSENBR" in TINY
True
>>> resolve("tiny") == list(TINY)
True
"""

from __future__ import annotations

import csv
import functools
from importlib import resources
from typing import Any

__all__ = ["CATALOG", "DEFAULT", "RULES", "TINY", "catalog", "resolve", "select", "sizes"]

#: The catalog file shipped with the package.
CATALOG = "cutest_catalog.csv"
#: The selection rules of :data:`DEFAULT` (see the module docstring).
RULES = {"min_n": 2, "max_n": 1000, "max_vg_us": 1000.0, "max_compile_s": 10.0}

#: Small classical problems for CI and smoke tests.
TINY = ("cutest:ROSENBR", "cutest:BEALE", "cutest:DENSCHNA", "cutest:HILBERTA")

#: The curated default subset (:func:`select` on the shipped catalog, frozen here so that
#: a new catalog does not change it silently; a test checks the two agree).
DEFAULT: tuple[str, ...] = (
    "cutest:AKIVA", "cutest:ALLINITU", "cutest:ARGLINA", "cutest:ARGLINB", "cutest:ARGLINC",
    "cutest:ARGTRIGLS", "cutest:BARD", "cutest:BEALE", "cutest:BENNETT5LS", "cutest:BIGGS6",
    "cutest:BOX3", "cutest:BOXBODLS", "cutest:BROWNBS", "cutest:BROWNDEN",
    "cutest:CHNROSNB", "cutest:CHNRSNBM", "cutest:CHWIRUT1LS", "cutest:CHWIRUT2LS",
    "cutest:CLIFF", "cutest:CLUSTERLS", "cutest:COATING", "cutest:COOLHANSLS",
    "cutest:CUBE", "cutest:DANIWOODLS", "cutest:DENSCHNA", "cutest:DENSCHNB",
    "cutest:DENSCHNC", "cutest:DENSCHND", "cutest:DENSCHNE", "cutest:DENSCHNF",
    "cutest:DEVGLA1", "cutest:DEVGLA2", "cutest:DMN15102LS", "cutest:DMN15103LS",
    "cutest:DIXMAANA1", "cutest:DJTL", "cutest:EG2", "cutest:EGGCRATE", "cutest:ELATVIDU",
    "cutest:ENGVAL2", "cutest:ERRINROS", "cutest:EXP2", "cutest:EXPFIT", "cutest:FLETCHCR",
    "cutest:GAUSS1LS", "cutest:GAUSS2LS", "cutest:GAUSS3LS", "cutest:GAUSSIAN",
    "cutest:GENROSE", "cutest:GROWTHLS", "cutest:HAHN1LS", "cutest:HAIRY", "cutest:HATFLDD",
    "cutest:HATFLDE", "cutest:HATFLDFL", "cutest:HATFLDFLS", "cutest:HEART6LS",
    "cutest:HEART8LS", "cutest:HELIX", "cutest:HILBERTA", "cutest:HILBERTB",
    "cutest:HIMMELBCLS", "cutest:HIMMELBG", "cutest:HIMMELBH", "cutest:HUMPS",
    "cutest:INTEQNELS", "cutest:JENSMP", "cutest:JUDGE", "cutest:KIRBY2LS", "cutest:KOWOSB",
    "cutest:LANCZOS1LS", "cutest:LANCZOS2LS", "cutest:LOGHAIRY", "cutest:LSC1LS",
    "cutest:LSC2LS", "cutest:LUKSAN11LS", "cutest:LUKSAN12LS", "cutest:LUKSAN13LS",
    "cutest:LUKSAN14LS", "cutest:LUKSAN15LS", "cutest:LUKSAN16LS", "cutest:LUKSAN17LS",
    "cutest:LUKSAN21LS", "cutest:MARATOSB", "cutest:MEXHAT", "cutest:MGH09LS",
    "cutest:MGH10LS", "cutest:MGH10SLS", "cutest:MGH17LS", "cutest:MGH17SLS",
    "cutest:MISRA1ALS", "cutest:MISRA1BLS", "cutest:MISRA1CLS", "cutest:MISRA1DLS",
    "cutest:NELSONLS", "cutest:OSBORNEA", "cutest:OSBORNEB", "cutest:PALMER1C",
    "cutest:PALMER1D", "cutest:PALMER2C", "cutest:PALMER3C", "cutest:PALMER4C",
    "cutest:PALMER5C", "cutest:PALMER5D", "cutest:PALMER6C", "cutest:PALMER7C",
    "cutest:PALMER8C", "cutest:PENALTY3", "cutest:POWERSUM", "cutest:PRICE3",
    "cutest:PRICE4", "cutest:QING", "cutest:RAT42LS", "cutest:RAT43LS", "cutest:ROSENBR",
    "cutest:ROSZMAN1LS", "cutest:S308", "cutest:SISSER", "cutest:SNAIL", "cutest:SPIN2LS",
    "cutest:TENFOLDTRLS", "cutest:WAYSEA1", "cutest:WAYSEA2", "cutest:ZANGWIL2",
    "cutest:TRIGON1", "cutest:VANDANMSLS", "cutest:VARDIM", "cutest:VESUVIALS",
    "cutest:VIBRBEAM", "cutest:VESUVIOLS", "cutest:VESUVIOULS",
)


@functools.cache
def catalog() -> tuple[dict[str, Any], ...]:
    """The rows of the shipped catalog (numbers converted; empty cells are ``None``)."""
    text = resources.files("paltest.testbed.profiles").joinpath(CATALOG).read_text("utf-8")
    rows = []
    for row in csv.DictReader(text.splitlines()):
        out: dict[str, Any] = {}
        for k, v in row.items():
            if v in ("", None):
                out[k] = None
            elif k in ("n",):
                out[k] = int(float(v))
            elif k in ("variable_n", "finite_start"):
                out[k] = v == "True"
            elif k in ("name", "status"):
                out[k] = v
            else:
                out[k] = float(v)
        rows.append(out)
    return tuple(rows)


def select(rows: Any = None, *, min_n: int = RULES["min_n"], max_n: int = RULES["max_n"],
           max_vg_us: float = RULES["max_vg_us"],
           max_compile_s: float = RULES["max_compile_s"]) -> list[str]:
    """The names (``cutest:NAME``) of the catalog ``rows`` (default: the shipped one)
    that pass the rules of the module docstring, in catalog order."""
    rows = catalog() if rows is None else rows
    out = []
    for r in rows:
        if r.get("status") != "ok" or not r.get("finite_start"):
            continue
        if not (min_n <= r["n"] <= max_n):
            continue
        if r["vg_us"] > max_vg_us or r["compile_vg_s"] + r["compile_f_s"] > max_compile_s:
            continue
        out.append(f"cutest:{r['name']}")
    return out


def sizes(names: list[str]) -> dict[str, int]:
    """``{name: n}`` for the catalog's problems among ``names`` (others are left out)."""
    known = {f"cutest:{r['name']}": r["n"] for r in catalog() if r.get("n") is not None}
    return {n: known[n] for n in names if n in known}


def resolve(spec: Any) -> list[str]:
    """The problem names of ``spec``: ``"default"``, ``"tiny"``, ``"all"``, a
    comma-separated string or a list of names (checked to be problem names: a
    ``cutest:`` name or a registered problem)."""
    if isinstance(spec, str):
        if spec == "default":
            return list(DEFAULT)
        if spec == "tiny":
            return list(TINY)
        if spec == "all":
            return [f"cutest:{r['name']}" for r in catalog() if r.get("status") == "ok"]
        spec = [s.strip() for s in spec.split(",") if s.strip()]
    if not isinstance(spec, (list, tuple)) or not spec:
        raise ValueError(f"problems: expected 'default', 'tiny', 'all' or a list of names, "
                         f"got {spec!r}")
    import problems

    bad = [s for s in spec if not isinstance(s, str) or not (
        s.startswith("cutest:") or s in problems.names())]
    if bad:
        raise ValueError(f"problems: unknown {bad}; use cutest:NAME or one of "
                         f"{problems.names()}")
    if len(set(spec)) != len(spec):
        raise ValueError("problems: a name is given more than once")
    return list(spec)
