from benchmark_utils import OptimizerSolver


class Solver(OptimizerSolver):
    """SGD with hypergradient descent on the learning rate (paltest.SGDHD)."""

    name = "SGD-HD"
    optimizer = "sgdhd"
    parameters = {"lr": [0.001], "hypergrad_lr": [0.001]}
