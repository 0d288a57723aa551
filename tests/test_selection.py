"""Bracketed selection on synthetic score surfaces: extension beyond an edge winner,
the cap, diverged neighbours, refinement, ties within rounding, fixed axes."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from paltest.testbed.selection import Bracket, Grid, Scale, Trial, choose, tied


def drive(bracket, surface, rounding=0.02):
    """Score every pending point until the search ends (each score with ``rounding``);
    returns the number of rounds."""
    rounds = 0
    while bracket.pending():
        rounds += 1
        for hp in bracket.pending():
            bracket.tell(hp, surface(hp), rounding, run_id=f"r{rounds}")
    return rounds


def lrs(bracket, **fixed):
    return sorted(t.hyperparameters["lr"] for t in bracket.trials
                  if all(t.hyperparameters[k] == v for k, v in fixed.items()))


def bowl(center_decade):
    return lambda hp: (math.log10(hp["lr"]) - center_decade) ** 2


def test_optimum_above_the_grid_is_bracketed_by_extension():
    b = Bracket(Grid({"lr": Scale(-2, 0, per_decade=1)}), max_extensions=5, refine=0)
    drive(b, bowl(2.3))  # optimum near lr = 200, two decades above the grid's top
    assert lrs(b) == [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0]
    assert b.best == {"lr": 100.0}
    assert b.bracketed == {"lr": True} and b.cap_reached == {}
    assert [t.stage for t in b.trials] == ["grid"] * 3 + ["extension"] * 3


def test_optimum_below_the_grid_is_bracketed_by_extension():
    b = Bracket(Grid({"lr": Scale(-1, 0, per_decade=2)}), refine=0)
    drive(b, bowl(-2.0))
    assert b.best == {"lr": 0.01}
    assert min(lrs(b)) == pytest.approx(10 ** -2.5) and b.bracketed == {"lr": True}


def test_cap_is_recorded_when_the_winner_stays_at_an_end():
    b = Bracket(Grid({"lr": Scale(-2, 0, per_decade=1)}), max_extensions=2, refine=0)
    drive(b, lambda hp: -math.log10(hp["lr"]))  # monotone: larger is always better
    assert lrs(b) == [0.01, 0.1, 1.0, 10.0, 100.0]
    assert b.best == {"lr": 100.0}
    assert b.cap_reached == {"lr": "upper"} and b.bracketed == {"lr": False}
    # no extensions allowed at all: the cap is reached at once
    b0 = Bracket(Grid({"lr": Scale(-2, 0, per_decade=1)}), max_extensions=0, refine=0)
    drive(b0, lambda hp: -math.log10(hp["lr"]))
    assert lrs(b0) == [0.01, 0.1, 1.0] and b0.cap_reached == {"lr": "upper"}


def test_a_diverged_neighbour_counts_as_tried():
    def surface(hp):
        return math.inf if hp["lr"] > 1.5 else -math.log10(hp["lr"])
    b = Bracket(Grid({"lr": Scale(-2, 0, per_decade=1)}), refine=0)
    drive(b, surface)
    assert lrs(b) == [0.01, 0.1, 1.0, 10.0]
    assert b.best == {"lr": 1.0} and b.bracketed == {"lr": True} and b.cap_reached == {}


def test_when_every_point_diverges_the_first_grid_point_is_kept_with_its_score():
    b = Bracket(Grid({"lr": Scale(-1, 0, per_decade=1)}), max_extensions=2, refine=0)
    drive(b, lambda hp: math.inf)
    assert lrs(b) == [0.01, 0.1, 1.0]  # one step below the grid, then all tie at +inf
    assert b.best == {"lr": 0.1} and b.winner.score == math.inf


def test_refinement_halves_the_spacing_around_the_winner():
    b = Bracket(Grid({"lr": Scale(-2, 0, per_decade=1)}), refine=2)
    drive(b, lambda hp: 10 * bowl(-0.8)(hp))  # optimum at lr ~ 0.158
    stages = [t.stage for t in b.trials]
    assert stages[:3] == ["grid"] * 3 and set(stages[3:]) == {"refinement"}
    # first round: 0.1 * 10**(+-1/2); second round: a quarter decade around the new winner
    assert 10 ** -0.5 in lrs(b) and 10 ** -1.5 in lrs(b)
    assert b.best == {"lr": 10 ** -0.75}
    assert b.bracketed == {"lr": True}


def test_values_are_exact_powers_of_ten_so_run_ids_are_stable():
    s = Scale(-3, -1, per_decade=2)
    assert s.values() == [10.0 ** -3, 10.0 ** -2.5, 10.0 ** -2, 10.0 ** -1.5, 10.0 ** -1]
    assert s.values()[0] == 0.001 and s.values()[-1] == 0.1
    assert s.step == Fraction(1, 2)


def test_scores_within_their_roundings_tie_and_go_to_the_earliest_trial():
    a = Trial({"lr": 0.1}, "grid", -3.0, rounding=0.02)
    b = Trial({"lr": 1.0}, "grid", -3.03, rounding=0.015)
    c = Trial({"lr": 10.0}, "grid", 0.0)
    assert choose([a, b, c]) is a  # 0.03 <= 0.02 + 0.015: a tie, the earlier one wins
    assert tied([a, b, c]) == [a, b]
    b.rounding = 0.005  # 0.03 > 0.02 + 0.005: the better score wins
    assert choose([a, b, c]) is b and tied([a, b, c]) == [b]
    # far above the floor, rounding is tiny: a small real difference decides
    d = Trial({"lr": 0.1}, "grid", -0.160, rounding=1e-9)
    e = Trial({"lr": 1.0}, "grid", -0.197, rounding=1e-9)
    assert choose([d, e]) is e
    nan = Trial({"lr": 1.0}, "grid", float("nan"))
    assert choose([nan, c]) is c and choose([Trial({}, "grid")]).score is None
    with pytest.raises(ValueError, match="rounding"):
        Bracket(Grid({"lr": Scale(-1, 0)})).tell({"lr": 0.1}, 0.0, -1.0)


def test_a_flat_surface_stops_after_one_extension():
    b = Bracket(Grid({"lr": Scale(-1, 0, per_decade=1)}), max_extensions=4, refine=0)
    drive(b, lambda hp: -5.0)  # every score ties
    assert lrs(b) == [0.01, 0.1, 1.0]  # the first grid point got its missing neighbour
    assert b.best == {"lr": 0.1} and b.bracketed == {"lr": True}


def test_fixed_axes_keep_their_grid_and_only_the_winners_line_grows():
    grid = Grid({"mu": Scale(-1, 0, per_decade=1), "alpha": [1.0, 1.5], "beta": [0.0, 0.4]})

    def surface(hp):  # best line: alpha 1.5, beta 0; optimum mu ~ 100 there
        return (math.log10(hp["mu"]) - 2.0) ** 2 + (hp["alpha"] != 1.5) + hp["beta"]
    b = Bracket(grid, max_extensions=4, refine=0)
    drive(b, surface)
    assert b.best == {"mu": 100.0, "alpha": 1.5, "beta": 0.0}
    assert {t.hyperparameters["alpha"] for t in b.trials} == {1.0, 1.5}
    assert {t.hyperparameters["beta"] for t in b.trials} == {0.0, 0.4}
    grown = [t.hyperparameters for t in b.trials if t.stage == "extension"]
    assert grown and all(h["alpha"] == 1.5 and h["beta"] == 0.0 for h in grown)
    assert sorted(h["mu"] for h in grown) == [10.0, 100.0, 1000.0]


def test_tell_unknown_configuration_and_bad_arguments():
    b = Bracket(Grid({"lr": Scale(-1, 0)}))
    with pytest.raises(KeyError, match="hyperparameters"):
        b.tell({"lr": 123.0}, 0.0)
    with pytest.raises(ValueError, match="max_extensions"):
        Bracket(Grid({"lr": Scale(-1, 0)}), max_extensions=-1)
    with pytest.raises(ValueError, match="refine"):
        Bracket(Grid({"lr": Scale(-1, 0)}), refine=1.5)
    with pytest.raises(ValueError, match="per_decade"):
        Scale(-1, 0, per_decade=0)
    with pytest.raises(ValueError, match="lo"):
        Scale(0, -1)
    with pytest.raises(ValueError, match="hi"):
        Scale(-1, 0.3, per_decade=2)
    with pytest.raises(ValueError, match="axes"):
        Grid({"lr": []})
    with pytest.raises(ValueError, match="trials"):
        choose([])


def test_grid_json_lists_the_values():
    g = Grid({"lr": Scale(-2, 0, per_decade=1), "beta": [0.0, 0.4]})
    assert g.to_json() == {"lr": {"scale": True, "lo": -2, "hi": 0, "per_decade": 1,
                                  "values": [0.01, 0.1, 1.0]}, "beta": [0.0, 0.4]}
    assert len(g.points()) == 6
