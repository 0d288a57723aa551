from benchmark_utils import ProblemDataset


class Dataset(ProblemDataset):
    """Figure 9's RBF-kernel logistic regression on mushrooms. It needs the LIBSVM file
    in PALTEST_DATA (skipped, saying so, without it); ``n_rows``: the first rows only."""

    name = "mushrooms"
    parameters = {"problem": ["mushrooms"], "n_rows": [None], "dtype": ["float64"],
                  "options": ["{}"]}
