"""A claim as a record: :class:`Claim`, its verdict from its tests, its JSON and the
Markdown report (shared by :mod:`paltest.testbed.claims`, Section 7, and
:mod:`paltest.testbed.line_claims`, Sections 3 and 6).

A claim's verdict is one of :data:`HOLDS`, :data:`FAILS`, :data:`INCONCLUSIVE` (an
interval of a test straddles its threshold, :mod:`paltest.testbed.uncertainty`) or
:data:`NOT_MEASURABLE` (the runs are not at the protocol's scale, or a needed run or
line is missing). A conclusive verdict whose threshold lies close enough to the estimate
that a rerun may decide it otherwise is *borderline* (:func:`borderline`; its reason and
the report say so). :func:`from_json` reads a claim back from ``claims.json``, so a
report can be compared with a fresh run (:func:`compare`: estimates within the range a
rerun is expected in, no verdict reversed, other changes only on borderline tests).

Example:
    >>> from paltest.testbed import uncertainty as unc
    >>> iv = unc.Interval(0.9, 0.85, 0.95, 0.95, "seeds and lines", 5, 500)
    >>> c = Claim("1-convex/p", 1, "p", "mostly convex", "fraction >= 0.8", HOLDS,
    ...           tests=[unc.test("convex fraction", iv, ">=", 0.8)])
    >>> from_json(c.to_json()) == c
    True
    >>> print(to_markdown([c], "T").splitlines()[10])
    | convex fraction | 0.9 [0.85, 0.95] | 5 seeds, 500 lines | >= 0.8 | holds |
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from paltest.testbed import uncertainty as unc
from paltest.testbed.uncertainty import FAILS, HOLDS, INCONCLUSIVE

__all__ = ["BORDER_FACTOR", "FAILS", "HOLDS", "INCONCLUSIVE", "NOT_MEASURABLE",
           "RERUN_FACTOR", "Claim", "borderline", "compare", "fmt", "from_json",
           "interval_text", "median", "rerun_range", "to_markdown", "verdict_of"]

NOT_MEASURABLE = "not measurable at this scale"


@dataclass
class Claim:
    """One statement on one panel: ``id`` (e.g. ``"8-floor/mf-rank4"``), ``figure``,
    ``problem``, the paper's ``statement``, the ``test`` applied, the ``verdict``, a
    ``reason`` when not measurable or inconclusive, the ``numbers`` per optimizer, the
    ``seeds`` and the ``tests`` (:class:`paltest.testbed.uncertainty.Test`: each
    statistic with its interval, threshold and verdict)."""

    id: str
    figure: int
    problem: str
    statement: str
    test: str
    verdict: str
    reason: str = ""
    numbers: dict[str, Any] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=list)
    tests: list[unc.Test] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (non-finite numbers as strings ``"inf"``/``"nan"``; the
        tests' intervals inline)."""
        d = asdict(self)
        d["tests"] = [t.to_json() for t in self.tests]
        return _jsonable(d)


def _number(v: Any) -> float:
    return float(v)  # "inf", "-inf", "nan" and numbers alike


def from_json(d: dict[str, Any]) -> Claim:
    """The :class:`Claim` of :meth:`Claim.to_json` (``numbers`` as stored, the tests'
    numbers as floats)."""
    tests = []
    for t in d.get("tests", []):
        iv = unc.Interval(_number(t["estimate"]), _number(t["low"]), _number(t["high"]),
                          _number(t["confidence"]), t["resampled"], int(t["n_seeds"]),
                          int(t["n_items"]))
        tests.append(unc.Test(t["statistic"], t["op"], _number(t["threshold"]), iv,
                              t["verdict"]))
    return Claim(d["id"], int(d["figure"]), d["problem"], d["statement"], d["test"],
                 d["verdict"], d.get("reason", ""), d.get("numbers", {}),
                 list(d.get("seeds", [])), tests)


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if hasattr(v, "item") and getattr(v, "shape", None) == ():
        v = v.item()
    if isinstance(v, float) and abs(v) >= unc.BIG:  # a resampled infinity
        v = math.copysign(math.inf, v)
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return v


def median(values: Any) -> float:
    """The median of ``values`` (NaN when empty)."""
    vals = sorted(float(v) for v in values)
    if not vals:
        return math.nan
    mid = len(vals) // 2
    return vals[mid] if len(vals) % 2 else (vals[mid - 1] + vals[mid]) / 2


