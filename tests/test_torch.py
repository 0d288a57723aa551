"""paltest.torch.PAL: PAL as a torch.optim.Optimizer (runs wherever PyTorch is installed).

Networks with several parameter tensors on the bundled digits, in float64: an MLP and
a small CNN. On the CPU the optimizer runs paltest.PAL's NumPy evaluator on the
concatenated parameters, so its steps are bitwise those of ``paltest.PAL().step`` on
the flattened problem; the device evaluator (a GPU's) is forced on CPU tensors to check
the same against PAL on a flat tensor and that it never reads a value back. Against
the authors' algorithm (a reference loop written after their ``PalOptimizer``, with
float64 hyperparameters), each step is held to the rounding bound of
``tests/step_bounds.py``.
"""

from __future__ import annotations

import io

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from readme import run_section_example  # noqa: E402
from step_bounds import step_bound  # noqa: E402

import paltest.torch as pal_torch  # noqa: E402
from paltest import PAL as CorePAL  # noqa: E402
from paltest import NonFiniteError  # noqa: E402
from paltest.torch import PAL  # noqa: E402
from problems import mlp  # noqa: E402

N_STEPS = 100
_DATA = mlp.load_data()
X = torch.from_numpy(_DATA["x_train"][:1400]).reshape(14, 100, 64)
Y = torch.from_numpy(_DATA["y_train"][:1400]).reshape(14, 100)
LOSS_TERMS = {"mlp": 100 + 64 + 32 + 10, "cnn": 100 + 36 + 512 + 10}


