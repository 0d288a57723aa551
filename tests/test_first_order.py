"""The first-order baselines: SGD, Adam, RMSProp, SGD-HD, ALI-G, COCOB-Backprop.

Each is checked against a plain NumPy loop written here after the reference
implementation it follows (torch.optim, the authors' packages), for NumPy / array-api-strict
parity, the non-finite rule, argument validation and dtype stability.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from paltest import backend
from paltest.optimizers.adam import Adam
from paltest.optimizers.alig import ALIG
from paltest.optimizers.base import NonFiniteError, select
from paltest.optimizers.cocob import COCOBBackprop
from paltest.optimizers.rmsprop import RMSProp
from paltest.optimizers.sgd import SGD
from paltest.optimizers.sgdhd import SGDHD

N_STEPS = 10
_rng = np.random.default_rng(1234)
A_HOST = _rng.standard_normal((7, 5))
B_HOST = _rng.standard_normal(7)
THETA0 = _rng.standard_normal(5)
QUARTIC = 0.025


# --- the test problem: 0.5 |A theta - b|^2 + QUARTIC * sum(theta^4) (non-negative) -------


def np_value_and_grad(theta):
    r = A_HOST @ theta - B_HOST
    return 0.5 * r @ r + QUARTIC * np.sum(theta**4), A_HOST.T @ r + 4 * QUARTIC * theta**3


def make_value_and_grad(xp, dtype="float64", loss_dtype=None):
    """The problem in namespace ``xp``; the loss may be returned in another dtype."""
    a = backend.from_host(A_HOST, xp, dtype=dtype)
    b = backend.from_host(B_HOST, xp, dtype=dtype)

    def value_and_grad(theta):
        r = xp.matmul(a, theta) - b
        loss = 0.5 * xp.vecdot(r, r) + QUARTIC * xp.sum(theta**4)
        grad = xp.matmul(r, a) + (4 * QUARTIC) * theta**3
        if loss_dtype is not None:
            loss = xp.astype(loss, getattr(xp, loss_dtype))
        return loss, grad

    return value_and_grad


# --- plain reference loops (NumPy, float64), after each reference implementation ---------


def ref_sgd(hp, n):
    """torch.optim.SGD, dampening 0."""
    theta, buf, out = THETA0.copy(), None, []
    mu = hp["momentum"]
    for _ in range(n):
        _, g = np_value_and_grad(theta)
        g = g + hp["weight_decay"] * theta
        if mu != 0:
            buf = g.copy() if buf is None else mu * buf + g
            g = g + mu * buf if hp["nesterov"] else buf
        theta = theta - hp["lr"] * g
        out.append((theta, hp["lr"]))
    return out


def ref_adam(hp, n):
    """torch.optim.Adam (its bias-correction arrangement)."""
    theta, m, v, out = THETA0.copy(), np.zeros(5), np.zeros(5), []
    b1, b2 = hp["beta1"], hp["beta2"]
    for t in range(1, n + 1):
        _, g = np_value_and_grad(theta)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        step_size = hp["lr"] / (1 - b1**t)
        denom = np.sqrt(v) / math.sqrt(1 - b2**t) + hp["eps"]
        theta = theta - step_size * m / denom
        out.append((theta, hp["lr"]))
    return out


def ref_rmsprop(hp, n):
    """torch.optim.RMSprop (alpha = rho)."""
    theta, sq, ga, buf, out = THETA0.copy(), np.zeros(5), np.zeros(5), np.zeros(5), []
    rho, mu = hp["rho"], hp["momentum"]
    for _ in range(n):
        _, g = np_value_and_grad(theta)
        sq = sq * rho + (1 - rho) * g * g
        if hp["centered"]:
            ga = ga + (1 - rho) * (g - ga)  # lerp
            avg = np.sqrt(sq - ga * ga) + hp["eps"]
        else:
            avg = np.sqrt(sq) + hp["eps"]
        if mu > 0:
            buf = buf * mu + g / avg
            theta = theta - hp["lr"] * buf
        else:
            theta = theta - hp["lr"] * g / avg
        out.append((theta, hp["lr"]))
    return out


def ref_sgdhd(hp, n):
    """The authors' hypergrad.SGDHD (dampening 0, no weight decay)."""
    theta, lr, grad_prev, buf, out = THETA0.copy(), hp["lr"], np.zeros(5), None, []
    mu = hp["momentum"]
    for _ in range(n):
        _, grad = np_value_and_grad(theta)
        lr = lr + hp["hypergrad_lr"] * (grad @ grad_prev)
        if mu != 0:
            buf = grad.copy() if buf is None else mu * buf + grad
            grad = grad + mu * buf if hp["nesterov"] else buf
        grad_prev = grad
        theta = theta - lr * grad
        out.append((theta, lr))
    return out