def verdict_of(tests: list[unc.Test]) -> tuple[str, str]:
    """A claim's verdict from its tests (:func:`paltest.testbed.uncertainty.combine`)
    and, when inconclusive, the reason naming the tests whose interval straddles its
    threshold."""
    verdict = unc.combine([t.verdict for t in tests])
    if verdict != INCONCLUSIVE:
        near = [t for t in tests if borderline(t)]
        if not near:
            return verdict, ""
        return verdict, ("borderline: " + "; ".join(
            f"the threshold {t.op} {fmt(t.threshold)} is within {BORDER_FACTOR:.2f} "
            f"half-widths of {t.statistic} {interval_text(t.interval)}" for t in near)
            + ", so a rerun (another machine, a start moved by one ulp) may find it "
            "inconclusive")
    why = []
    for t in tests:
        if t.verdict != INCONCLUSIVE:
            continue
        iv = t.interval
        if math.isnan(iv.low) or math.isnan(iv.high):
            why.append(f"{t.statistic} {fmt(iv.estimate)}: no interval from {iv.n_seeds} "
                       "seed(s) (resampling needs two or more)")
        else:
            why.append(f"the 95% interval of {t.statistic}, {fmt(iv.estimate)} "
                       f"[{fmt(iv.low)}, {fmt(iv.high)}], straddles {t.op} "
                       f"{fmt(t.threshold)}")
    return verdict, "; ".join(why) if why else "nothing to test"


#: A rerun's estimate is expected within the committed 95 % interval widened by this
#: factor around the committed estimate: two independent estimates of a statistic differ
#: by sqrt(2) times the sampling error of one (the same runs on another machine, another
#: BLAS kernel or a start moved by one ulp are, for a chaotic training, new draws).
RERUN_FACTOR = math.sqrt(2.0)
#: A test is *borderline* (:func:`borderline`) when its threshold lies within this many
#: half-widths of its estimate: a rerun's estimate may move by RERUN_FACTOR of them, and
#: its own interval reaches one more.
BORDER_FACTOR = 1.0 + RERUN_FACTOR


def rerun_range(t: unc.Test) -> tuple[float, float]:
    """Where a rerun's estimate of ``t``'s statistic is expected: its interval widened by
    :data:`RERUN_FACTOR` around its estimate (NaN when it has no interval)."""
    iv = t.interval
    lo = iv.estimate - RERUN_FACTOR * (iv.estimate - iv.low)
    hi = iv.estimate + RERUN_FACTOR * (iv.high - iv.estimate)
    return lo, hi


def borderline(t: unc.Test) -> bool:
    """Whether a rerun may decide ``t`` otherwise: its threshold lies within
    :data:`BORDER_FACTOR` times the interval's half-width of its estimate (a rerun's
    estimate may move by :data:`RERUN_FACTOR` half-widths, and its own interval reaches one
    more), so a rerun may find it inconclusive, or conclusive where it is not (for a
    conclusive verdict: with a probability above 2.5 %, for a normal statistic). A zero-width
    interval (nothing varied) is never borderline."""
    iv = t.interval
    if math.isnan(iv.low) or math.isnan(iv.high) or iv.low == iv.high:
        return False  # no interval, or no variability: a rerun gives the same
    lo = iv.estimate - BORDER_FACTOR * (iv.estimate - iv.low)
    hi = iv.estimate + BORDER_FACTOR * (iv.high - iv.estimate)
    return lo <= t.threshold <= hi


def compare(committed: list[Claim], fresh: list[Claim]) -> list[str]:
    """How ``fresh`` claims disagree with ``committed`` ones beyond what a rerun can do
    (``[]``: they agree):

    * a claim missing from either, or a test missing from the fresh claim;
    * a fresh estimate outside :func:`rerun_range` of its committed test;
    * a conclusive verdict reversed (holds against does not hold);
    * any other change of verdict (conclusive against inconclusive, or not measurable)
      unless a committed test is :func:`borderline`, where a rerun may decide it
      otherwise.
    """
    out = []
    old, new = {c.id: c for c in committed}, {c.id: c for c in fresh}
    for cid in sorted(set(old) ^ set(new)):
        out.append(f"{cid}: only in the {'committed' if cid in old else 'fresh'} claims")
    decided = (HOLDS, FAILS)
    for cid in sorted(set(old) & set(new)):
        a, b = old[cid], new[cid]
        tests = {t.statistic: t for t in a.tests}
        for t in b.tests:
            c = tests.get(t.statistic)
            if c is None:
                out.append(f"{cid}: test {t.statistic!r} not in the committed claim")
                continue
            lo, hi = rerun_range(c)
            est = t.interval.estimate
            same = est == c.interval.estimate or (math.isnan(est)
                                                  and math.isnan(c.interval.estimate))
            if not same and not (lo <= est <= hi):
                out.append(f"{cid}: {t.statistic} = {fmt(est)} fresh, outside the range "
                           f"[{fmt(lo)}, {fmt(hi)}] a rerun of the committed "
                           f"{interval_text(c.interval)} is expected in")
        if a.verdict == b.verdict:
            continue
        if a.verdict in decided and b.verdict in decided:
            out.append(f"{cid}: verdict {a.verdict!r} committed, {b.verdict!r} fresh "
                       "(reversed)")
        elif not any(borderline(t) for t in a.tests):
            out.append(f"{cid}: verdict {a.verdict!r} committed, {b.verdict!r} fresh, "
                       "and no committed test was borderline")
    return out