def make(kind, seed=0, dropout=0.0, batchnorm=False):
    torch.manual_seed(seed)
    if kind == "mlp":
        layers = [torch.nn.Linear(64, 32)]
        if batchnorm:
            layers.append(torch.nn.BatchNorm1d(32))
        layers += [torch.nn.ReLU(), torch.nn.Dropout(dropout), torch.nn.Linear(32, 10)]
        return torch.nn.Sequential(*layers).double()
    return torch.nn.Sequential(
        torch.nn.Unflatten(1, (1, 8, 8)), torch.nn.Conv2d(1, 4, 3, padding=1),
        torch.nn.ReLU(), torch.nn.Conv2d(4, 8, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Flatten(), torch.nn.Linear(512, 10)).double()


def batch(i):
    return X[i % 14], Y[i % 14]


def closures(model, opt, i, usual=False):
    x, y = batch(i)
    lossf = torch.nn.functional.cross_entropy
    if usual:
        def closure():
            model.zero_grad()
            loss = lossf(model(x), y)
            loss.backward()
            return loss
        return closure

    def closure(backward=True):
        model.zero_grad()
        loss = lossf(model(x), y)
        if backward:
            loss.backward()
        return loss
    return closure


def flat_params(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).clone()


class FlatProblem:
    """The network as a function of one flat vector (the reference's view)."""

    def __init__(self, model, host=True):
        self.model, self.host = model, host
        self.params = list(model.parameters())

    def _set(self, theta):
        t = torch.from_numpy(np.asarray(theta)) if self.host else theta
        with torch.no_grad():
            for p, v in zip(self.params, t.split([p.numel() for p in self.params]),
                            strict=True):
                p.copy_(v.view_as(p))

    def _out(self, loss):
        return loss.detach().numpy() if self.host else loss.detach()

    def funcs(self, i, rng=None):
        x, y = batch(i)

        def value_and_grad(theta):
            self._set(theta)
            if rng is not None:
                torch.set_rng_state(rng)
            for p in self.params:
                p.grad = None
            loss = torch.nn.functional.cross_entropy(self.model(x), y)
            loss.backward()
            g = torch.cat([p.grad.reshape(-1) for p in self.params])
            return self._out(loss), g.numpy() if self.host else g

        def value(theta):
            self._set(theta)
            if rng is not None:
                torch.set_rng_state(rng)
            with torch.no_grad():
                return self._out(torch.nn.functional.cross_entropy(self.model(x), y))
        return value_and_grad, value


# --- equal to paltest.PAL on the flattened problem -------------------------------------

_VARIANTS = [("mlp", usual, hp) for usual in (False, True)
             for hp in ({}, {"beta": "fletcher-reeves"}, {"direction": "adam"})]


@pytest.mark.parametrize(("kind", "usual", "hp"),
                         [*_VARIANTS, ("cnn", False, {}), ("cnn", True, {})])
def test_bitwise_paltest_pal_on_the_flattened_problem(kind, usual, hp):
    """Both closures, PAL's constant and conjugate beta and PAL along Adam."""
    steps = N_STEPS if not (usual or hp) else 30
    model, ref_model = make(kind), make(kind)
    opt = PAL(model.parameters(), mu=0.3, **hp)
    ref, core = FlatProblem(ref_model), CorePAL(mu=0.3, **hp)
    theta = flat_params(ref_model).numpy()
    state = core.init(theta)
    cases = set()
    for i in range(steps):
        opt.step(closures(model, opt, i, usual))
        theta, state, info = core.step(theta, state, *ref.funcs(i))
        assert flat_params(model).numpy().tobytes() == theta.tobytes(), i
        assert opt.read_info()["case"] == int(info.case)
        cases.add(int(info.case))
    assert cases & {1, 2}


@pytest.fixture
def device_path(monkeypatch):
    """The evaluator a GPU runs (branch-free, on tensors), on CPU tensors."""
    monkeypatch.setattr(pal_torch, "HOST_PATH", False)


def test_device_path_is_paltest_pal_on_a_flat_tensor(device_path):
    model, ref_model = make("mlp"), make("mlp")
    opt = PAL(model.parameters(), mu=0.3)
    ref, core = FlatProblem(ref_model, host=False), CorePAL(mu=0.3)
    theta = flat_params(ref_model)
    state = core.init(theta)
    for i in range(30):
        opt.step(closures(model, opt, i))
        theta, state, info = core.step(theta, state, *ref.funcs(i))
        assert torch.equal(flat_params(model), theta)
    assert isinstance(opt.info.lr, torch.Tensor) and opt.info.lr.device.type == "cpu"


def test_device_path_never_reads_a_value(device_path, monkeypatch):
    """No tensor value reaches Python inside step: on a GPU, no synchronization."""
    model = make("mlp")
    opt = PAL(model.parameters(), mu=0.3, beta="polak-ribiere")
    opt.step(closures(model, opt, 0))
    reads = []

    def forbidden(name):
        def read(self, *args, **kwargs):
            reads.append(name)
            raise AssertionError(f"{name}: a tensor value read back inside step")
        return read

    for name in ("__bool__", "__float__", "__int__", "__index__", "item", "tolist",
                 "numpy", "__array__"):
        monkeypatch.setattr(torch.Tensor, name, forbidden(name))
    for i in range(1, 4):
        opt.step(closures(model, opt, i))
    monkeypatch.undo()
    assert not reads and opt.read_info()["n_fun"] == 2


# --- against the authors' algorithm ----------------------------------------------------

def authors_step(model, bufs, closure, mu, alpha, beta, s_max, eps=1e-10):
    """One step after the authors' ``PalOptimizer.step`` (float64 hyperparameters):
    per-parameter buffers and sums, the probe from theta, the update from the probe."""
    loss0 = closure(backward=True).detach()
    params = list(model.parameters())
    with torch.no_grad():
        dd = nn = torch.zeros((), dtype=torch.float64)
        for p, buf in zip(params, bufs, strict=True):
            buf.mul_(beta).add_(p.grad)
            dd = dd + torch.dot(p.grad.view(-1), buf.view(-1))
            nn = nn + torch.dot(buf.view(-1), buf.view(-1))
        n = torch.sqrt(nn)
        n = n if n != 0 else torch.tensor(eps, dtype=torch.float64)
        b = -dd / n
        for p, buf in zip(params, bufs, strict=True):
            p.add_(mu * -buf / n)
        loss_mu = closure(backward=False).detach()
        a = (loss_mu - loss0 - b * mu) / mu**2
        s = (-b / (2 * a) * alpha if (a > 0 and b < 0) else
             torch.tensor(mu, dtype=torch.float64) if b < 0 else torch.zeros(()))
        s = min(s, torch.tensor(s_max, dtype=torch.float64)) - mu
        if s != 0:
            for p, buf in zip(params, bufs, strict=True):
                p.add_(s * -buf / n)


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_each_step_within_rounding_of_the_authors_algorithm(kind):
    model, ref = make(kind), make(kind)
    mu, alpha, s_max = 0.3, 1 / 0.6, 10**0.5
    opt = PAL(model.parameters(), mu=mu)
    bufs = [torch.zeros_like(p) for p in ref.parameters()]
    ill = 0
    for i in range(N_STEPS):
        ref.load_state_dict(model.state_dict())
        for b, p in zip(bufs, model.parameters(), strict=True):
            b.copy_(opt.state[p]["buf"] if "buf" in opt.state[p] else torch.zeros_like(p))
        theta = flat_params(model).numpy()
        authors_step(ref, bufs, closures(ref, None, i), mu, alpha, 0.4, s_max)
        opt.step(closures(model, opt, i))
        info = opt.read_info()
        buf = torch.cat([opt.state[p]["buf"].reshape(-1) for p in model.parameters()])
        g = torch.cat([p.grad.reshape(-1) for p in model.parameters()]).numpy()
        probe = FlatProblem(make(kind))
        probe_theta = theta - mu * buf.numpy() / np.linalg.norm(buf.numpy())
        _, gp = probe.funcs(i)[0](probe_theta)
        bound = step_bound(theta, buf.numpy(), g, info["l0"], info["l_mu"],
                           float(np.linalg.norm(gp)), mu, alpha, s_max, "float64",
                           LOSS_TERMS[kind], via_probe=True)
        if bound is None:
            ill += 1
            continue
        err = np.abs(flat_params(model).numpy() - flat_params(ref).numpy())
        assert (err <= bound).all(), (i, float(err.max()))
    assert ill <= N_STEPS // 20


# --- random numbers, statistics, closures ----------------------------------------------

def test_dropout_same_mask_in_both_evaluations_and_one_forward_of_random_numbers():
    model = make("mlp", dropout=0.5)
    opt = PAL(model.parameters(), mu=0.3)
    ref_model = make("mlp", dropout=0.5)
    ref, core = FlatProblem(ref_model), CorePAL(mu=0.3)
    theta = flat_params(ref_model).numpy()
    state = core.init(theta)
    torch.manual_seed(123)
    for i in range(20):
        before = torch.get_rng_state()
        opt.step(closures(model, opt, i))
        after = torch.get_rng_state()
        theta, state, _ = core.step(theta, state, *ref.funcs(i, rng=before))
        assert flat_params(model).numpy().tobytes() == theta.tobytes()
        torch.set_rng_state(before)  # one forward pass draws exactly what the step drew
        with torch.no_grad():
            ref_model(batch(i)[0])
        assert torch.equal(torch.get_rng_state(), after)
        torch.set_rng_state(after)


@pytest.mark.parametrize("keep", [True, False])
def test_batchnorm_statistics_advance_once_per_step_with_module(keep):
    model = make("mlp", batchnorm=True)
    opt = PAL(model.parameters(), mu=0.3, module=model if keep else None)
    bn = model[1]
    for i in range(5):
        ref = make("mlp", batchnorm=True)
        ref.load_state_dict(model.state_dict())
        with torch.no_grad():
            ref(batch(i)[0])  # one training-mode forward pass at the step's start
        count = int(bn.num_batches_tracked)
        opt.step(closures(model, opt, i))
        if keep:
            assert int(bn.num_batches_tracked) == count + 1
            assert torch.equal(bn.running_mean, ref[1].running_mean)
            assert torch.equal(bn.running_var, ref[1].running_var)
        else:
            assert int(bn.num_batches_tracked) == count + 2


@pytest.mark.parametrize("usual", [False, True])
def test_grad_after_step_is_the_start_gradient(usual):
    model = make("mlp")
    opt = PAL(model.parameters(), mu=0.3)
    for i in range(3):
        ref = make("mlp")
        ref.load_state_dict(model.state_dict())
        x, y = batch(i)
        torch.nn.functional.cross_entropy(ref(x), y).backward()
        opt.step(closures(model, opt, i, usual))
        for p, q in zip(model.parameters(), ref.parameters(), strict=True):
            assert torch.equal(p.grad, q.grad)


def test_closure_returning_outputs_and_the_step_value():
    model = make("mlp")
    opt = PAL(model.parameters())
    x, y = batch(0)

    def loss_fn(backward=True):  # the authors' protocol: (loss, outputs)
        opt.zero_grad()
        out = model(x)
        loss = torch.nn.functional.cross_entropy(out, y)
        if backward:
            loss.backward()
        return loss, out

    loss, out = opt.step(loss_fn)
    assert out.shape == (100, 10) and loss.item() == opt.read_info()["loss"]


# --- groups, schedulers, frozen parameters, checkpoints --------------------------------

def test_scheduler_changes_mu_as_pal_with_that_mu():
    model, ref_model = make("mlp"), make("mlp")
    opt = PAL(model.parameters(), mu=1.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    ref = FlatProblem(ref_model)
    theta = flat_params(ref_model).numpy()
    state = CorePAL().init(theta)
    for i in range(6):
        mu = opt.param_groups[0]["lr"]
        assert mu == 0.5**i
        opt.step(closures(model, opt, i))
        sched.step()
        theta, state, _ = CorePAL(mu=mu).step(theta, state, *ref.funcs(i))
        assert flat_params(model).numpy().tobytes() == theta.tobytes()


def test_groups_share_the_line_hyperparameters():
    model = make("mlp")
    first, second = list(model[0].parameters()), list(model[3].parameters())
    opt = PAL([{"params": first}], mu=0.3)
    with pytest.raises(ValueError, match="lr: PAL makes one line search over all"):
        opt.add_param_group({"params": second, "lr": 0.5})
    opt.param_groups.pop()  # torch added it before the check
    opt.add_param_group({"params": second})  # the defaults: accepted
    opt.step(closures(model, opt, 0))
    opt.param_groups[1]["alpha"] = 1.0
    with pytest.raises(ValueError, match="alpha: .* group 0 has 1.66.*group 1 has 1.0"):
        opt.step(closures(model, opt, 1))
    opt.param_groups[0]["alpha"] = 1.0  # a change in every group applies at the next step
    opt.step(closures(model, opt, 1))
    for g in opt.param_groups:
        g["lr"] = 0.0
    with pytest.raises(ValueError, match="param_groups: mu: must be > 0.*'lr' is PAL's mu"):
        opt.step(closures(model, opt, 2))


def test_frozen_and_unused_parameters_are_left_out_and_untouched():
    model, ref_model = make("mlp"), make("mlp")
    for m in (model, ref_model):
        m[0].weight.requires_grad_(False)
    extra = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))  # never used
    opt = PAL([*model.parameters(), extra], mu=0.3)
    frozen, extra0 = model[0].weight.detach().clone(), extra.detach().clone()
    trainable = [p for p in ref_model.parameters() if p.requires_grad]
    ref, core = FlatProblem(ref_model), CorePAL(mu=0.3)
    ref.params = trainable
    theta = torch.cat([p.detach().reshape(-1) for p in trainable]).numpy().copy()
    state = core.init(theta)
    for i in range(10):
        opt.step(closures(model, opt, i))
        theta, state, _ = core.step(theta, state, *ref.funcs(i))
        got = torch.cat([p.detach().reshape(-1) for p in model.parameters()
                         if p.requires_grad])
        assert got.numpy().tobytes() == theta.tobytes()
    assert torch.equal(model[0].weight, frozen) and torch.equal(extra.detach(), extra0)
    assert not opt.state[model[0].weight] and not opt.state[extra]


