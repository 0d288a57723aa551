r"""A first-order rounding bound on one PAL step computed by two implementations.

Two implementations of PAL's step from the same parameters :math:`\theta` and
direction state may differ in the order of a reduction (the norm
:math:`n = \lVert\mathrm{buf}\rVert` and the dot product :math:`g\cdot\mathrm{buf}`
over :math:`N` parameters: XLA's fusion, a per-tensor sum, BLAS blocking), in whether a
multiply-add is fused, and in the order of the sums inside the loss (a jitted network
against an eager one). A sum of :math:`k` terms computed in any order lies within
:math:`k u` of the exact sum relative to the sum of the terms' magnitudes (:math:`u`
the unit roundoff; Higham, *Accuracy and Stability of Numerical Algorithms*, Sec. 3.1),
so each implementation is within that of the exact value, and the two within twice it:

* :math:`n`: :math:`\delta n \le 2\rho n`, :math:`\rho = (N/2 + 3)u` (the squares'
  sum, the square root, and a fused or unfused :math:`\beta\,\mathrm{buf} + g`);
* :math:`b = -g\cdot\mathrm{buf}/n`: :math:`\delta b \le 2(N u \sum|g_i\mathrm{buf}_i|/n
  + \rho|b|)`;
* the measuring point :math:`p = \theta - (\mu/n)\mathrm{buf}`:
  :math:`\delta p_i \le 4u(|\theta_i| + \mu|\mathrm{buf}_i|/n) + 2\rho\mu|\mathrm{buf}_i|/n`;
* the loss there: :math:`\delta l_\mu \le G\lVert\delta p\rVert + 2Ku|l_\mu|`, with
  :math:`G` the gradient norm at :math:`p` (first order) and :math:`K` the longest sum in
  one loss evaluation (the losses here are means of non-negative per-sample terms, so
  the sum of magnitudes is the loss itself);
* :math:`D = l_\mu - l_0 - b\mu` (the sign of :math:`a`):
  :math:`\delta D \le \delta l_\mu + \mu\,\delta b + 4u(|l_\mu| + |l_0| + \mu|b|)`;
* case 1: :math:`s = \alpha\mu^2(-b)/(2D)`, :math:`\delta s/s \le \delta b/|b| +
  \delta D/|D| + 6u`; case 2 and a clipped step are exact (:math:`\mu`, :math:`s_{max}`);
* :math:`\theta' = \theta - (s/n)\mathrm{buf}`: :math:`\delta\theta'_i \le
  (s/n)|\mathrm{buf}_i|(\delta s/s + 2\rho + 4u) + 2u|\theta_i|`, plus
  :math:`4u(|\theta_i| + (\mu + |s-\mu|)|\mathrm{buf}_i|/n)` when one implementation
  moves from the measuring point (the authors' code; in case 0 it moves back by
  :math:`\mu`).

Where the case or the clipping is decided within these bounds (:math:`|D| \le \delta D`,
:math:`|b| \le \delta b`, :math:`|s - s_{max}| \le \delta s`) the two implementations may
legitimately choose differently, and :func:`step_bound` returns ``None``.
"""

from __future__ import annotations

import numpy as np


def unit_roundoff(dtype) -> float:
    return float(np.finfo(np.dtype(dtype)).eps) / 2


def step_bound(theta, buf, g, l0, l_mu, grad_norm_probe, mu, alpha, s_max, dtype,
               loss_terms, via_probe=False):
    """Per-entry bound on :math:`|\\theta'_A - \\theta'_B|` for one step (host arrays,
    the values of implementation A), or ``None`` where the step is ill-conditioned.
    ``alpha`` and ``s_max`` are the values A used."""
    theta, buf, g = (np.asarray(v, dtype=np.float64) for v in (theta, buf, g))
    u = unit_roundoff(dtype)
    N = theta.size
    n = float(np.linalg.norm(buf))
    if n == 0:
        return None
    rho = (N / 2 + 3) * u
    b = -float(g @ buf) / n
    db = 2 * (N * u * float(np.abs(g * buf).sum()) / n + rho * abs(b))
    dn_rel = 2 * rho
    dp = 4 * u * (np.abs(theta) + mu * np.abs(buf) / n) + dn_rel * mu * np.abs(buf) / n
    dl = grad_norm_probe * float(np.linalg.norm(dp)) + 2 * loss_terms * u * abs(l_mu)
    D = l_mu - l0 - b * mu
    dD = dl + mu * db + 4 * u * (abs(l_mu) + abs(l0) + mu * abs(b))
    if abs(b) <= db or (b < 0 and abs(D) <= dD):
        return None
    if b >= 0:  # case 0 in both: theta unchanged (the authors' code moves back from p)
        return 4 * u * (np.abs(theta) + 2 * mu * np.abs(buf) / n) if via_probe else \
            np.zeros_like(theta)
    if D > 0:
        s = alpha * mu * mu * (-b) / (2 * D)
        ds_rel = db / abs(b) + dD / abs(D) + 6 * u
    else:
        s, ds_rel = mu, 0.0
    if s > s_max:
        if abs(s - s_max) <= ds_rel * s:
            return None
        s, ds_rel = s_max, 0.0
    elif ds_rel and abs(s - s_max) <= ds_rel * s:
        return None
    lr = s / n
    bound = lr * np.abs(buf) * (ds_rel + dn_rel + 4 * u) + 2 * u * np.abs(theta)
    if via_probe:
        bound += 4 * u * (np.abs(theta) + (mu + abs(s - mu)) * np.abs(buf) / n)
    return bound
