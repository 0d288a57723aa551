from benchmark_utils import OptimizerSolver


class Solver(OptimizerSolver):
    """Adam (paltest.Adam)."""

    name = "Adam"
    optimizer = "adam"
    parameters = {"lr": [0.001], "beta1": [0.9], "beta2": [0.999]}