@pytest.mark.parametrize("hp", [{}, {"direction": "adam"}, {"beta": "polak-ribiere"}])
def test_checkpoint_resumes_bitwise(hp):
    def train(model, opt, steps, start):
        for i in range(start, start + steps):
            opt.step(closures(model, opt, i))

    model = make("mlp", dropout=0.3)
    opt = PAL(model.parameters(), mu=0.3, **hp)
    torch.manual_seed(7)
    train(model, opt, 5, 0)
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(),
                "rng": torch.get_rng_state()}, buffer)
    train(model, opt, 5, 5)

    buffer.seek(0)
    saved = torch.load(buffer)
    fresh = make("mlp", seed=99, dropout=0.3)
    fresh.load_state_dict(saved["model"])
    fresh_opt = PAL(fresh.parameters(), mu=1.0, **hp)
    fresh_opt.load_state_dict(saved["opt"])
    torch.set_rng_state(saved["rng"])
    train(fresh, fresh_opt, 5, 5)
    assert torch.equal(flat_params(fresh), flat_params(model))
    for p, q in zip(model.parameters(), fresh.parameters(), strict=True):
        assert opt.state[p].keys() == fresh_opt.state[q].keys()
        for key in opt.state[p]:
            assert torch.equal(opt.state[p][key], fresh_opt.state[q][key])


