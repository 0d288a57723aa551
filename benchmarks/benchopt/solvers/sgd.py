from benchmark_utils import OptimizerSolver


class Solver(OptimizerSolver):
    """Mini-batch SGD (paltest.SGD)."""

    name = "SGD"
    optimizer = "sgd"
    parameters = {"lr": [0.1], "momentum": [0.0]}
