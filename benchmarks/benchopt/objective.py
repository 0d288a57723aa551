"""The paltest testbed as a benchopt benchmark: optimizers minimizing a testbed
problem's training loss (see README.md, "benchopt")."""

import math

from benchopt import BaseObjective

from paltest import backend


class Objective(BaseObjective):
    """The full training loss of a paltest problem (``value``), its gap to the problem's
    analytic floor where it has one (``suboptimality``, ``relative_suboptimality``), and
    the problem's test metrics. ``batch_size``: the solvers' mini-batch size (None: the
    problem's ``default_batch_size``)."""

    name = "paltest"
    min_benchopt_version = "1.10"
    requirements = []
    sampling_strategy = "callback"
    parameters = {"batch_size": [None]}

    def set_data(self, problem, name, reason):
        self.problem, self.problem_name, self.reason = problem, name, reason

    def skip(self, problem, name, reason):
        if problem is None:
            return True, reason
        bs = self.batch_size
        if bs is not None and not 1 <= int(bs) <= problem.n_train:
            return True, f"batch_size {bs} is not in [1, {problem.n_train}] for {name}"
        return False, None

    def get_objective(self):
        p = self.problem
        bs = p.default_batch_size if self.batch_size is None else int(self.batch_size)
        return dict(problem=p, batch_size=bs)

    def evaluate_result(self, theta):
        p = self.problem
        loss = float(backend.to_host(p.train_loss(theta)))
        out = {"value": loss if math.isfinite(loss) else math.inf}
        if p.floor is not None:
            gap = loss - p.floor
            out["suboptimality"] = gap
            out["relative_suboptimality"] = gap / abs(p.floor) if p.floor else gap
        for key, v in p.test_metrics(theta).items():
            out[key] = float(backend.to_host(v))
        return out

    def get_one_result(self):
        return dict(theta=self.problem.init_params(0))
