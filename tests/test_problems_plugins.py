"""How processes learn of problems of your own: ``PALTEST_PLUGINS``, the
``paltest.problems`` entry point group, and the command line's ``--plugin`` (the README's
example, ``examples/logreg_problems.py``, through ``paltest run`` and ``paltest sweep``
with worker processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from problems import plugins, registry

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "logreg_problems.py"
PLUGIN = textwrap.dedent('''
    from problems.quadratic import make_least_squares
    from problems import register

    def make(*, xp="numpy", device=None, dtype="float64", n_rows=25):
        """Twenty-five rows."""
        return make_least_squares(n_rows=n_rows, n_cols=3, xp=xp, device=device, dtype=dtype)

    register("plugin-lsq", make)
''')


def _python(code: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_paltest_plugins_imports_modules_and_files_in_a_new_process(tmp_path):
    (tmp_path / "as_file.py").write_text(PLUGIN)
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "as_module.py").write_text(PLUGIN.replace("plugin-lsq", "module-lsq"))
    env = {plugins.ENV: os.pathsep.join([str(tmp_path / "as_file.py"), "as_module"]),
           "PYTHONPATH": os.pathsep.join([str(tmp_path / "pkg"), str(ROOT)])}
    code = ("import problems; print(problems.get('plugin-lsq').n_train, "
            "problems.get('module-lsq', n_rows=7).n_train, problems.registry.registered())")
    out = _python(code, env, tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[:2] == ["25", "7"]
    bad = _python("import problems; problems.get('x')", {plugins.ENV: "no_such_plugin_mod"},
                  tmp_path)
    assert bad.returncode != 0
    assert "PluginError: plugin 'no_such_plugin_mod' (from PALTEST_PLUGINS" in bad.stderr


def test_an_entry_point_registers_a_problem_loaded_on_first_use(tmp_path):
    (tmp_path / "ep_problems.py").write_text(PLUGIN.replace('register("plugin-lsq", make)', ""))
    dist = tmp_path / "ep_problems-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-problems\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[paltest.problems]\nep-lsq = ep_problems:make\nep-broken = ep_problems:nothing\n")
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    code = textwrap.dedent("""
        import sys, problems
        names = problems.names()
        assert "ep_problems" not in sys.modules  # listed without importing the factory
        print(problems.get("ep-lsq", n_rows=9).n_train, "ep-lsq" in names)
        try:
            problems.get("ep-broken")
        except ImportError as err:
            print(type(err).__name__, err)
    """)
    out = _python(code, env, tmp_path)
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.strip().splitlines()
    assert first == "9 True"
    assert second.startswith("PluginError problem 'ep-broken': cannot load the entry point "
                             "'ep_problems:nothing' of group 'paltest.problems'")


@pytest.fixture
def cli_plugin(monkeypatch):
    """``--plugin`` changes the environment and the registry of this process: undo both."""
    monkeypatch.delenv(plugins.ENV, raising=False)
    yield
    for name in registry.registered():
        registry.unregister(name)
    plugins._loaded.clear()


def test_paltest_run_and_sweep_with_workers_accept_a_plugin_problem(cli_plugin, tmp_path,
                                                                   capsys):
    pytest.importorskip("sklearn")
    from paltest import cli
    from paltest.testbed import results

    assert cli.main(["run", "logreg-cancer", "pal", "--plugin", str(EXAMPLE), "--epochs",
                     "2", "--batch-size", "50", "--out", str(tmp_path / "one"),
                     "--no-progress"]) == 0
    assert "pal on logreg-cancer" in capsys.readouterr().out
    assert os.environ[plugins.ENV] == str(EXAMPLE)
    grid = {"epochs": 2, "batch_size": 50, "seeds": 2,
            "problems": [{"name": "logreg-cancer", "options": {"lam": [0.0, 0.01]}}],
            "optimizers": ["pal", {"name": "sgd", "hyperparameters": {"lr": 0.1}}]}
    (tmp_path / "grid.json").write_text(json.dumps(grid))
    # loky's worker processes build the problem: they import the plugin from the variable
    assert cli.main(["sweep", str(tmp_path / "grid.json"), "--plugin", str(EXAMPLE),
                     "--jobs", "2", "--out", str(tmp_path / "sweep"), "--no-progress"]) == 0
    table = results.load_table(tmp_path / "sweep" / "runs")
    assert len(set(table["run_id"])) == 8 and set(table["problem"]) == {"logreg-cancer"}
    last = table[table["epoch"] == 2]
    assert (last["test_accuracy"] > 0.85).all() and (last["train_loss"] < 0.5).all()


def test_a_plugin_that_cannot_be_imported_is_a_usage_error(cli_plugin, tmp_path, capsys):
    from paltest import cli

    with pytest.raises(SystemExit) as info:
        cli.main(["run", "logreg-cancer", "pal", "--plugin", str(tmp_path / "none.py")])
    assert info.value.code == 2
    assert "--plugin: plugin" in capsys.readouterr().err
