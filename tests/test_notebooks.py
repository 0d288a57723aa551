"""Execute every notebook in notebooks/ top to bottom (nbclient, kernel "python3").

New notebooks are picked up automatically. A notebook that stops because a data file is
missing (``DataNotFoundError``, e.g. a LIBSVM set with no ``PALTEST_DATA`` and no network)
is skipped with that reason, like the data tests. The notebooks are stored without outputs;
they run with the non-interactive Matplotlib backend and the repository root as working
directory, so ``import paltest`` and ``import problems`` resolve as in the tests.
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
def test_notebook_runs(path, monkeypatch):
    nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed")
    nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed")
    pytest.importorskip("ipykernel", reason="ipykernel is not installed (python3 kernel)")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # the kernel inherits the environment: make the repository importable in it
    path_var = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(ROOT), path_var) if p))
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
        raise
    errors = [o for cell in nb.cells if cell.cell_type == "code"
              for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors


def test_notebooks_are_stored_without_outputs():
    nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed")
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.get("outputs") and cell.get("execution_count") is None, path
