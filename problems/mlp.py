r"""A small fully connected network on scikit-learn's 8x8 digits: a non-convex problem.

The data are scikit-learn's bundled digits (:func:`sklearn.datasets.load_digits`: 1,797
images of 8x8 pixels with values 0..16, ten classes; no download). The features are the
64 pixels divided by 16 (so in [0, 1]). The split is fixed and stratified by class:
``train_test_split(test_size=0.2, stratify=y, random_state=9513451)`` (the testbed's
split seed), 1,437 training and 360 test images.

The model, with hidden widths :math:`h_1, \dots, h_{L-1}` (default ``(32,)``: 64-32-10)
and activation :math:`\sigma` (``"relu"`` by default, ``"tanh"`` or ``"sigmoid"``), is

.. math::  a_0 = x,\qquad z_l = W_l a_{l-1} + b_l,\qquad a_l = \sigma(z_l)\ (l < L),
           \qquad f(x) = z_L \in \mathbb R^{10},

with :math:`W_l \in \mathbb R^{h_l\times h_{l-1}}` (:math:`h_0 = 64`, :math:`h_L = 10`);
``hidden=()`` is multinomial logistic regression. The loss is the softmax cross-entropy,
averaged over the batch,

.. math::  L_B(\theta) = \frac{1}{|B|}\sum_{j\in B}
           \Big(\operatorname{logsumexp}(z_L^{(j)}) - z^{(j)}_{L,y_j}\Big),

with the log-sum-exp shifted by the row maximum (no overflow). Its gradient is the
analytic backward pass

.. math::  \delta_L = (\operatorname{softmax}(z_L) - e_y)/|B|,\quad
           \nabla_{W_l} = \delta_l^\top a_{l-1},\quad \nabla_{b_l} = \textstyle\sum_j \delta_l,
           \quad \delta_{l-1} = (\delta_l W_l) \odot \sigma'(z_{l-1})

(rows are samples), written against the array API: :math:`\sigma'` is
``xp.where(z > 0, ., 0)`` for ReLU, :math:`1 - a^2` for tanh, :math:`a(1 - a)` for the
sigmoid. ``theta`` is the flat vector ``[vec(W_1), b_1, vec(W_2), b_2, ..., vec(W_L),
b_L]`` (each :math:`W_l` row-major, shape (out, in)): 2,410 entries for 64-32-10.

The initialization (:meth:`MLP.init_params`) draws every weight matrix uniformly on the
host with ``np.random.default_rng(seed)``, layer by layer: He uniform
:math:`U(\pm\sqrt{6/h_{l-1}})` for the hidden layers with ReLU, Glorot uniform
:math:`U(\pm\sqrt{6/(h_{l-1}+h_l)})` for the hidden layers with tanh or sigmoid and for
the output layer; the biases are zero. The training-loss optimum is unknown
(``floor = None``).

Example
-------
>>> from problems import mlp
>>> p = mlp.make()
>>> p.n_params, p.n_train, p.n_test, p.layer_sizes
(2410, 1437, 360, (64, 32, 10))
>>> theta = p.init_params(seed=0)
>>> batch = next(iter(p.batches(epoch=0, seed=0, batch_size=100)))
>>> loss, grad = p.value_and_grad(theta, batch)
>>> tuple(grad.shape), 2.0 < float(loss) < 2.8
((2410,), True)
>>> sorted(p.test_metrics(theta))
['test_accuracy', 'test_loss']
"""

from __future__ import annotations

import functools
import numbers
from typing import Any

import numpy as np

from paltest import backend
from paltest.checks import check_int, check_memory, shown
from problems.base import Problem

__all__ = ["ACTIVATIONS", "MLP", "N_CLASSES", "N_FEATURES", "load_data", "make"]

N_FEATURES, N_CLASSES = 64, 10
SPLIT_SEED, TEST_SIZE = 9513451, 0.2
#: The activations offered (the hidden layers all use the same one).
ACTIVATIONS = ("relu", "tanh", "sigmoid")


@functools.lru_cache(maxsize=1)
def _split() -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    return tuple(train_test_split(X / 16.0, y, test_size=TEST_SIZE, stratify=y,
                                  random_state=SPLIT_SEED))


def load_data() -> dict[str, np.ndarray]:
    """The digits split on the host: float64 features in [0, 1], int64 labels 0..9.

    Returns a dict with ``x_train`` (1437, 64), ``y_train`` (1437,), ``x_test``
    (360, 64), ``y_test`` (360,): fresh copies of a split loaded once per process.
    """
    x_train, x_test, y_train, y_test = _split()
    return {"x_train": x_train.copy(), "y_train": y_train.astype(np.int64),
            "x_test": x_test.copy(), "y_test": y_test.astype(np.int64)}


