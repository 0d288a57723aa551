from benchmark_utils import ProblemDataset


class Dataset(ProblemDataset):
    """Any registered problem by name, a problem of your own included (registered by a
    module in PALTEST_PLUGINS, or an installed entry point of group paltest.problems):
    ``-d "problem[problem=NAME]"``. The default is the README's example,
    ``logreg-cancer``, skipped (saying why) unless PALTEST_PLUGINS names
    examples/logreg_problems.py."""

    name = "problem"
    parameters = {"problem": ["logreg-cancer"], "dtype": ["float64"], "options": ["{}"]}
