"""``paltest figure 1|2|6|7`` at the quick scale: files, columns, claim keys and figures,
option errors naming the option; the Python API (paltest.testbed.line_figures)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

pytest.importorskip("matplotlib")

from test_figures_files import assert_saved_whole  # noqa: E402

from paltest import cli  # noqa: E402
from paltest.testbed import line_figures as lf  # noqa: E402
from paltest.testbed.lines import LINE_COLUMNS  # noqa: E402

# a small, download-free set: the network and a matrix factorization
PROBLEMS = ["mlp-digits", "mf-rank4"]
CLAIMS = {1: ("1-convex", "1-parabola"), 2: ("2-angle", "2-alpha", "2-narrow"),
          6: ("6-loss", "6-test"),
          7: ("7-estimator", "7-smaller")}
LABELS = {1: {"pal"}, 2: {"pal", "pal-no-alpha"}, 6: {"pal", "exact"}, 7: {"pal"}}


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("lines")


@pytest.mark.parametrize("number", [1, 2, 6, 7])
def test_line_figure_quick(number, out, capsys):
    code = cli.main(["figure", str(number), "--quick", "--problem", *PROBLEMS, "--out",
                     str(out), "--no-progress", "--epochs", "1"])
    assert code == 0
    text = capsys.readouterr().out
    folder = out / f"figure{number}-{'-'.join(PROBLEMS)}-quick"
    for name in ("lines.csv", "runs.csv", "summary.csv", "claims.json", "claims.md",
                 f"figure{number}.png", f"figure{number}.pdf"):
        assert (folder / name).is_file(), name
        assert (folder / name).stat().st_size > 0
    assert_saved_whole(folder / f"figure{number}.png", folder / f"figure{number}.pdf")
    lines = pd.read_csv(folder / "lines.csv")
    assert set(LINE_COLUMNS) | {"problem", "label", "seed", "run_id"} <= set(lines)
    assert set(lines["label"]) == LABELS[number]
    assert set(lines["problem"]) == set(PROBLEMS)
    runs = pd.read_csv(folder / "runs.csv")
    assert {"final_train_loss", "final_test_loss", "sampler_lines"} <= set(runs)
    assert len(runs) == len(PROBLEMS) * len(LABELS[number]) * 2  # quick: seeds 0 and 1
    summary = pd.read_csv(folder / "summary.csv")
    assert {"convex_fraction", "median_rel_distance", "median_abs_90_minus_angle"} <= set(
        summary)
    doc = json.loads((folder / "claims.json").read_text())
    assert doc["scale"] == "quick" and doc["figure"] == number
    ids = [c["id"] for c in doc["claims"]]
    assert ids == [f"{c}/{q}" for q in PROBLEMS for c in CLAIMS[number]]
    assert all(c["verdict"] == "not measurable at this scale" for c in doc["claims"])
    md = (folder / "claims.md").read_text()
    assert "mlp-digits: non-convex" in md and "quick scale" in md
    assert "[not measurable at this scale]" in text
    if number == 7:
        points = pd.read_csv(folder / "points.csv")
        assert {"s", "loss", "full_loss", "q0", "q25", "q50", "q75", "q100"} <= set(points)
        # every seed's lines (one epoch: at most one per step, at most LINES_PER_RUN_7)
        per_run = lines.groupby(["problem", "seed"]).size()
        assert len(per_run) == 4 and (per_run <= lf.LINES_PER_RUN_7).all()
        assert per_run.to_dict() == {("mf-rank4", 0): 8, ("mf-rank4", 1): 8,  # 8 steps
                                     ("mlp-digits", 0): 14, ("mlp-digits", 1): 14}
    assert (out / "line-runs").is_dir()


def test_line_figures_share_their_runs(out):
    # after the four figures: figure 2's and figure 6's PAL runs are figure 1's
    p1 = lf.line_plan(1, quick=True, problems=PROBLEMS, epochs=1)
    p6 = lf.line_plan(6, quick=True, problems=PROBLEMS, epochs=1)
    ids1 = {t.run_id() for t in lf.tasks(p1)}
    ids6 = {t.run_id() for t in lf.tasks(p6) if t.label == "pal"}
    assert ids1 == ids6
    assert all((out / "line-runs" / f"{i}.npz").is_file() for i in ids1)


@pytest.mark.parametrize("argv, option", [
    (["figure", "1", "--problem", "nope"], "--problem"),
    (["figure", "8", "--problem", "mf-rank4"], "--problem"),
    (["figure", "2", "--optimizers", "pal"], "--optimizers"),
    (["figure", "6", "--dataset", "mushrooms"], "--dataset"),
    (["figure", "7", "--x", "seconds"], "--x"),
    (["figure", "1", "--dtype", "float16"], "--dtype"),
])
def test_line_figure_bad_options_exit_2(argv, option, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert option in capsys.readouterr().err


def test_progress_is_one_labelled_bar(tmp_path, capsys):
    """Issue 28: Figures 1 and 6 printed joblib's '[Parallel(n_jobs=1)]: Done 6 out of 6'.
    (A fresh directory: in the module's shared one the runs may be done already, and
    then there is no bar to see.)"""
    p = lf.line_plan(1, quick=True, problems=PROBLEMS, epochs=1)
    lf.run_line_figure(p, tmp_path, progress=True)
    err = capsys.readouterr().err
    assert "Figure 1: sampled runs" in err and "[Parallel(" not in err


def test_line_plan():
    p = lf.line_plan(1)
    assert p.problems == lf.DEFAULT_PROBLEMS and p.full_scale and p.scale == "full"
    assert p.seeds == tuple(range(10)) and p.epochs == lf.EPOCHS
    # Figure 7 on every seed (8 lines of one seed left its verdicts to chance), Figure 6
    # on 20 (one number per seed)
    assert lf.line_plan(7).seeds == tuple(range(10)) and lf.line_plan(7).full_scale
    assert lf.line_plan(6).seeds == lf.SEEDS_6 == tuple(range(20))
    assert not lf.line_plan(6, seeds=10).full_scale
    moved = lf.line_plan(1, start_ulps=1)
    assert moved.full_scale and moved.out_name() == "figure1-ulps1"
    # the task ids on problems that need no data file (mushrooms' n_train reads its file)
    moved_ids = {t.run_id() for t in lf.tasks(lf.line_plan(1, start_ulps=1, problems=PROBLEMS))}
    assert moved_ids.isdisjoint(t.run_id() for t in lf.tasks(lf.line_plan(1, problems=PROBLEMS)))
    with pytest.raises(ValueError, match="start_ulps"):
        lf.line_plan(1, start_ulps=0.5)
    q = lf.line_plan(2, quick=True)
    assert q.scale == "quick" and q.options("mushrooms")["n_rows"] == lf.QUICK_N_ROWS
    assert not lf.line_plan(1, epochs=1).full_scale
    for kwargs, name in (({"figure": 3}, "figure"), ({"figure": 1, "seeds": 0}, "seeds"),
                         ({"figure": 1, "epochs": 0}, "epochs"),
                         ({"figure": 1, "problems": ["x"]}, "problem")):
        with pytest.raises(ValueError, match=name):
            lf.line_plan(**kwargs)
