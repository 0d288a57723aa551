from benchmark_utils import OptimizerSolver


class Solver(OptimizerSolver):
    """COCOB-Backprop, coin betting (paltest.COCOBBackprop)."""

    name = "COCOB"
    optimizer = "cocob"
    parameters = {"alpha": [100.0]}
