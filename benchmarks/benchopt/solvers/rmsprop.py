from benchmark_utils import OptimizerSolver


class Solver(OptimizerSolver):
    """RMSProp (paltest.RMSProp)."""

    name = "RMSProp"
    optimizer = "rmsprop"
    parameters = {"lr": [0.01], "rho": [0.9]}