# --- precision, non-finite values, refusals --------------------------------------------

def test_half_precision_refused_and_autocast_works():
    model = make("mlp").to(torch.bfloat16)
    opt = PAL(model.parameters())
    x, y = batch(0)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x.to(torch.bfloat16)), y)
        loss.backward()
        return loss
    with pytest.raises(TypeError, match="params: PAL computes its line in float32"):
        opt.step(closure)

    model = make("mlp").float()
    opt = PAL(model.parameters(), mu=0.3)

    def autocast_closure(backward=True):
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = torch.nn.functional.cross_entropy(model(x.float()), y)
        if backward:
            loss.backward()
        return loss
    first = opt.step(autocast_closure).item()
    for _ in range(10):
        loss = opt.step(autocast_closure)
    assert loss.item() < first and all(p.dtype == torch.float32 for p in model.parameters())


def test_nonfinite_probe_keeps_parameters_and_raise_restores_them():
    model = make("mlp")
    opt = PAL(model.parameters(), mu=0.3)
    opt.step(closures(model, opt, 0))
    before = flat_params(model)
    buf = [opt.state[p]["buf"].clone() for p in model.parameters()]
    calls = []

    def closure(backward=True):
        calls.append(backward)
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(batch(1)[0]), batch(1)[1])
        if backward:
            loss.backward()
            return loss
        return loss * float("nan")

    opt.step(closure)
    assert torch.equal(flat_params(model), before) and calls == [True, False]
    assert opt.read_info()["case"] == 3 and opt.read_info()["nonfinite"]
    assert all(torch.equal(opt.state[p]["buf"], b)
               for p, b in zip(model.parameters(), buf, strict=True))
    raising = PAL(model.parameters(), mu=0.3, on_nonfinite="raise")
    with pytest.raises(NonFiniteError):
        raising.step(closure)
    assert torch.equal(flat_params(model), before)  # not left at the probe


