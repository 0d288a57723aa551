from benchmark_utils import OptimizerSolver


class Solver(OptimizerSolver):
    """Stochastic line search with Armijo backtracking (paltest.SLS)."""

    name = "SLS"
    optimizer = "sls"
    parameters = {"init_step_size": [1.0], "c": [0.1], "beta_b": [0.9], "gamma": [2.0]}
