"""paltest.optimizers.pal_relative: PAL with mu relative to its previous step."""

from __future__ import annotations

import numpy as np
import pytest

from paltest import PAL
from paltest.optimizers.base import host_reads
from paltest.optimizers.pal_relative import RelativeMuPAL
from paltest.testing import check_optimizer


def _quadratic(diag):
    a = np.asarray(diag, dtype=np.float64)

    def value(x):
        return 0.5 * float(x @ (a * x))

    return value, lambda x: (value(x), a * x)


def test_first_step_is_pals_and_mu_follows_the_rule():
    value, vg = _quadratic([1.0, 10.0, 100.0])
    x = np.array([1.0, -2.0, 0.5])
    opt = RelativeMuPAL(rho=0.5, mu=0.3, alpha=1.0, beta=0.0, s_max=100.0)
    ref = PAL(mu=0.3, alpha=1.0, beta=0.0, s_max=100.0)
    s_opt, s_ref = opt.init(x), ref.init(x)
    assert s_opt.mu == 0.3
    xa, s_opt, info = opt.step(x, s_opt, vg, value)
    xb, _, info_b = ref.step(x, s_ref, vg, value)
    assert xa.tobytes() == xb.tobytes()   # the first step is PAL's, bitwise
    assert int(info.case) == 1 and s_opt.mu == 0.5 * float(info.step)
    # the second step measures at mu = rho * s_1: the same as PAL built with that mu
    ref2 = PAL(mu=s_opt.mu, alpha=1.0, beta=0.0, s_max=100.0)
    xc, s_opt2, _ = opt.step(xa, s_opt, vg, value)
    xd, _, _ = ref2.step(xa, s_opt.pal, vg, value)
    assert xc.tobytes() == xd.tobytes()
    assert opt.pal.mu == 0.3   # the wrapped PAL itself is not changed


def test_case_2_grows_mu_and_the_bounds_hold():
    # a concave line (no minimum ahead): case 2, s = mu, mu grows by `grow` up to mu_max
    def value(x):
        return -float(x @ x)

    def vg(x):
        return value(x), -2.0 * x

    opt = RelativeMuPAL(grow=3.0, mu=1.0, mu_max=5.0, s_max=10.0)
    x = np.array([1.0, 0.0])
    state = opt.init(x)
    mus = []
    for _ in range(3):
        x, state, info = opt.step(x, state, vg, value)
        assert int(info.case) == 2
        mus.append(state.mu)
    assert mus == [3.0, 5.0, 5.0]


def test_no_move_keeps_mu():
    value, vg = _quadratic([1.0, 1.0])
    opt = RelativeMuPAL(mu=0.7)
    x = np.zeros(2)   # zero gradient: case 0, no move
    state = opt.init(x)
    x2, state2, info = opt.step(x, state, vg, value)
    assert int(info.case) == 0 and state2.mu == 0.7 and x2.tobytes() == x.tobytes()


def test_arguments_and_records():
    with pytest.raises(ValueError, match="rho"):
        RelativeMuPAL(rho=0.0)
    with pytest.raises(ValueError, match="mu_min"):
        RelativeMuPAL(mu_min=10.0, mu_max=1.0)
    with pytest.raises(ValueError, match="alpha"):
        RelativeMuPAL(alpha=-1.0)
    opt = RelativeMuPAL(beta="polak-ribiere", s_max=1e6)
    hp = opt.hyperparameters
    assert hp["beta"] == "polak-ribiere" and hp["mu_max"] == 1e6 and hp["rho"] == 1.0
    assert "host" in host_reads(opt)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_protocol_invariants(xp, dtype):
    # non-finite values leave theta unchanged, namespace/dtype kept, no mutation,
    # deterministic, descent on convex quadratics, the counts of its calls
    check_optimizer(lambda: RelativeMuPAL(beta="polak-ribiere", alpha=1.0, s_max=1e3),
                    xp=xp, dtype=dtype, max_examples=10)