def test_refusals_name_the_argument():
    model = make("mlp")
    opt = PAL(model.parameters())
    with pytest.raises(RuntimeError, match="PAL.step needs a closure"):
        opt.step()
    with pytest.raises(RuntimeError, match="no parameter has a gradient"):
        opt.step(lambda: torch.zeros(()))
    with pytest.raises(ValueError, match="mu: must be > 0"):
        PAL(model.parameters(), mu=-1.0)
    with pytest.raises(ValueError, match="beta: must be a float in"):
        PAL(model.parameters(), beta="nope")
    mixed = torch.nn.Linear(2, 1)
    mixed.bias = torch.nn.Parameter(mixed.bias.detach().double())
    opt = PAL(mixed.parameters())

    def closure():
        opt.zero_grad()
        loss = (mixed.weight.sum() + mixed.bias.sum()) ** 2
        loss.backward()
        return loss
    with pytest.raises(TypeError, match="params: every parameter of the line must share"):
        opt.step(closure)


# --- the README's example --------------------------------------------------------------

def test_readme_example_runs_verbatim(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    out = run_section_example("## PAL in a PyTorch training loop", capsys)
    assert float(out[-1]) < 0.5 * float(out[0])  # the loss fell


def test_state_follows_the_parameters_to_another_evaluator(monkeypatch):
    """The flat state cached for one evaluator (or device, or dtype) is rebuilt from
    state[p] when the parameters move (e.g. model.cuda() between steps), not reused."""
    model = make("mlp")
    opt = PAL(model.parameters(), mu=0.3)
    for i in range(2):
        opt.step(closures(model, opt, i))
    buf = [opt.state[p]["buf"].clone() for p in model.parameters()]
    monkeypatch.setattr(pal_torch, "HOST_PATH", False)
    theta = flat_params(model)
    state = CorePAL(mu=0.3).init(theta)._replace(
        buf=torch.cat([b.reshape(-1) for b in buf]))
    want = CorePAL(mu=0.3).step(theta, state, *FlatProblem(make("mlp"), host=False).funcs(2))
    opt.step(closures(model, opt, 2))
    assert torch.equal(flat_params(model), want[0])
    model.float()  # another dtype: the state is cast and rebuilt
    opt.step(lambda: _float_closure(model, 3))
    assert all(opt.state[p]["buf"].dtype == torch.float32 for p in model.parameters())


def _float_closure(model, i):
    x, y = batch(i)
    model.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(x.float()), y)
    loss.backward()
    return loss


