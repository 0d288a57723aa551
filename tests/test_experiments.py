"""The figure protocols as data: plans, the one-seed selection rule, final losses."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from paltest.testbed import experiments


def test_figure8_protocol():
    p = experiments.plan(8)
    assert p.problems == ("mf-true", "mf-rank1", "mf-rank4", "mf-rank10")
    assert (p.epochs, p.batch_size, p.seeds, p.tune_seed) == (50, 100, (0, 1, 2, 3, 4), 0)
    assert p.optimizers == ("pal", "sls", "exact", "sgd", "adam")
    pal = p.grids["pal"].to_json()
    assert pal["mu"]["values"] == [0.1, 10**-0.5, 1.0]
    assert pal["alpha"] == [1.0, 1 / 0.6] and pal["beta"] == [0.0, 0.4]  # bounded: fixed
    assert p.grids["sgd"].to_json()["lr"]["values"] == [0.01, 10**-1.5, 0.1, 10**-0.5, 1.0]
    assert p.grids["adam"].to_json()["lr"]["values"][::2] == [1e-3, 1e-2, 1e-1]
    assert p.grids["pal"].scale_axes == ["mu"] and p.grids["sgd"].scale_axes == ["lr"]
    assert (p.max_extensions, p.refine) == (experiments.MAX_EXTENSIONS, experiments.REFINE)
    assert "sls" not in p.grids and "exact" not in p.grids
    assert p.problem_options == {"xp": "numpy", "dtype": "float32"}
    assert p.references == ("pal",) and p.full_scale and p.scale == "full"
    assert experiments.Plan.from_json(p.to_json()) == p


def test_figure9_protocol_and_quick_subset():
    p = experiments.plan(9)
    assert p.problems == ("mushrooms", "ijcnn") and p.epochs == 35
    assert p.seeds == tuple(range(10)) and p.tune_seed == 0  # issue 28: 10 seeds
    assert experiments.plan(9, seeds=5).scale == "reduced"
    assert (experiments.out_name(experiments.plan(9, start_ulps=1)) == "figure9-ulps1"
            and experiments.plan(9, start_ulps=1).full_scale)
    with pytest.raises(ValueError, match="start_ulps"):
        experiments.plan(9, start_ulps=1.0)
    q = experiments.plan(9, quick=True, problems=["mushrooms"], dtype="float64")
    assert q.epochs == 2 and q.seeds == (0, 1) and q.scale == "quick"
    assert experiments.out_name(q) == "figure9-mushrooms-quick"
    assert experiments.out_name(p) == "figure9"
    assert experiments.plan(9, epochs=3).scale == "reduced"
    assert experiments.plan(9, seeds=3).scale == "reduced"
    assert q.options("mushrooms") == {"xp": "numpy", "dtype": "float64", "n_rows": 500}
    assert "n_rows" not in experiments.plan(8, quick=True).options("mf-rank4")
    # full scale stores ijcnn's float32 kernels: budget above 3.9 GB, below 8 GB
    budget = p.options("ijcnn")["memory_budget"]
    assert 28_000**2 * 4 + 7_000 * 28_000 * 4 < budget < 8e9
    assert "memory_budget" not in experiments.plan(8).options("mf-rank4")
    mine = experiments.plan(9, problem_options={"memory_budget": 1e9})
    assert mine.options("ijcnn")["memory_budget"] == 1e9


def test_overrides_and_other_optimizers():
    p = experiments.plan(8, optimizers=["pal", "rmsprop"], seeds=[3, 1], epochs=7)
    assert p.optimizers == ("pal", "rmsprop") and p.seeds == (3, 1) and p.tune_seed == 3
    assert set(p.grids) == {"pal"} and p.epochs == 7
    assert experiments.plan(8, seeds=2).seeds == (0, 1)


@pytest.mark.parametrize("kwargs, word", [
    ({"figure": 7}, "figure"), ({"optimizers": ["nope"]}, "optimizers"),
    ({"problems": ["mushrooms"]}, "problems"), ({"seeds": 0}, "seeds"),
    ({"seeds": [-1]}, "seeds"), ({"epochs": 0}, "epochs"), ({"dtype": "float16"}, "dtype"),
])
def test_plan_errors_name_the_argument(kwargs, word):
    kwargs = {"figure": 8, **kwargs}
    with pytest.raises(ValueError, match=word):
        experiments.plan(kwargs.pop("figure"), **kwargs)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A real figure run at a tiny scale: Figure 8's rank-4 panel, PAL and SGD, 3 epochs."""
    p = experiments.plan(8, problems=["mf-rank4"], optimizers=["pal", "sgd", "sls"],
                         seeds=2, epochs=3, quick=True)
    out = tmp_path_factory.mktemp("tiny")
    return experiments.run_figure(p, out, backend="sequential"), out


