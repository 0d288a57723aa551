from benchmark_utils import ProblemDataset


class Dataset(ProblemDataset):
    """Figure 8's matrix factorizations (an analytic floor; no download)."""

    name = "matrix-factorization"
    parameters = {"problem": ["mf-true", "mf-rank1", "mf-rank4", "mf-rank10"],
                  "dtype": ["float64"], "options": ["{}"]}
