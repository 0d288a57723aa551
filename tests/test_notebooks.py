"""Execute every notebook in notebooks/ top to bottom (nbclient, kernel "python3").

New notebooks are picked up automatically. The figure notebooks run their full protocol
when a person runs them; here they run at the quick scale (``PALTEST_NOTEBOOK_SCALE=quick``,
results in a temporary folder), in memory: the committed files are never rewritten. A
notebook that stops because a data file is missing (``DataNotFoundError``, e.g. a LIBSVM
set with no ``PALTEST_DATA`` and no network) is skipped with that reason, like the data
tests, and so is one that needs an extra not installed (the CUTEst notebook without the
``cutest`` extra, which CI installs for its JAX leg). They run with the non-interactive
Matplotlib backend and the repository root as working directory, so ``import paltest``
and ``import problems`` resolve as in the tests.

Every notebook is committed with its outputs: the figure notebooks and the line analyses
with those of a full run (so a reader sees the figures, the summary and the claims without
running them; their claims files are in notebooks/reference/, tests/test_reproduce.py), the
quadratic one with its plots.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT_S = 120


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, monkeypatch, tmp_path):
    nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed")
    nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed")
    pytest.importorskip("ipykernel", reason="ipykernel is not installed (python3 kernel)")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PALTEST_NOTEBOOK_SCALE", "quick")
    monkeypatch.setenv("PALTEST_RESULTS_DIR", str(tmp_path))
    # the kernel inherits the environment: make the repository importable in it
    path_var = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(ROOT), path_var) if p))
    committed = path.read_bytes()
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
        resources={"metadata": {"path": str(ROOT)}},
    )
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as err:
        if err.ename == "DataNotFoundError":
            pytest.skip(f"{path.name}: {err.evalue}")
        # a figure's sweep runs every run and then names each failed one: skip only when
        # every failure is a missing data file (without PALTEST_DATA and offline)
        failed = [line for line in err.evalue.splitlines() if line.startswith("  run ")]
        if err.ename == "SweepError" and failed and all(
                "): DataNotFoundError: " in line for line in failed):
            pytest.skip(f"{path.name}: {failed[0].strip()[:300]}")
        if err.ename == "ImportError" and "cutest extra" in str(err.evalue):
            pytest.skip(f"{path.name}: {err.evalue}")  # CI's JAX leg installs it
        raise
    errors = [o for cell in nb.cells if cell.cell_type == "code"
              for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    if path.name.startswith("figure"):
        assert "scale: quick" in _text(nb)
        assert _images(nb) >= 2 and "claims of Section 7" in _text(nb)
    if path.name == "line_analyses.ipynb":
        assert "scale: quick" in _text(nb) and "(quick scale)" in _text(nb)
        assert _images(nb) == 4 and "2-narrow" in _text(nb)
    if path.name == "cutest_profiles.ipynb":
        assert "scale: quick" in _text(nb) and "goal (a PAL configuration" in _text(nb)
        assert _images(nb) >= 2
    assert path.read_bytes() == committed  # executed in memory only


def _text(nb) -> str:
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []) if cell.cell_type == "code" else []:
            out.append(o.get("text", ""))
            out += [str(v) for k, v in o.get("data", {}).items() if k.startswith("text/")]
    return "\n".join(out)


def _images(nb) -> int:
    return sum("image/png" in o.get("data", {}) for cell in nb.cells
               if cell.cell_type == "code" for o in cell.get("outputs", []))


FIGURE_NOTEBOOKS = [p for p in NOTEBOOKS if p.name.startswith("figure")]


@pytest.mark.parametrize("path", FIGURE_NOTEBOOKS, ids=[p.name for p in FIGURE_NOTEBOOKS])
def test_figure_notebooks_are_committed_with_a_full_run(path):
    nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed")
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code), "every cell executed"
    text = _text(nb)
    assert "scale: full" in text and "(full scale" in text
    assert "**holds**" in text or "**does not hold**" in text
    assert "not measurable" not in text  # every claim measured by the full run
    assert "95% interval" in text  # the claims with their intervals (issue 28)
    assert "cap reached" not in text  # every baseline tuned to an interior optimum
    assert _images(nb) >= 3  # the figure, against cost, and the selection plots
    assert not [o for c in code for o in c.get("outputs", [])
                if o.get("output_type") == "error"]


def test_every_notebook_is_committed_with_its_outputs():
    """Issue 28: notebooks/quadratic_convergence.ipynb was committed without outputs."""
    nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed")
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code and all(c.get("execution_count") for c in code), path
        assert all(c.get("outputs") for c in code if "plt." in c.source
                   or "display(" in c.source or "print(" in c.source), path
        assert not [o for c in code for o in c.get("outputs", [])
                    if o.get("output_type") == "error"], path


def test_line_analyses_notebook_is_committed_with_a_full_run():
    nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed")
    nb = nbformat.read(ROOT / "notebooks" / "line_analyses.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code), "every cell executed"
    text = _text(nb)
    assert "scale: full" in text and "(full scale)" in text
    assert _images(nb) == 4  # Figures 1, 2, 6 and 7
    assert "holds" in text and "does not hold" in text
    assert not [o for c in code for o in c.get("outputs", [])
                if o.get("output_type") == "error"]


def test_cutest_notebook_is_committed_with_a_full_run():
    nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed")
    nb = nbformat.read(ROOT / "notebooks" / "cutest_profiles.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code), "every cell executed"
    text = _text(nb)
    assert "scale: full" in text and "on the 'default' set" in text
    assert "131 problems" in text and "goal (a PAL configuration" in text
    assert _images(nb) == 2  # the profiles and the lines
    assert not [o for c in code for o in c.get("outputs", [])
                if o.get("output_type") == "error"]
