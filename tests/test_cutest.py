"""problems.cutest: sif2jax's unconstrained CUTEst problems as testbed problems.

Needs the ``cutest`` extra (sif2jax and JAX); without it these tests skip and say so (CI
installs it before its JAX leg). In-process tests use float32, which needs no 64-bit JAX,
so that this module never changes JAX's configuration for the rest of the session; the
float64 checks run in subprocesses with and without ``JAX_ENABLE_X64``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("jax", reason="the CUTEst problems need the cutest extra (JAX)")
if __import__("importlib.util").util.find_spec("sif2jax") is None:
    pytest.skip("the CUTEst problems need the cutest extra (sif2jax)", allow_module_level=True)

import problems  # noqa: E402
from problems import cutest  # noqa: E402


def _python(code: str, x64: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    env["JAX_PLATFORMS"] = "cpu"
    if x64:
        env["JAX_ENABLE_X64"] = "1"
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_one_problem_imports_only_its_module_and_float64_values():
    # A fresh process: ROSENBR's module and sif2jax's base modules, nothing else; its
    # value and gradient at the standard start (-1.2, 1) are the textbook ones.
    got = _python("""
        import json, sys
        import problems
        p = problems.get("cutest:ROSENBR", dtype="float64")
        x = p.init_params(0)
        v, g = p.value_and_grad(x, None)
        mods = sorted(m for m in sys.modules if m.startswith("sif2jax"))
        print(json.dumps({"mods": mods, "v": float(v), "g": g.tolist(),
                          "dtype": str(g.dtype), "type": type(g).__module__}))
    """, x64=True)
    assert got["mods"] == ["sif2jax", "sif2jax._problem", "sif2jax.cutest",
                           "sif2jax.cutest._unconstrained_minimisation",
                           "sif2jax.cutest._unconstrained_minimisation.rosenbr"]
    # f = 100 (x2 - x1^2)^2 + (1 - x1)^2 = 100 * 0.44^2 + 2.2^2 = 24.2
    assert got["v"] == pytest.approx(24.2, rel=1e-15)
    # df/dx1 = -400 x1 (x2 - x1^2) - 2 (1 - x1) = -215.6; df/dx2 = 200 (x2 - x1^2) = -88
    assert got["g"] == pytest.approx([-215.6, -88.0], rel=1e-14)
    assert got["dtype"] == "float64" and got["type"] == "numpy"


def test_float64_without_x64_names_the_fix():
    got = _python("""
        import json
        import problems
        try:
            problems.get("cutest:ROSENBR", dtype="float64")
            print(json.dumps({"err": None}))
        except ValueError as err:
            print(json.dumps({"err": str(err)}))
    """, x64=False)
    assert got["err"] is not None and got["err"].startswith("dtype:")
    assert "JAX_ENABLE_X64" in got["err"]


def test_deferred_package_runs_its_init_on_first_use(tmp_path, monkeypatch):
    # The mechanism on a toy package: its __init__ has not run after a submodule was
    # imported through the deferred package, and runs once at the first missing name.
    pkg = tmp_path / "toypkg_i30"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("import builtins\nbuiltins.TOY_RUNS = "
                                     "getattr(builtins, 'TOY_RUNS', 0) + 1\nFULL = 'yes'\n")
    (pkg / "sub" / "__init__.py").write_text("raise RuntimeError('must not run')\n")
    (pkg / "sub" / "leaf.py").write_text("from .. import helper\nVALUE = helper.X\n")
    (pkg / "helper.py").write_text("X = 7\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import builtins
    import importlib

    monkeypatch.setattr(builtins, "TOY_RUNS", 0, raising=False)
    try:
        cutest._deferred_package("toypkg_i30")
        cutest._deferred_package("toypkg_i30.sub")
        leaf = importlib.import_module("toypkg_i30.sub.leaf")
        assert leaf.VALUE == 7 and builtins.TOY_RUNS == 0
        top = sys.modules["toypkg_i30"]
        assert top.FULL == "yes" and builtins.TOY_RUNS == 1
        assert top.FULL == "yes" and builtins.TOY_RUNS == 1
        assert "__getattr__" not in vars(top)
    finally:
        for name in [m for m in sys.modules if m.startswith("toypkg_i30")]:
            del sys.modules[name]


def test_catalog_lists_the_unconstrained_problems():
    names = cutest.names()
    assert len(names) == len(set(names)) > 150
    assert {"ROSENBR", "BEALE", "ARWHEAD"} <= set(names)
    with pytest.raises(ValueError, match="unknown CUTEst problem 'ROSENBRX'"):
        problems.get("cutest:ROSENBRX", dtype="float32")


@pytest.mark.parametrize("xp_name", ["numpy", "jax"])
def test_float32_values_on_numpy_and_jax(xp_name):
    p = problems.get("cutest:ROSENBR", xp=xp_name, dtype="float32")
    x = p.init_params(0)
    v, g = p.value_and_grad(x, None)
    assert type(g).__module__.split(".")[0] == ("numpy" if xp_name == "numpy" else "jaxlib")
    assert str(g.dtype) == "float32" and g.shape == (2,)
    np.testing.assert_allclose(np.asarray(g), [-215.6, -88.0], rtol=1e-6)
    assert float(p.value(x, None)) == pytest.approx(24.2, rel=1e-6)
    assert float(p.train_loss(x)) == float(v)
    assert p.floor is None and p.stated_optimum == 0.0
    assert (p.n_value, p.n_value_and_grad) == (2, 1)


def test_parameters_batches_and_registry():
    p = problems.get("cutest:ARWHEAD", dtype="float32", n=10)
    assert p.n_params == 10 and p.name == "cutest:ARWHEAD"
    assert p.init_params(0).tolist() == p.init_params(3).tolist() == [1.0] * 10
    assert [b for b in p.batches(0, 0, 1)] == [None]
    with pytest.raises(ValueError, match="batch_size"):
        p.batches(0, 0, 2)
    with pytest.raises(TypeError, match="no_such: not accepted by CUTEst problem 'ARWHEAD'"):
        problems.get("cutest:ARWHEAD", dtype="float32", no_such=1)
    assert "CUTEst" in problems.describe("cutest:ROSENBR")
    from problems import registry

    assert registry.validate("cutest:BEALE", dtype="float32") == 1


def test_paltest_run_and_sweep_take_cutest_names(tmp_path, capsys):
    """``paltest run`` and sweep grids refused ``cutest:NAME`` ("choose one of [...]");
    they now run it, and an unknown member of the family is the problem argument's
    error (exit 2), not a --po error."""
    from paltest import cli
    from paltest.testbed import results
    from paltest.testbed.sweep import sweep

    out = tmp_path / "run"
    argv = ["run", "cutest:ROSENBR", "pal", "--epochs", "3", "--dtype", "float32",
            "--hp", "beta=polak-ribiere", "--out", str(out), "--no-progress"]
    assert cli.main(argv) == 0
    (path,) = (out / "runs").glob("*.npz")
    losses = results.load(path).epochs["train_loss"]
    assert len(losses) == 4 and losses[0] == pytest.approx(24.2, rel=1e-6)
    with pytest.raises(SystemExit) as info:
        cli.main(["run", "cutest:NOPE", "pal", "--out", str(out), "--no-progress"])
    assert info.value.code == 2
    assert "error: problem: unknown CUTEst problem 'NOPE'" in capsys.readouterr().err
    grid = {"epochs": 5, "batch_size": 1, "seeds": [0],
            "problems": [{"name": "cutest:BEALE", "options": {"dtype": "float32"}}],
            "optimizers": [{"name": "pal"}, {"name": "sgd", "hyperparameters": {"lr": 1e-3}}]}
    assert sweep(grid, tmp_path / "sweep", backend="sequential").ran == 2
