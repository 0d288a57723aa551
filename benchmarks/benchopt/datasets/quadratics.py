from benchmark_utils import ProblemDataset


class Dataset(ProblemDataset):
    """The quadratics: deterministic, stochastic batch quadratics, least squares."""

    name = "quadratics"
    parameters = {"problem": ["quadratic", "batch-quadratic", "least-squares"],
                  "dtype": ["float64"], "options": ["{}"]}
