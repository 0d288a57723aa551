r"""The shape of one sampled line, on the host: parabolas, minima, convexity, angles.

Pure functions of host numbers (NumPy, float64), used by
:class:`paltest.testbed.lines.LineSampler` once a line's samples are on the host, and
usable on any samples :math:`(s_k, l_k)` of a line function :math:`l(s)`.

* :func:`pal_parabola` - PAL's parabola :math:`\hat l(s) = a s^2 + b s + c` through
  :math:`l(0)`, with slope :math:`l'(0)` there and through :math:`l(\mu)` (the paper's
  Eq. 2): :math:`a = (l(\mu) - l(0) - l'(0)\mu)/\mu^2`, :math:`b = l'(0)`,
  :math:`c = l(0)`;
* :func:`parabola_minimum` - :math:`-b/(2a)` where :math:`a > 0`, else NaN (no minimum);
* :func:`lsq_parabola` - the least-squares parabola of the samples and its relative
  residual :math:`\mathrm{RMS}(\hat l - l)/(\max l - \min l)` (0 for an exact fit);
* :func:`sampled_minimum` - the lowest sample, refined by the parabola through it and
  its two neighbours (exact for a parabola sampled on an even grid);
* :func:`classify` - ``"convex"``, ``"nonconvex"``, ``"edge"`` or ``"flat"``
  around the sampled minimum (see :data:`SHAPES`);
* :func:`angle_degrees` - the angle from its cosine, in degrees.

Example:
    >>> import numpy as np
    >>> s = np.linspace(-0.5, 1.5, 50)
    >>> l = 2.0 * (s - 0.4) ** 2 + 1.0
    >>> a, b, c = pal_parabola(l0=1.32, dl0=-1.6, lmu=1.0 + 2 * 0.6 ** 2, mu=1.0)
    >>> round(parabola_minimum(a, b), 12), round(sampled_minimum(s, l)[0], 12)
    (0.4, 0.4)
    >>> classify(s, l, window=0.5, rtol=1e-12)
    'convex'
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["SHAPES", "angle_degrees", "classify", "lsq_parabola", "open_side",
           "pal_parabola", "parabola_minimum", "rounding_tolerance", "sampled_minimum"]

#: The shapes :func:`classify` reports (``"skipped"``: the sampler had no line, e.g. the
#: optimizer did not move or its step was not finite).
SHAPES = ("convex", "nonconvex", "edge", "flat", "skipped")


def pal_parabola(l0: float, dl0: float, lmu: float, mu: float) -> tuple[float, float, float]:
    """PAL's parabola ``(a, b, c)`` from :math:`l(0)`, :math:`l'(0)` and :math:`l(\\mu)`
    (the paper's Eq. 2; :math:`\\mu > 0`)."""
    l0, dl0, lmu, mu = float(l0), float(dl0), float(lmu), float(mu)
    if not mu > 0:
        raise ValueError(f"mu: must be > 0, got {mu!r}")
    return (lmu - l0 - dl0 * mu) / (mu * mu), dl0, l0


def parabola_minimum(a: float, b: float) -> float:
    """The minimiser :math:`-b/(2a)` of :math:`a s^2 + b s + c` when :math:`a > 0`; NaN
    otherwise (a maximum, a line, or not finite)."""
    a, b = float(a), float(b)
    return -b / (2.0 * a) if a > 0 and math.isfinite(a) and math.isfinite(b) else math.nan


def lsq_parabola(s: Any, l: Any) -> tuple[float, float, float, float]:
    """The least-squares parabola ``(a, b, c)`` of the samples and its relative residual.

    The fit is made in the scaled variable :math:`x = s/\\max|s|` (well conditioned) and
    mapped back. The residual is :math:`\\mathrm{RMS}(\\hat l(s_k) - l_k)` divided by the
    samples' range :math:`\\max l - \\min l` (0 when the range is 0). Needs at least 3
    finite samples at 3 distinct steps; otherwise all four are NaN.
    """
    s, l = np.asarray(s, dtype=np.float64), np.asarray(l, dtype=np.float64)
    ok = np.isfinite(s) & np.isfinite(l)
    s, l = s[ok], l[ok]
    if np.unique(s).size < 3:
        return (math.nan,) * 4
    scale = float(np.max(np.abs(s)))
    x = s / scale
    design = np.stack([x * x, x, np.ones_like(x)], axis=1)
    (ax, bx, cx), *_ = np.linalg.lstsq(design, l, rcond=None)
    fit = design @ np.array([ax, bx, cx])
    spread = float(np.max(l) - np.min(l))
    rms = float(np.sqrt(np.mean((fit - l) ** 2)))
    return (float(ax / scale**2), float(bx / scale), float(cx),
            rms / spread if spread > 0 else 0.0)


def sampled_minimum(s: Any, l: Any) -> tuple[float, float, int]:
    """``(s_min, l_min, i)``: the lowest finite sample ``i`` (the first of ties) and its
    loss; ``s_min`` is refined by the parabola through samples ``i - 1, i, i + 1`` when
    ``i`` is interior and that parabola is convex (on an even grid of spacing :math:`h`:
    :math:`s_i + h (l_{i-1} - l_{i+1}) / (2 (l_{i-1} - 2 l_i + l_{i+1}))`, which stays
    within :math:`h/2` of :math:`s_i`). All NaN (and ``i = -1``) without a finite sample."""
    s, l = np.asarray(s, dtype=np.float64), np.asarray(l, dtype=np.float64)
    finite = np.isfinite(l)
    if not finite.any():
        return math.nan, math.nan, -1
    i = int(np.argmin(np.where(finite, l, np.inf)))
    s_min, l_min = float(s[i]), float(l[i])
    if 0 < i < len(s) - 1 and finite[i - 1] and finite[i + 1]:
        curv = l[i - 1] - 2.0 * l[i] + l[i + 1]
        if curv > 0:
            h = 0.5 * (s[i + 1] - s[i - 1])
            s_min += float(h * (l[i - 1] - l[i + 1]) / (2.0 * curv))
    return s_min, l_min, i


def rounding_tolerance(l: Any, dtype: Any, rtol_ulps: float = 64.0) -> float:
    """A rounding allowance for differences of the losses ``l`` computed in ``dtype``:
    ``rtol_ulps`` units of roundoff :math:`u` times :math:`\\max|l|` (64 by default: a
    few times the typical rounding :math:`\\sqrt n\\,u` of a batch mean of 100 terms)."""
    u = float(np.finfo(np.dtype(dtype)).eps) / 2.0
    vals = np.asarray(l, dtype=np.float64)
    vals = vals[np.isfinite(vals)]
    return rtol_ulps * u * (float(np.max(np.abs(vals))) if vals.size else 0.0)


def classify(s: Any, l: Any, *, window: float = 0.5, rtol: float | None = None,
             dtype: Any = "float64") -> str:
    """The shape of a sampled line around its lowest sample (steps ``s`` evenly spaced).

    * ``"flat"``: every finite sample is within the tolerance of the lowest;
    * ``"edge"``: the lowest sample is the first or the last one, or the first or last
      sample is within the tolerance of the lowest (the loss does not rise again on that
      side: e.g. a logistic loss that underflows to exactly 0 in float32 along the line);
      either way the range does not bracket a minimum;
    * ``"convex"``: every second difference :math:`l_{k-1} - 2 l_k + l_{k+1}` whose three
      samples lie within ``window`` :math:`\\times R` of the lowest sample's step, where
      :math:`R = (\\max s - \\min s)/2` is the range's half-width, is at least minus the
      tolerance;
    * ``"nonconvex"``: otherwise (a negative curvature near the minimum, or a non-finite
      sample there).

    The tolerance is ``rtol * max|l|`` when ``rtol`` is given, else
    :func:`rounding_tolerance` of ``l`` in ``dtype``.
    """
    s, l = np.asarray(s, dtype=np.float64), np.asarray(l, dtype=np.float64)
    if s.shape != l.shape or s.ndim != 1 or s.size < 3:
        raise ValueError(f"s, l: need two 1-d arrays of the same length >= 3, got shapes "
                         f"{s.shape} and {l.shape}")
    if not window > 0:
        raise ValueError(f"window: must be > 0, got {window!r}")
    finite = np.isfinite(l)
    if not finite.any():
        return "nonconvex"
    tol = (rtol * float(np.max(np.abs(l[finite]))) if rtol is not None
           else rounding_tolerance(l, dtype))
    _, l_min, i = sampled_minimum(s, l)
    if float(np.max(l[finite])) - l_min <= tol:
        return "flat"
    if i in (0, len(s) - 1) or _open_side(l, l_min, tol):
        return "edge"
    half = 0.5 * (s[-1] - s[0])
    near = np.abs(s - s[i]) <= window * half * (1 + 1e-12)
    second = l[:-2] - 2.0 * l[1:-1] + l[2:]
    mask = near[:-2] & near[1:-1] & near[2:]
    vals = second[mask]
    if not np.all(np.isfinite(vals)) or np.any(vals < -tol):
        return "nonconvex"
    return "convex"


def _open_side(l: np.ndarray, l_min: float, tol: float) -> int:
    """-1 / +1 when the first / last sample is within ``tol`` of the lowest (or not
    finite), i.e. the samples do not rise again on that side; else 0."""
    for side, v in ((1, l[-1]), (-1, l[0])):
        if not np.isfinite(v) or v - l_min <= tol:
            return side
    return 0


def open_side(s: Any, l: Any, *, dtype: Any = "float64") -> int:
    """The end of the range at which a line ``l(s)`` is not bracketed: -1 (the lowest
    sample is the first, or the first sample is within the rounding allowance
    :func:`rounding_tolerance` of the lowest), +1 (likewise the last), 0 (bracketed)."""
    s, l = np.asarray(s, dtype=np.float64), np.asarray(l, dtype=np.float64)
    finite = np.isfinite(l)
    if not finite.any():
        return 0
    _, l_min, i = sampled_minimum(s, l)
    if i == 0:
        return -1
    if i == len(l) - 1:
        return 1
    return _open_side(l, l_min, rounding_tolerance(l, dtype))


def angle_degrees(cos: float) -> float:
    """:math:`\\arccos` of ``cos`` (clipped to [-1, 1]) in degrees; NaN stays NaN."""
    cos = float(cos)
    if math.isnan(cos):
        return math.nan
    return math.degrees(math.acos(min(1.0, max(-1.0, cos))))