def test_pickled_optimizer_steps_as_the_original():
    import pickle

    model = make("mlp")
    opt = PAL(model.parameters(), mu=0.3, beta="polak-ribiere")
    opt.step(closures(model, opt, 0))
    twin_model, twin_opt = pickle.loads(pickle.dumps((model, opt)))
    for i in (1, 2):
        opt.step(closures(model, opt, i))
        twin_opt.step(closures(twin_model, twin_opt, i))
    assert torch.equal(flat_params(model), flat_params(twin_model))


@pytest.mark.gpu
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_cuda_steps_never_synchronize_and_are_pal_on_a_flat_tensor(dropout):
    """On a GPU: no step synchronizes (torch's sync debug mode raises on any), the steps
    are paltest.PAL's on the flat CUDA tensor bit for bit, and with dropout the GPU's
    generator gives both evaluations the mask of one forward pass and advances as one
    forward pass would (benchmarks/gpu_check.sh runs this)."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU (torch.cuda.is_available() is False)")
    model = make("mlp", dropout=dropout).cuda()
    ref_model = make("mlp", dropout=dropout).cuda()
    x, y = X[0].cuda(), Y[0].cuda()
    lossf = torch.nn.functional.cross_entropy
    opt, core = PAL(model.parameters(), mu=0.3), CorePAL(mu=0.3)
    params = list(ref_model.parameters())
    sizes = [p.numel() for p in params]

    def closure(backward=True):
        model.zero_grad()
        loss = lossf(model(x), y)
        if backward:
            loss.backward()
        return loss

    def at(theta, rng):
        with torch.no_grad():
            for p, v in zip(params, theta.split(sizes), strict=True):
                p.copy_(v.view_as(p))
        torch.cuda.set_rng_state(rng)

    def funcs(rng):
        def value_and_grad(theta):
            at(theta, rng)
            ref_model.zero_grad()
            loss = lossf(ref_model(x), y)
            loss.backward()
            return loss.detach(), torch.cat([p.grad.reshape(-1) for p in params])

        def value(theta):
            at(theta, rng)
            with torch.no_grad():
                return lossf(ref_model(x), y)
        return value_and_grad, value

    theta = flat_params(ref_model)
    state = core.init(theta)
    for _ in range(10):
        before = torch.cuda.get_rng_state()
        torch.cuda.set_sync_debug_mode("error")
        try:
            opt.step(closure)
        finally:
            torch.cuda.set_sync_debug_mode("default")
        after = torch.cuda.get_rng_state()
        theta, state, _ = core.step(theta, state, *funcs(before))
        assert torch.equal(flat_params(model), theta)
        torch.cuda.set_rng_state(before)  # one forward pass draws what the step drew
        with torch.no_grad():
            ref_model(x)
        assert torch.equal(torch.cuda.get_rng_state(), after)
        torch.cuda.set_rng_state(after)