def test_run_figure_records_every_trial_and_a_bracketed_choice(tiny):
    result, out = tiny
    m = json.loads((out / "selection.json").read_text())
    assert m["format_version"] == 3 and set(m["selection"]["mf-rank4"]) == {"pal", "sgd"}
    for opt, rec in m["selection"]["mf-rank4"].items():
        axis = {"pal": "mu", "sgd": "lr"}[opt]
        tried = sorted(t["hyperparameters"][axis] for t in rec["trials"])
        chosen = rec["chosen"][axis]
        assert rec["bracketed"][axis] or rec["cap_reached"].get(axis), rec
        if rec["bracketed"][axis]:
            assert tried[0] < chosen < tried[-1]
        assert {t["stage"] for t in rec["trials"]} <= {"grid", "extension", "refinement"}
        assert all(set(t) >= {"hyperparameters", "score", "run_id", "stage", "diverged"}
                   for t in rec["trials"])
        # the chosen configuration is the best score, up to the tie rule
        scored = [t for t in rec["trials"] if t["score"] is not None]
        best = min(scored, key=lambda t: t["score"])
        winner = next(t for t in rec["trials"] if t["run_id"] == rec["run_id"])
        assert winner["tied_with_best"]
        assert winner["score"] <= best["score"] + winner["rounding"] + best["rounding"]
        first_tied = next(t for t in rec["trials"] if t["tied_with_best"])
        assert first_tied is winner  # the earliest of the ties
    # every trial is a result file, and the chosen one is reused as the seed-0 final run
    runs = {p.stem for p in (out / "runs").glob("*.npz")}
    assert {t["run_id"] for r in m["selection"]["mf-rank4"].values() for t in r["trials"]} <= runs
    assert m["selection"]["mf-rank4"]["sgd"]["run_id"] in m["final_run_ids"]
    assert set(result.table["optimizer"]) == {"pal", "sgd", "sls"}
    assert set(result.references["optimizer"]) == {"pal"}
    assert sorted(result.references["seed"].unique()) == [0, 1]


def test_run_figure_writes_summary_and_claims(tiny):
    result, out = tiny
    summary = pd.read_csv(out / "summary.csv")
    final = summary[summary["role"] == "final"]
    assert sorted(final["optimizer"]) == ["pal", "sgd", "sls"]
    assert (summary["n_seeds"] == 2).all()
    assert {"final_loss_mean", "final_rel_gap_mean", "epochs_to_target_median",
            "floor"} <= set(summary.columns)
    doc = json.loads((out / "claims.json").read_text())
    assert doc["scale"] == "quick" and doc["figure"] == 8
    assert all(c["verdict"] == "not measurable at this scale" for c in doc["claims"])
    assert "quick scale" in (out / "claims.md").read_text()
    text = experiments.summary(result)
    assert "chosen pal on mf-rank4: mu=" in text and "claims of Section 7" in text


@pytest.mark.parametrize("measured", [False, True])
def test_selection_rounds_are_filled_with_runs_that_do_not_depend_on_it(tmp_path,
                                                                        monkeypatch,
                                                                        measured):
    """With two workers, a selection round also runs untuned runs (here SLS), each once;
    the figure's files are those of the sequential run. Which rounds take them depends
    on the measured seconds (tests/test_schedule.py); unmeasured, every run counts one
    unit, so a round of an odd number of runs takes one."""
    import numpy as np

    from paltest.testbed import results, schedule
    from paltest.testbed.results import TIMING_ARRAYS

    p = experiments.plan(8, problems=["mf-rank4"], optimizers=["sgd", "sls"], seeds=2,
                         epochs=3, quick=True)
    seq, par = tmp_path / "seq", tmp_path / "par"
    experiments.run_figure(p, seq, backend="sequential")
    rounds = []
    real = experiments.run_configs

    def spy(configs, runs, **kwargs):
        rounds.append([c["optimizer"] for c in configs])
        return real(configs, runs, **kwargs)

    class Unmeasured(schedule.Estimates):
        def add(self, config, seconds):  # nothing measured: every run one unit
            pass

    monkeypatch.setattr(experiments, "run_configs", spy)
    if not measured:
        monkeypatch.setattr(schedule, "Estimates", Unmeasured)
    experiments.run_figure(p, par, n_jobs=2, backend="threading")
    selection = rounds[:-1]
    assert any(len(r) % 2 == 1 for r in [[o for o in r if o == "sgd"] for r in selection])
    filled = [r for r in selection if "sls" in r]
    assert filled and (measured or all(len(r) % 2 == 0 for r in filled))
    assert sum(r.count("sls") for r in selection) <= 2  # each free run once
    again = tmp_path / "again"  # resumed with the SLS runs done: no round takes them
    again.joinpath("runs").mkdir(parents=True)
    for name in (par / "runs").glob("*.npz"):
        if results.load(name).config["optimizer"] == "sls":
            again.joinpath("runs", name.name).write_bytes(name.read_bytes())
    rounds.clear()
    experiments.run_figure(p, again, n_jobs=2, backend="threading")
    assert not any("sls" in r for r in rounds[:-1])
    assert json.loads((par / "selection.json").read_text()) == \
        json.loads((seq / "selection.json").read_text())
    files = sorted(f.name for f in (seq / "runs").glob("*.npz"))
    assert sorted(f.name for f in (par / "runs").glob("*.npz")) == files
    for name in files:
        a, b = results.load(seq / "runs" / name), results.load(par / "runs" / name)
        for part in ("epochs", "steps"):
            for key, value in getattr(a, part).items():
                if key not in TIMING_ARRAYS:
                    assert np.asarray(value).tobytes() == \
                        np.asarray(getattr(b, part)[key]).tobytes(), (name, key)


