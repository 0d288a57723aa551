from benchmark_utils import ProblemDataset


class Dataset(ProblemDataset):
    """The non-convex problem: a 64-32-10 ReLU network on scikit-learn's 8x8 digits."""

    name = "mlp-digits"
    parameters = {"problem": ["mlp-digits"], "dtype": ["float64"], "options": ["{}"]}