def ref_alig(hp, n):
    """The authors' alig.th.AliG, standard momentum."""
    theta, buf, out = THETA0.copy(), np.zeros(5), []
    mu = hp["momentum"]
    for _ in range(n):
        loss, g = np_value_and_grad(theta)
        step = loss / (np.linalg.norm(g) ** 2 + hp["delta"])
        if hp["max_lr"] is not None:
            step = min(step, hp["max_lr"])
        theta = theta - step * g
        if mu:
            buf = mu * buf - step * g
            theta = theta + mu * buf
        out.append((theta, step))
    return out


def ref_cocob(hp, n):
    """The authors' TensorFlow COCOB optimizer."""
    z = np.zeros(5)
    theta, gsum, asum, big_l, tilde_w, reward = THETA0.copy(), z, z, z + hp["eps"], z, z
    out = []
    for _ in range(n):
        _, g = np_value_and_grad(theta)
        big_l = np.maximum(big_l, np.abs(g))
        gsum = gsum + g
        asum = asum + np.abs(g)
        reward = np.maximum(reward - g * tilde_w, 0)
        new_w = -gsum / (big_l * np.maximum(asum + big_l, hp["alpha"] * big_l)) * (
            reward + big_l
        )
        theta_next = theta - tilde_w + new_w
        tilde_w = new_w
        out.append((theta_next, np.linalg.norm(theta_next - theta) / np.linalg.norm(g)))
        theta = theta_next
    return out


REFERENCES = {SGD: ref_sgd, Adam: ref_adam, RMSProp: ref_rmsprop, SGDHD: ref_sgdhd,
              ALIG: ref_alig, COCOBBackprop: ref_cocob}

CONFIGS = {
    "sgd": (SGD, dict(lr=0.02)),
    "sgd-momentum": (SGD, dict(lr=0.02, momentum=0.9)),
    "sgd-nesterov-wd": (SGD, dict(lr=0.02, momentum=0.9, nesterov=True, weight_decay=0.1)),
    "adam": (Adam, dict(lr=0.05)),
    "adam-betas": (Adam, dict(lr=0.05, beta1=0.5, beta2=0.9, eps=1e-3)),
    "rmsprop": (RMSProp, dict(lr=0.01)),
    "rmsprop-momentum": (RMSProp, dict(lr=0.01, momentum=0.5)),
    "rmsprop-centered": (RMSProp, dict(lr=0.01, centered=True)),
    "rmsprop-centered-momentum": (RMSProp, dict(lr=0.01, momentum=0.5, centered=True)),
    "sgdhd": (SGDHD, dict(lr=0.01, hypergrad_lr=1e-5)),
    "sgdhd-momentum": (SGDHD, dict(lr=0.01, hypergrad_lr=1e-5, momentum=0.5)),
    "sgdhd-nesterov": (SGDHD, dict(lr=0.01, hypergrad_lr=1e-5, momentum=0.5, nesterov=True)),
    "alig": (ALIG, dict(max_lr=0.06)),
    "alig-uncapped": (ALIG, dict(max_lr=None, momentum=0.0)),
    "cocob": (COCOBBackprop, dict()),
    "cocob-alpha": (COCOBBackprop, dict(alpha=10.0)),
}
CONFIG_IDS = list(CONFIGS)


def make(config, **extra):
    cls, kwargs = CONFIGS[config]
    return cls(**kwargs, **extra)