def test_selection_file_damaged_is_a_clear_error_and_a_rerun_rebuilds_it(tiny, tmp_path):
    import shutil

    _, out = tiny
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    path = copy / "selection.json"
    text = path.read_text()
    path.write_text(text[: len(text) // 2])  # truncated
    with pytest.raises(experiments.SelectionFileError, match="selection.json"):
        experiments.load_figure(copy)
    path.write_text(json.dumps({"format_version": 1, "plan": {}}))  # an older format
    with pytest.raises(experiments.SelectionFileError, match="format_version"):
        experiments.load_figure(copy)
    n = len(list((copy / "runs").glob("*.npz")))
    p = experiments.plan(8, problems=["mf-rank4"], optimizers=["pal", "sgd", "sls"],
                         seeds=2, epochs=3, quick=True)
    experiments.run_figure(p, copy, backend="sequential")
    assert json.loads(path.read_text()) == json.loads(text)
    assert len(list((copy / "runs").glob("*.npz"))) == n  # nothing was run again
    assert not [f for f in copy.iterdir() if f.name.startswith(".tmp-")]


def test_final_losses_mean_min_max_over_seeds():
    rows = [{"run_id": f"{s}", "problem": "p", "optimizer": "pal", "seed": s, "epoch": e,
             "train_loss": float(s + 1) if e == 2 else 9.0} for s in range(3) for e in (0, 2)]
    fl = experiments.final_losses(pd.DataFrame(rows)).loc[("p", "pal")]
    assert (fl["mean"], fl["min"], fl["max"], fl["n_seeds"]) == (2.0, 1.0, 3.0, 3)


def test_floors_of_the_matrix_factorization_panels():
    fl = experiments.floors(["mf-rank1", "mf-rank4", "mf-rank10", "mushrooms"])
    assert fl["mf-rank1"] == pytest.approx(0.1318, abs=1e-4)
    assert fl["mf-rank4"] == pytest.approx(0.00935, abs=1e-5)
    assert math.isclose(fl["mf-rank10"], 0.0, abs_tol=1e-20) and fl["mushrooms"] is None


def test_printed_output_has_no_nan_gap_labelled_bars_and_only_the_problems_run(tmp_path,
                                                                               capsys):
    """Issue 28: the final-gap table was NaN where the floor is 0, the progress bars had
    no labels, and claims were printed for problems the figure did not run."""
    p = experiments.plan(8, problems=["mf-rank4", "mf-rank10"], optimizers=["sgd"],
                         seeds=2, epochs=1, quick=True)
    result = experiments.run_figure(p, tmp_path, backend="sequential", progress=True)
    err = capsys.readouterr().err
    assert "selection round 1" in err and "final and reference runs" in err
    text = experiments.summary(result)
    gap = text.split("final gap to the floor")[1].split(":\n", 1)[1].split("epochs to")[0]
    assert "NaN" not in gap and "mf-rank10: floor 0" in text
    assert "mf-rank4" in gap and "mf-rank10" not in gap.split("\n")[0]
    assert [c.problem for c in result.claims] == ["mf-rank4", "mf-rank10"]
    assert not [c for c in result.claims if c.problem in ("mf-rank1", "mf-true")]
