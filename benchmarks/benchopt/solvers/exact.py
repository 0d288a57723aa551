from benchmark_utils import OptimizerSolver


class Solver(OptimizerSolver):
    """An exact binary line search on the batch loss (paltest.ExactLineSearch)."""

    name = "exact-line-search"
    optimizer = "exact"
    parameters = {"initial_step": [1.0], "max_steps": [20]}
