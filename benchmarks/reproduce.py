"""Do the claims survive a rerun? Run the full protocols, compare claims, update the
committed references.

Usage::

    python benchmarks/reproduce.py run OUT                  # Figures 8, 1, 2, 6, 7
    python benchmarks/reproduce.py run OUT --figures 9      # needs PALTEST_DATA
    python benchmarks/reproduce.py run OUT --start-ulps 1   # every start moved one ulp
    OPENBLAS_CORETYPE=SkylakeX python benchmarks/reproduce.py run OUT   # another BLAS kernel
    python benchmarks/reproduce.py compare committed OUT    # or two result folders
    python benchmarks/reproduce.py compare committed OUT --b-ulps 1   # OUT's moved starts
    python benchmarks/reproduce.py update OUT               # OUT's claims become the references

``run`` writes each figure into ``OUT/figure<N>[-ulps<k>]`` (the runs in ``OUT/runs`` and
``OUT/line-runs``, reused when present) and prints its verdicts. ``compare A B`` reads
the ``claims.json`` of every figure in A and in B (``committed``: the references in
``notebooks/reference/``, written from the full runs that the notebooks show) and prints,
per claim, both verdicts and intervals, then every disagreement
(:func:`paltest.testbed.claim_records.compare`: a verdict that differs, a fresh estimate
outside the committed interval); it exits with status 1 when there is one. ``update``
copies the claims of OUT's full-scale figures into ``notebooks/reference/``.

A one-ulp start (``--start-ulps``), one BLAS thread (``OPENBLAS_NUM_THREADS=1``) or another
OpenBLAS kernel (``OPENBLAS_CORETYPE``, e.g. ``Haswell`` or ``SkylakeX`` where the CPU
has AVX-512; the variable must be set before NumPy loads) are the rounding-level changes
that a verdict must survive (issue 28: the committed notebooks were computed with one
kernel, a fresh run on a machine with the other moved mlp-digits' 7-estimator from 0.127
to 0.500).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "notebooks" / "reference"
LINE_FIGURES = (1, 2, 6, 7)


def _claims_files(where: str, ulps: int = 0) -> dict[int, Path]:
    """``{figure: claims.json}`` of a result folder (its full-scale ``figure<N>`` folders,
    or ``figure<N>-ulps<k>`` with ``ulps`` k) or of the committed references."""
    if where == "committed":
        return {int(p.name.split("-")[0][6:]): p for p in REFERENCE.glob("figure*-claims.json")}
    out: dict[int, Path] = {}
    suffix = f"-ulps{ulps}" if ulps else ""
    for fig in (1, 2, 6, 7, 8, 9):
        path = Path(where) / f"figure{fig}{suffix}" / "claims.json"
        if path.is_file() and json.loads(path.read_text(encoding="utf-8")).get(
                "scale") == "full":
            out[fig] = path
    return out


def _load(path: Path) -> list:
    from paltest.testbed.claim_records import from_json

    return [from_json(c) for c in json.loads(path.read_text(encoding="utf-8"))["claims"]]


def run(out: str, figures: list[int], start_ulps: int, jobs: int) -> None:
    from paltest.testbed import experiments, line_figures

    for fig in figures:
        t0 = time.perf_counter()
        if fig in LINE_FIGURES:
            r = line_figures.run_line_figure(line_figures.line_plan(fig, start_ulps=start_ulps),
                                             out, n_jobs=jobs)
        else:
            p = experiments.plan(fig, start_ulps=start_ulps)
            r = experiments.run_figure(p, Path(out) / experiments.out_name(p), n_jobs=jobs)
            capped = [f"{o} on {q}" for q, recs in r.selection.items()
                      for o, rec in recs.items() if rec["cap_reached"]]
            print(f"Figure {fig}: capped selections: {capped or 'none'}")
        print(f"Figure {fig}: {time.perf_counter() - t0:.1f} s")
        for c in r.claims:
            print(f"  [{c.verdict}] {c.id}")


def compare(a: str, b: str, a_ulps: int = 0, b_ulps: int = 0) -> int:
    from paltest.testbed.claim_records import compare as disagreements
    from paltest.testbed.claim_records import fmt

    fa, fb = _claims_files(a, a_ulps), _claims_files(b, b_ulps)
    bad = []
    for fig in sorted(set(fa) & set(fb)):
        ca, cb = _load(fa[fig]), _load(fb[fig])
        print(f"Figure {fig}: {fa[fig]} against {fb[fig]}")
        new = {c.id: c for c in cb}
        for c in ca:
            d = new.get(c.id)
            if d is None:
                continue
            nums = "; ".join(f"{fmt(t.interval.estimate)} [{fmt(t.interval.low)}, "
                             f"{fmt(t.interval.high)}] -> {fmt(u.interval.estimate)} "
                             f"[{fmt(u.interval.low)}, {fmt(u.interval.high)}]"
                             for t, u in zip(c.tests, d.tests, strict=False))
            print(f"  {c.id:26s} {c.verdict:>14s} -> {d.verdict:14s} {nums}")
        bad += [f"Figure {fig}: {m}" for m in disagreements(ca, cb)]
    missing = sorted(set(fa) ^ set(fb))
    if missing:
        print(f"figures in only one of them (not compared): {missing}")
    print("disagreements:" if bad else "no disagreement")
    for m in bad:
        print(f"  {m}")
    return 1 if bad else 0


def update(out: str) -> None:
    REFERENCE.mkdir(parents=True, exist_ok=True)
    for fig, path in sorted(_claims_files(out).items()):
        target = REFERENCE / f"figure{fig}-claims.json"
        shutil.copyfile(path, target)
        print(f"{path} -> {target.relative_to(ROOT)}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the full protocols into OUT")
    r.add_argument("out")
    r.add_argument("--figures", default="8,1,2,6,7",
                   help="comma-separated figures (default 8,1,2,6,7; 9 needs the data)")
    r.add_argument("--start-ulps", type=int, default=0)
    r.add_argument("--jobs", type=int, default=2)
    c = sub.add_parser("compare", help="compare the claims of A and B")
    c.add_argument("a")
    c.add_argument("b")
    c.add_argument("--a-ulps", type=int, default=0, help="A's figure<N>-ulps<k> folders")
    c.add_argument("--b-ulps", type=int, default=0, help="B's figure<N>-ulps<k> folders")
    u = sub.add_parser("update", help="make OUT's claims the committed references")
    u.add_argument("out")
    args = ap.parse_args(argv)
    if args.command == "run":
        run(args.out, [int(f) for f in args.figures.split(",")], args.start_ulps, args.jobs)
        return 0
    if args.command == "compare":
        return compare(args.a, args.b, args.a_ulps, args.b_ulps)
    update(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
