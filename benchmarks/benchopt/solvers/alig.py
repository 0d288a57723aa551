from benchmark_utils import OptimizerSolver


class Solver(OptimizerSolver):
    """ALI-G, adaptive learning rates for interpolation (paltest.ALIG)."""

    name = "ALI-G"
    optimizer = "alig"
    parameters = {"max_lr": [0.1], "momentum": [0.9]}