def _check_hidden(hidden: Any) -> tuple[int, ...]:
    if isinstance(hidden, numbers.Integral) and not isinstance(hidden, bool):
        hidden = (hidden,)
    if isinstance(hidden, (str, bytes)) or not isinstance(hidden, (tuple, list)):
        raise ValueError(f"hidden: must be a tuple of positive ints (the hidden layer "
                         f"widths), got {hidden!r}")
    for h in hidden:
        if isinstance(h, bool) or not isinstance(h, numbers.Integral) or h < 1:
            raise ValueError(f"hidden: every width must be a positive int, got {hidden!r}")
    return tuple(int(h) for h in hidden)


def _check_activation(activation: Any) -> str:
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise ValueError(f"activation: must be one of {ACTIVATIONS}, got {activation!r}")
    return activation


class MLP(Problem):
    """The digits network; build it with :func:`make`.

    Attributes besides the :mod:`problems.base` protocol: ``hidden`` (the hidden
    widths), ``activation``, ``layer_sizes`` (``(64, *hidden, 10)``), ``n_test`` and
    ``shapes`` (the ``(out, in)`` shape of each weight matrix, in the order of
    ``theta``).
    """

    floor = None

    def __init__(self, hidden: tuple[int, ...], activation: str, xp: Any, device: Any,
                 dtype: Any) -> None:
        data = load_data()
        self.name = "mlp-digits"
        self.hidden, self.activation = hidden, activation
        self.layer_sizes = (N_FEATURES, *hidden, N_CLASSES)
        self.shapes = tuple(zip(self.layer_sizes[1:], self.layer_sizes[:-1], strict=True))
        self.n_params = sum(o * i + o for o, i in self.shapes)
        self.n_train, self.n_test = data["x_train"].shape[0], data["x_test"].shape[0]
        self.xp, self.dtype = xp, dtype

        def put(a: np.ndarray, dt: Any = dtype) -> Any:
            return backend.from_host(a, xp, device=device, dtype=dt)

        eye = np.eye(N_CLASSES)
        self._x_train, self._x_test = put(data["x_train"]), put(data["x_test"])
        self._onehot_train = put(eye[data["y_train"]])
        self._onehot_test = put(eye[data["y_test"]])
        self._y_test = put(data["y_test"], "int64")
        self.device = backend.device(self._x_train) if device is None else device

    # -- parameters ---------------------------------------------------------------------
    def init_params(self, seed: int) -> Any:
        """He uniform (ReLU hidden layers) or Glorot uniform weights, zero biases.

        Drawn on the host with ``np.random.default_rng(seed)``, one ``uniform(-r, r)``
        matrix per layer in order (the biases draw nothing), then moved to the device:
        the same start on every namespace.
        """
        rng = np.random.default_rng(check_int("seed", seed))
        parts = []
        for layer, (n_out, n_in) in enumerate(self.shapes):
            last = layer == len(self.shapes) - 1
            fan = n_in if (self.activation == "relu" and not last) else n_in + n_out
            bound = np.sqrt(6.0 / fan)
            parts += [rng.uniform(-bound, bound, n_out * n_in), np.zeros(n_out)]
        return backend.from_host(np.concatenate(parts), self.xp, device=self.device,
                                 dtype=self.dtype)

    def unpack(self, theta: Any) -> list[tuple[Any, Any]]:
        """``[(W_1, b_1), ..., (W_L, b_L)]``: views of ``theta`` (``W_l`` of shape (out, in))."""
        if tuple(theta.shape) != (self.n_params,):
            raise ValueError(
                f"theta: expected shape ({self.n_params},), got {tuple(theta.shape)}")
        if theta.dtype != self.dtype:
            raise TypeError(f"theta: dtype {theta.dtype} differs from the problem's {self.dtype}")
        xp, layers, start = self.xp, [], 0
        for n_out, n_in in self.shapes:
            cut = start + n_out * n_in
            layers.append((xp.reshape(theta[start:cut], (n_out, n_in)),
                           theta[cut:cut + n_out]))
            start = cut + n_out
        return layers

    # -- model --------------------------------------------------------------------------
    def _act(self, z: Any) -> Any:
        xp = self.xp
        if self.activation == "relu":
            return xp.maximum(z, xp.zeros_like(z))
        if self.activation == "tanh":
            return xp.tanh(z)
        e = xp.exp(-xp.abs(z))  # sigmoid without overflow: e in (0, 1]
        return xp.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))

    def _act_backward(self, delta: Any, z: Any, a: Any) -> Any:
        """``delta * sigma'(z)``, with ``a = sigma(z)``."""
        xp = self.xp
        if self.activation == "relu":
            return xp.where(z > 0, delta, xp.zeros_like(delta))
        if self.activation == "tanh":
            return delta * (1.0 - a * a)
        return delta * (a * (1.0 - a))

    def _forward(self, theta: Any, x: Any) -> tuple[Any, list, list]:
        """Logits, the pre-activations ``z_l`` and the activations ``a_{l-1}`` per layer."""
        layers = self.unpack(theta)
        a, zs, acts = x, [], []
        for k, (W, b) in enumerate(layers):
            acts.append(a)
            z = self.xp.matmul(a, W.T) + b
            zs.append(z)
            a = z if k == len(layers) - 1 else self._act(z)
        return a, zs, acts

    def _losses(self, logits: Any, onehot: Any) -> tuple[Any, Any]:
        """Per-sample cross-entropies and the softmax probabilities."""
        xp = self.xp
        shifted = logits - xp.max(logits, axis=1, keepdims=True)
        lse = xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))
        logp = shifted - lse
        return -xp.sum(logp * onehot, axis=1), xp.exp(logp)

    def _rows(self, batch: Any) -> tuple[Any, Any]:
        if batch is None:  # the training set (train_loss; per_sample_losses documents it)
            return self._x_train, self._onehot_train
        self.check_batch(batch)
        xp = self.xp
        return (xp.take(self._x_train, batch, axis=0),
                xp.take(self._onehot_train, batch, axis=0))

    def per_sample_losses(self, theta: Any, batch: Any) -> Any:
        """The cross-entropy of every sample of ``batch`` (``None``: the training set)."""
        x, onehot = self._rows(batch)
        return self._losses(self._forward(theta, x)[0], onehot)[0]

    # -- protocol -----------------------------------------------------------------------
    def value(self, theta: Any, batch: Any) -> Any:
        """Mean cross-entropy over the rows ``batch`` (the whole set: :meth:`train_loss`)."""
        self.check_batch(batch)
        return self.xp.mean(self.per_sample_losses(theta, batch))

    def value_and_grad(self, theta: Any, batch: Any) -> tuple[Any, Any]:
        """The batch loss and its analytic gradient (same layout as ``theta``)."""
        xp = self.xp
        self.check_batch(batch)
        x, onehot = self._rows(batch)
        logits, zs, acts = self._forward(theta, x)
        losses, prob = self._losses(logits, onehot)
        layers = self.unpack(theta)
        delta = (prob - onehot) / float(x.shape[0])  # dL/dz_L, (b, 10)
        grads = []
        for k in range(len(layers) - 1, -1, -1):
            grads.append(xp.sum(delta, axis=0))
            grads.append(xp.reshape(xp.matmul(delta.T, acts[k]), (-1,)))
            if k > 0:
                delta = self._act_backward(xp.matmul(delta, layers[k][0]), zs[k - 1], acts[k])
        return xp.mean(losses), xp.concat(grads[::-1])

    def train_loss(self, theta: Any) -> Any:
        """Mean cross-entropy over all 1,437 training images."""
        return self.xp.mean(self.per_sample_losses(theta, None))

    def test_metrics(self, theta: Any) -> dict[str, Any]:
        """``test_loss`` (mean cross-entropy) and ``test_accuracy`` (argmax of the logits)
        over the 360 test images."""
        xp = self.xp
        logits = self._forward(theta, self._x_test)[0]
        hits = xp.astype(xp.argmax(logits, axis=1) == self._y_test, self.dtype)
        return {"test_loss": xp.mean(self._losses(logits, self._onehot_test)[0]),
                "test_accuracy": xp.mean(hits)}


def make(*, hidden: Any = (32,), activation: str = "relu", xp: Any = "numpy",
         device: Any = None, dtype: Any = "float64") -> MLP:
    """The digits network with hidden widths ``hidden`` and ``activation``.

    ``hidden`` is a tuple (or list) of positive ints, one per hidden layer (a single int
    is one layer; ``()`` is softmax regression); ``activation`` one of
    :data:`ACTIVATIONS`. ``xp`` is a namespace or its name, ``dtype`` ``"float32"`` or
    ``"float64"``. Bad values raise ``ValueError`` naming the argument.
    """
    hidden, activation = _check_hidden(hidden), _check_activation(activation)
    sizes = (N_FEATURES, *hidden, N_CLASSES)
    n_params = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    check_memory("hidden", "(" + ", ".join(shown(h) for h in hidden) + ")", 4 * n_params,
                 "a network of that many parameters")
    ns = backend.resolve_namespace(xp)
    return MLP(hidden, activation, ns, device, backend.float_dtype(ns, dtype))