def fmt(v: Any) -> str:
    """A number for the report: 3 significant digits, ``"inf"`` for infinities."""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, (int, float)):
        v = float(v)
        if math.isnan(v):
            return "nan"
        if math.isinf(v) or abs(v) >= unc.BIG:
            return "inf" if v > 0 else "-inf"
        return f"{v:.3g}"
    return str(v)


def interval_text(iv: unc.Interval) -> str:
    """``"estimate [low, high]"`` with :func:`fmt`'s numbers."""
    return f"{fmt(iv.estimate)} [{fmt(iv.low)}, {fmt(iv.high)}]"


def _fmt_list_value(v: Any) -> str:
    if isinstance(v, float) and (math.isinf(v) or abs(v) >= unc.BIG):
        return "never" if v > 0 else "-inf"
    return fmt(v)


def _tests_table(c: Claim) -> list[str]:
    if not c.tests:
        return []
    out = ["| statistic | estimate [95% interval] | resampled over | threshold | verdict |",
           "|---|---|---|---|---|"]
    for t in c.tests:
        iv = t.interval
        n = (f"{iv.n_seeds} seeds" if iv.resampled == "seeds" else
             f"{iv.n_seeds} seeds, {iv.n_items} lines")
        out.append(f"| {t.statistic} | {interval_text(iv)} | {n} | {t.op} "
                   f"{fmt(t.threshold)} | {t.verdict} |")
    return out + [""]


def to_markdown(claims: list[Claim], title: str = "Claims of Section 7") -> str:
    """A Markdown report: per claim, the statement, the test, the verdict, the table of
    its tests (statistic, estimate, 95% interval, threshold) and a table of the numbers
    per optimizer (medians and ranges over seeds)."""
    lines = [f"# {title}", ""]
    for c in claims:
        lines += [f"## {c.id}: **{c.verdict}**", "", f"> {c.statement}", "",
                  f"Test: {c.test}.", ""]
        lines += _tests_table(c)
        if c.reason:
            why = {INCONCLUSIVE: "Why inconclusive", NOT_MEASURABLE: "Why not measurable"}.get(
                c.verdict, "Note")
            lines += [f"{why}: {c.reason}.", ""]
        opts = {k: v for k, v in c.numbers.items() if isinstance(v, dict)}
        if opts:
            # the per-seed lists (their medians are shown; the summary values derived
            # from them are in claims.json)
            first = next(iter(opts.values()))
            cols = [k for k, v in first.items() if k != "seeds" and isinstance(v, list)]
            lines.append("| optimizer | seeds | " + " | ".join(cols) + " |")
            lines.append("|---" * (len(cols) + 2) + "|")
            for o, rec in opts.items():
                cells = []
                for k in cols:
                    v = rec.get(k)
                    if isinstance(v, list) and v:
                        lo, hi = min(v), max(v)
                        cells.append(f"{_fmt_list_value(median(v))} [{_fmt_list_value(lo)}, "
                                     f"{_fmt_list_value(hi)}]" if len(v) > 1
                                     else _fmt_list_value(v[0]))
                    else:
                        cells.append(_fmt_list_value(v))
                lines.append(f"| {o} | {' '.join(map(str, rec.get('seeds', [])))} | "
                             + " | ".join(cells) + " |")
            lines.append("")
        extra = {k: v for k, v in c.numbers.items() if not isinstance(v, dict)}
        for k, v in extra.items():
            lines.append(f"- {k}: {fmt(v) if isinstance(v, float) else v}")
        if extra:
            lines.append("")
    lines.append("Intervals: 95% percentile bootstrap over the seeds (and the lines within "
                 "them), paltest.testbed.uncertainty; a verdict holds or fails only where "
                 "every interval of its tests is on one side of the threshold. Lists show "
                 "the median over seeds and [min, max]; 'never' means the level was not "
                 "reached within the run.")
    return "\n".join(lines) + "\n"
