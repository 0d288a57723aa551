"""Shared code of the benchmark's datasets and solvers: a dataset builds a paltest
problem by its registered name, a solver runs one paltest optimizer on it, step by step,
calling benchopt's callback before every step."""

import json

from benchopt import BaseDataset, BaseSolver

import paltest.problems as problems
from paltest.optimizers import registry
from paltest.problems import datasets as data_files

__all__ = ["OptimizerSolver", "ProblemDataset"]


class ProblemDataset(BaseDataset):
    """A testbed problem; subclasses set ``parameters`` (``problem``: a registered name,
    ``dtype``, and problem options). ``options`` (a JSON object) adds problem options,
    e.g. ``-d "problem[problem=mlp-digits,options={""hidden"": [16]}]"``."""

    def get_data(self):
        params = dict(self._parameters)
        name = params.pop("problem")
        options = json.loads(params.pop("options", "{}") or "{}")
        options.update({k: v for k, v in params.items() if v is not None})
        if name not in problems.names():  # a problem of your own whose plugin is not set
            return dict(problem=None, name=name, reason=(
                f"{name} is not a registered problem: set PALTEST_PLUGINS to the module "
                "that registers it (e.g. examples/logreg_problems.py)"))
        try:
            problem = problems.get(name, xp="numpy", **options)
        except (FileNotFoundError, data_files.ChecksumError) as err:
            # e.g. mushrooms without its LIBSVM file: the objective skips it, saying why
            return dict(problem=None, name=name, reason=f"{name}: {err}")
        return dict(problem=problem, name=name, reason=None)


class OptimizerSolver(BaseSolver):
    """Runs the paltest optimizer ``optimizer`` (a registry name) with the solver's
    ``parameters`` as hyperparameters. One benchopt iteration is one optimizer step on
    one mini-batch; batches are drawn as ``paltest.run`` draws them (a reshuffle per
    epoch, from the repetition's seed), so every solver sees the same start and batches."""

    optimizer = None
    sampling_strategy = "callback"
    requirements = []

    def set_objective(self, problem, batch_size):
        self.problem, self.batch_size = problem, batch_size
        self.seed = int(self.get_seed(use_repetition=True))
        self.opt = registry.make(self.optimizer,
                                 n_batches_per_epoch=problem.n_batches(batch_size),
                                 **self._parameters)
        self.theta = problem.init_params(self.seed)

    def run(self, callback):
        problem = self.problem
        theta = problem.init_params(self.seed)
        state = self.opt.init(theta)
        self.theta = theta
        epoch = 0
        while True:
            for batch in problem.batches(epoch, self.seed, self.batch_size):
                if not callback():
                    return
                value_and_grad, value = problem.bind(batch)
                theta, state, _ = self.opt.step(theta, state, value_and_grad, value)
                self.theta = theta
            epoch += 1

    def get_result(self):
        return dict(theta=self.theta)

