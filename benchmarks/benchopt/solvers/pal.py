from benchmark_utils import OptimizerSolver


class Solver(OptimizerSolver):
    """PAL, Parabolic Approximation Line Search (paltest.PAL), with its beta variants."""

    name = "PAL"
    optimizer = "pal"
    parameters = {
        "mu": [1.0],
        "alpha": [1 / 0.6],
        # the constant of the paper, and the conjugate-gradient rules
        "beta": [0.4, "fletcher-reeves", "polak-ribiere", "hestenes-stiefel", "dai-yuan"],
    }