def run(opt, xp, n=N_STEPS, dtype="float64", vg=None):
    """Steps from THETA0: a list of (theta, state, info)."""
    vg = vg or make_value_and_grad(xp, dtype)
    theta = backend.from_host(THETA0, xp, dtype=dtype)
    state = opt.init(theta)
    out = []
    for _ in range(n):
        theta, state, info = opt.step(theta, state, vg, None)
        out.append((theta, state, info))
    return out


def host(x):
    return np.asarray(backend.to_host(x))


def assert_close(got, ref, rel=1e-12):
    """``|got - ref| <= rel * |ref|`` in the 2-norm (elements near 0 may differ by an ulp)."""
    got, ref = np.asarray(got, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    assert np.linalg.norm(got - ref) <= rel * np.linalg.norm(ref), (got, ref)


def state_arrays(state):
    return [host(f) for f in state if f is not None]


# --- tests --------------------------------------------------------------------------------


@pytest.mark.parametrize("config", CONFIG_IDS)
def test_matches_reference_loop(config):
    xp = backend.resolve_namespace("numpy")
    opt = make(config)
    ref = REFERENCES[type(opt)](opt.hyperparameters, N_STEPS)
    got = run(opt, xp)
    for (theta, _, info), (r_theta, r_lr) in zip(got, ref, strict=True):
        assert_close(host(theta), r_theta)
        assert_close(host(info.lr), r_lr)
        assert not bool(host(info.nonfinite))
        assert info.n_fun == 1 and info.n_grad == 1
        assert type(info.n_fun) is int and type(info.n_grad) is int
    # the method moved and stayed finite
    final = host(got[-1][0])
    assert np.all(np.isfinite(final)) and not np.allclose(final, THETA0)


def test_adaptive_learning_rates_adapt():
    """Guards against reference tests that pass trivially (lr constant or never clipped)."""
    xp = backend.resolve_namespace("numpy")
    lrs = [backend.to_float(i.lr) for _, _, i in run(make("sgdhd"), xp)]
    assert len(set(lrs)) > 5
    clipped = [bool(host(i.clipped)) for _, _, i in run(make("alig"), xp)]
    assert any(clipped) and not all(clipped)
    lrs = [backend.to_float(i.lr) for _, _, i in run(make("cocob"), xp)]
    assert len(set(lrs)) > 5 and all(lr > 0 for lr in lrs)


@pytest.mark.parametrize("config", CONFIG_IDS)
def test_namespace_parity(config, xp):
    ref = run(make(config), backend.resolve_namespace("numpy"))
    got = run(make(config), xp)
    for (theta, state, info), (r_theta, r_state, r_info) in zip(got, ref, strict=True):
        assert backend.namespace(theta) is xp
        assert_close(host(theta), host(r_theta))
        for s, r in zip(state_arrays(state), state_arrays(r_state), strict=True):
            assert_close(s, r)
        for field in ("loss", "lr", "nonfinite"):
            value = getattr(info, field)
            assert backend.namespace(value) is xp and value.ndim == 0, field
            assert_close(host(value), host(getattr(r_info, field)))


class _Bad:
    """value_and_grad that is non-finite on chosen calls (NaN loss or inf in the grad)."""

    def __init__(self, xp, bad_calls, dtype="float64"):
        self.vg = make_value_and_grad(xp, dtype)
        self.xp, self.bad, self.calls = xp, bad_calls, 0

    def __call__(self, theta):
        loss, g = self.vg(theta)
        self.calls += 1
        kind = self.bad.get(self.calls)
        if kind == "nan-loss":
            loss = loss * float("nan")
        elif kind == "inf-grad":
            g = g + self.xp.asarray([float("inf")] + [0.0] * (g.shape[0] - 1), dtype=g.dtype)
        elif kind == "nan-grad":
            g = g * float("nan")
        return loss, g


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy warns on the NaN arithmetic
@pytest.mark.parametrize("config", CONFIG_IDS)
def test_nonfinite_leaves_theta_and_state(config, xp):
    opt = make(config)
    bad = {3: "nan-loss", 4: "inf-grad", 7: "nan-grad"}
    vg = _Bad(xp, bad)
    theta = backend.from_host(THETA0, xp)
    state = opt.init(theta)
    clean = [host(t) for t, _, _ in run(make(config), xp, n=N_STEPS - len(bad))]
    good = 0
    for call in range(1, N_STEPS + 1):
        theta_next, state_next, info = opt.step(theta, state, vg, None)
        if call in bad:
            assert bool(host(info.nonfinite))
            assert host(theta_next).tobytes() == host(theta).tobytes()
            for s, r in zip(state_arrays(state_next), state_arrays(state), strict=True):
                assert s.tobytes() == r.tobytes()
            assert backend.to_float(info.lr) == 0.0
        else:
            assert not bool(host(info.nonfinite))
            # the state was not poisoned: the run continues as if bad steps never happened
            assert host(theta_next).tobytes() == clean[good].tobytes()
            good += 1
        theta, state = theta_next, state_next


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("config", CONFIG_IDS)
def test_nonfinite_raise_mode(config, xp):
    opt = make(config, on_nonfinite="raise")
    # good steps in raise mode are the flag mode's steps
    got = run(opt, xp, n=2)
    ref = run(make(config), xp, n=2)
    assert host(got[-1][0]).tobytes() == host(ref[-1][0]).tobytes()
    for kind in ("nan-loss", "inf-grad"):
        theta = backend.from_host(THETA0, xp)
        with pytest.raises(NonFiniteError):
            opt.step(theta, opt.init(theta), _Bad(xp, {1: kind}), None)


@pytest.mark.parametrize("config", CONFIG_IDS)
@pytest.mark.parametrize("loss_dtype", [None, "float64"])
def test_float32_stays_float32(config, loss_dtype, xp):
    vg = make_value_and_grad(xp, "float32", loss_dtype=loss_dtype)
    opt = make(config)
    for theta, state, info in run(opt, xp, n=3, dtype="float32", vg=vg):
        assert theta.dtype == xp.float32
        for field in state:
            if field is not None:
                assert field.dtype == xp.float32
        assert info.lr.dtype == xp.float32
        assert info.nonfinite.dtype == xp.bool
    assert np.all(np.isfinite(host(theta)))
    ref = run(make(config), xp, n=3)[-1][0]
    np.testing.assert_allclose(host(theta), host(ref), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("config", CONFIG_IDS)
def test_no_host_transfer_in_flag_mode(config, forbid_value_reads):
    """A flag-mode step converts nothing to a Python scalar and never calls to_host."""
    xp = backend.resolve_namespace("array_api_strict")
    vg = make_value_and_grad(xp)
    opt = make(config)
    theta = backend.from_host(THETA0, xp)
    state = opt.init(theta)
    forbid_value_reads()
    for _ in range(3):
        theta, state, info = opt.step(theta, state, vg, None)


BAD_ARGS = [
    (SGD, dict(lr=0.0), ValueError, "lr"),
    (SGD, dict(lr=float("nan")), ValueError, "lr"),
    (SGD, dict(lr="fast"), TypeError, "lr"),
    (SGD, dict(momentum=1.0), ValueError, "momentum"),
    (SGD, dict(momentum=-0.1), ValueError, "momentum"),
    (SGD, dict(nesterov=1), TypeError, "nesterov"),
    (SGD, dict(nesterov=True), ValueError, "nesterov"),
    (SGD, dict(weight_decay=-1.0), ValueError, "weight_decay"),
    (SGD, dict(on_nonfinite="ignore"), ValueError, "on_nonfinite"),
    (Adam, dict(lr=-1e-3), ValueError, "lr"),
    (Adam, dict(beta1=1.0), ValueError, "beta1"),
    (Adam, dict(beta2=True), TypeError, "beta2"),
    (Adam, dict(eps=0.0), ValueError, "eps"),
    (Adam, dict(on_nonfinite=None), ValueError, "on_nonfinite"),
    (RMSProp, dict(lr=float("inf")), ValueError, "lr"),
    (RMSProp, dict(rho=1.0), ValueError, "rho"),
    (RMSProp, dict(eps=-1.0), ValueError, "eps"),
    (RMSProp, dict(momentum=2.0), ValueError, "momentum"),
    (RMSProp, dict(centered="yes"), TypeError, "centered"),
    (SGDHD, dict(lr=0.0), ValueError, "lr"),
    (SGDHD, dict(hypergrad_lr=-1e-3), ValueError, "hypergrad_lr"),
    (SGDHD, dict(momentum=1.5), ValueError, "momentum"),
    (SGDHD, dict(nesterov=True), ValueError, "nesterov"),
    (ALIG, dict(max_lr=0.0), ValueError, "max_lr"),
    (ALIG, dict(max_lr="big"), TypeError, "max_lr"),
    (ALIG, dict(momentum=-0.5), ValueError, "momentum"),
    (ALIG, dict(delta=0.0), ValueError, "delta"),
    (COCOBBackprop, dict(alpha=0.0), ValueError, "alpha"),
    (COCOBBackprop, dict(eps=-1e-8), ValueError, "eps"),
    (COCOBBackprop, dict(on_nonfinite="warn"), ValueError, "on_nonfinite"),
]


@pytest.mark.parametrize(("cls", "kwargs", "err", "name"), BAD_ARGS,
                         ids=[f"{c.__name__}-{n}-{i}" for i, (c, _, _, n) in enumerate(BAD_ARGS)])
def test_argument_validation_names_the_argument(cls, kwargs, err, name):
    with pytest.raises(err, match=rf"^{name}:"):
        cls(**kwargs)


@pytest.mark.parametrize("config", CONFIG_IDS)
def test_hyperparameters_are_floats_and_repr(config):
    opt = make(config)
    for key, value in opt.hyperparameters.items():
        assert value is None or type(value) in (float, bool), key
    assert repr(opt).startswith(type(opt).__name__ + "(")
    assert "on_nonfinite='flag'" in repr(opt)


@pytest.mark.parametrize("config", ["sgd-momentum", "adam", "cocob"])
def test_bad_inputs_are_rejected(config):
    xp = backend.resolve_namespace("numpy")
    opt = make(config)
    theta = backend.from_host(THETA0, xp)
    state = opt.init(theta)
    with pytest.raises(ValueError, match="state"):
        opt.step(theta[:3], state, make_value_and_grad(xp), None)
    with pytest.raises(ValueError, match="grad"):
        opt.step(theta, state, lambda th: (1.0, th[:3]), None)
    with pytest.raises(TypeError, match="theta"):
        opt.init(np.arange(3))


def test_defaults():
    assert SGD().hyperparameters == dict(lr=0.1, momentum=0.0, nesterov=False,
                                         weight_decay=0.0)
    assert Adam().hyperparameters == dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8)
    assert RMSProp().hyperparameters == dict(lr=1e-2, rho=0.9, eps=1e-8, momentum=0.0,
                                             centered=False)
    assert SGDHD().hyperparameters == dict(lr=1e-3, hypergrad_lr=1e-3, momentum=0.0,
                                           nesterov=False)
    assert ALIG().hyperparameters == dict(max_lr=0.1, momentum=0.9, delta=1e-5)
    assert COCOBBackprop().hyperparameters == dict(alpha=100.0, eps=1e-8)


@pytest.mark.parametrize("ok", [True, False])
def test_select_is_where_for_a_scalar_condition(xp, ok):
    """Equal values to ``xp.where`` on every namespace; on NumPy one of the arrays itself."""
    new = xp.asarray([1.0, -0.0, float("inf")])
    old = xp.asarray([2.0, 0.0, -1.0])
    cond = xp.asarray(ok)
    got = select(xp, cond, new, old)
    np.testing.assert_array_equal(backend.to_host(got),
                                  backend.to_host(xp.where(cond, new, old)))
    assert np.array_equal(np.signbit(backend.to_host(got)),
                          np.signbit(backend.to_host(new if ok else old)))
    if backend.on_host(xp):
        assert got is (new if ok else old)
    # a selection that would change dtype or shape stays xp.where
    wide = xp.asarray([1.0, 2.0, 3.0], dtype=xp.float32)
    mixed = select(xp, cond, wide, old)
    assert mixed.dtype == xp.where(cond, wide, old).dtype


# --------------------------------------------------------------- issue 12 regressions

def _quadratic_step(opt, loss):
    theta = np.array([1.0, 2.0])
    A = np.diag([1.0, 3.0])
    return opt.step(theta, opt.init(theta), lambda t: (loss, A @ t), None)


@pytest.mark.parametrize("config", CONFIG_IDS)
@pytest.mark.parametrize("bad", [np.asarray(1 + 2j), np.complex128(1.0), np.asarray(True),
                                 np.bool_(False), np.asarray([1 + 0j]), np.asarray("1.0")],
                         ids=repr)
def test_bool_and_complex_losses_are_rejected(config, bad):
    """Issue 12 D2: NumPy bool/complex losses are rejected naming ``loss``, as Python
    bools and complex numbers are, instead of being cast (ComplexWarning; True -> 1.0)."""
    with pytest.raises(TypeError, match="^loss: dtype"):
        _quadratic_step(make(config), bad)
    with pytest.raises(TypeError, match="^loss:"):
        _quadratic_step(make(config), True)
    with pytest.raises(TypeError, match="^loss:"):
        _quadratic_step(make(config), 1 + 2j)


@pytest.mark.parametrize("loss", [np.asarray(3), np.int32(3), np.asarray([3], dtype=np.int8),
                                  np.asarray(3.0, dtype=np.float16)], ids=repr)
def test_integer_and_half_losses_are_cast_like_python_ints(loss):
    """Integer-dtype losses are accepted and cast to the parameters' dtype, as a Python
    int is (consistent; exact for these values); float16 too."""
    for config in CONFIG_IDS:
        got = _quadratic_step(make(config), loss)
        ref = _quadratic_step(make(config), 3)
        assert np.array_equal(got[0], ref[0])
        assert got[2].loss.dtype == np.float64 and float(got[2].loss) == 3.0


@pytest.mark.parametrize("config", CONFIG_IDS)
@pytest.mark.parametrize("bad", [1.0, (1.0,), (1.0, np.ones(2), 3), None])
def test_value_and_grad_that_is_not_a_pair_is_named(config, bad):
    """Issue 12 D3: an error naming ``value_and_grad``, not "cannot unpack ..."."""
    theta = np.array([1.0, 2.0])
    opt = make(config)
    with pytest.raises(TypeError, match="^value_and_grad: must return a .loss, grad. pair"):
        opt.step(theta, opt.init(theta), lambda t: bad, None)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_finiteness_with_a_sum_that_overflows(dtype, xp):
    """The NumPy finiteness test reads the gradient's sum first: a sum that overflows
    (finite entries near the dtype's maximum) must still count as finite, and an inf or
    NaN entry anywhere as not finite, exactly as the entrywise test says."""
    from paltest.optimizers.base import first_order_start

    top = float(np.finfo(dtype).max) / 2
    cases = {
        "overflowing sum": ([top, top, top, -1.0], True),
        "cancelling infs": ([np.inf, -np.inf, 1.0, 1.0], False),
        "one nan": ([1.0, np.nan, 1.0, 1.0], False),
        "huge and inf": ([top, top, np.inf, 0.0], False),
        "plain": ([1.0, -2.0, 3.0, 0.5], True),
    }
    theta = backend.from_host(np.zeros(4, dtype=dtype), xp)
    for name, (g, want) in cases.items():
        grad = backend.from_host(np.asarray(g, dtype=dtype), xp)
        _, _, _, ok = first_order_start(theta, None, lambda t, grad=grad: (1.0, grad), "flag")
        assert bool(backend.to_host(ok)) is want, name
        theta_next, _, info = SGD(lr=1e-300 if dtype == "float64" else 1e-38).step(
            theta, SGD().init(theta), lambda t, grad=grad: (1.0, grad))
        assert bool(backend.to_host(info.nonfinite)) is (not want), name


def test_step_wrapper_keeps_the_methods_signature():
    """The detaching wrapper of ``step`` passes keywords, leaves a missing ``value`` out
    (SGD's own default applies; PAL, which needs it, raises TypeError naming it)."""
    import inspect

    from paltest import PAL

    vg = lambda t: (float(t @ t), 2 * t)  # noqa: E731
    theta = np.array([1.0, 2.0])
    a = SGD().step(theta, SGD().init(theta), vg)
    b = SGD().step(theta=theta, state=SGD().init(theta), value_and_grad=vg, value=None)
    assert a[0].tobytes() == b[0].tobytes()
    assert list(inspect.signature(SGD.step).parameters)[-1] == "value"
    with pytest.raises(TypeError, match="value"):
        PAL().step(theta, PAL().init(theta), vg)


# --- the state argument of every optimizer's step (audit 2, N4) --------------------------


def _registry_optimizers():
    from paltest.optimizers import registry

    return {n: (lambda n=n: registry.make(n, n_batches_per_epoch=4)) for n in registry.names()}


def _quadratic(th):
    return 0.5 * (th @ th), th.copy()


@pytest.mark.parametrize("name", list(_registry_optimizers()))
def test_step_refuses_a_state_it_did_not_make(name):
    """Another optimizer's state used to fail deep inside the update ("unsupported
    operand type(s) for +: 'builtin_function_or_method'"), ``None`` with an
    AttributeError: both are a TypeError naming ``state`` and the expected type."""
    from paltest.optimizers.pal import PAL
    from paltest.optimizers.sgdhd import SGDHD

    opt = _registry_optimizers()[name]()
    theta = np.array([1.0, -2.0, 0.5])
    other = (SGDHD() if type(opt) is PAL else PAL()).init(theta)
    value = lambda th: 0.5 * (th @ th)  # noqa: E731
    for state in (other, None, (), [np.zeros(3)]):
        with pytest.raises(TypeError, match=r"^state: expected the \w+ that \w+\.init\(theta\)"):
            opt.step(theta, state, _quadratic, value)


@pytest.mark.parametrize("name", list(_registry_optimizers()))
@pytest.mark.parametrize(("theta_dtype", "state_dtype"), [("float64", "float32"),
                                                         ("float32", "float64")])
def test_step_refuses_a_state_of_another_dtype(name, theta_dtype, state_dtype, xp):
    """``PAL().step(float64 theta, PAL().init(float32 theta))`` returned float32 parameters
    silently; a state made for another dtype is now a TypeError naming the field (the
    optimizers whose state holds no floating array have nothing to mix up)."""
    opt = _registry_optimizers()[name]()
    theta = backend.from_host(np.array([1.0, -2.0, 0.5]), xp, dtype=theta_dtype)
    state = opt.init(backend.from_host(np.array([1.0, -2.0, 0.5]), xp, dtype=state_dtype))
    value = lambda th: 0.5 * xp.sum(th * th)  # noqa: E731
    vg = lambda th: (value(th), th * 1.0)  # noqa: E731
    floating = [f for f in state if getattr(f, "dtype", None) is not None
                and not isinstance(f, float) and xp.isdtype(f.dtype, "real floating")]
    if not floating:
        theta_next = opt.step(theta, state, vg, value)[0]
        assert theta_next.dtype == theta.dtype
        return
    with pytest.raises(TypeError, match=rf"^state: \w+ has dtype {state_dtype}"):
        opt.step(theta, state, vg, value)


def test_state_checks_name_shape_namespace_and_nested_fields():
    from paltest.optimizers.base import check_state
    from paltest.optimizers.pal import PAL

    theta = np.ones(3)
    state = PAL(direction="adam").init(theta)
    check_state(theta, state)
    bad = state._replace(base=state.base._replace(m=np.ones(3, dtype=np.float32)))
    with pytest.raises(TypeError, match=r"^state\.base: m has dtype float32, theta float64"):
        check_state(theta, bad)
    with pytest.raises(ValueError, match=r"^state: buf of shape \(4,\) does not match"):
        check_state(theta, state._replace(buf=np.ones(4)))
    strict = backend.resolve_namespace("array_api_strict")
    with pytest.raises(TypeError, match=r"^state: buf is a Array, not an array of the "):
        check_state(theta, state._replace(buf=strict.ones(3, dtype=strict.float64)))
