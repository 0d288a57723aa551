"""The train/test split of a LIBSVM binary dataset, on the host (PAL paper Figure 9).

Protocol (SLS reference code): labels mapped to {0, 1} (the larger label is 1); split
80/20 with ``train_test_split(test_size=0.2, random_state=9513451)``; ijcnn uses its
first 35,000 rows. The features are densified as float64 NumPy arrays; the kernel
problem (:mod:`problems.kernel_logreg`) moves them to its namespace and device.

Example
-------
>>> import numpy as np, tempfile, os
>>> from problems import splits
>>> rng = np.random.default_rng(0)
>>> path = os.path.join(tempfile.mkdtemp(), "toy.txt")
>>> with open(path, "w") as f:
...     for i in range(50):
...         _ = f.write(f"{1 + i % 2} 1:{rng.normal():.4f} 2:{rng.normal():.4f}\\n")
>>> s = splits.load_split(path=path, sigma=1.0)
>>> s.X_train.shape, s.X_test.shape, sorted(set(s.y_train.tolist()))
((40, 2), (10, 2), [0.0, 1.0])
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from paltest.checks import check_bool, check_path, check_positive
from problems import datasets

__all__ = ["MAX_DENSE_BYTES", "SPLIT_SEED", "TEST_SIZE", "Split", "load_split"]

SPLIT_SEED = 9513451
TEST_SIZE = 0.2
#: Largest dense host copy of the raw features accepted (bytes).
MAX_DENSE_BYTES = 2 * 2**30


@dataclass
class Split:
    """Host (NumPy float64) features and {0, 1} labels of the train/test split."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    sigma: float | None


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}: must be a positive int, got {value!r}")
    return int(value)


def _labels01(y: np.ndarray, source: Any) -> np.ndarray:
    labels = np.unique(y)
    if labels.size != 2:
        raise ValueError(f"{source}: expected 2 distinct labels, found {labels.size} "
                         f"({labels[:5].tolist()}...)")
    return (y == labels[1]).astype(np.float64)


def load_split(*, dataset: str | None = None, path: Any = None, test_path: Any = None,
               n_rows: int | None = None, sigma: float | None = None,
               data_dir: Any = None, base_url: str | None = None, download: bool = True,
               max_dense_bytes: float = MAX_DENSE_BYTES) -> Split:
    """Load a LIBSVM file and split it per the protocol; no kernel is built.

    ``dataset`` (a name in :data:`problems.datasets.DATASETS`) gives the file, ``sigma``
    and the rows used (ijcnn: the first 35,000); ``path`` (any LIBSVM file) overrides
    the file, ``n_rows`` the rows (the first ``n_rows`` of the file; more rows than the
    file has is a ``ValueError`` naming ``n_rows`` and the file's row count, as an
    oversized ``batch_size`` is, never a silent cap). With ``test_path`` the whole first file is the
    training set and ``test_path`` the test set; otherwise 80/20 with seed 9513451.
    The features are densified on the host; a file whose dense copy would exceed
    ``max_dense_bytes`` (rcv1: 7.6 GB) is rejected with an error.
    """
    info = None
    if dataset is not None:
        if not isinstance(dataset, str) or dataset not in datasets.DATASETS:
            raise ValueError(f"dataset: unknown {dataset!r}; choose one of "
                             f"{sorted(datasets.DATASETS)} or pass path=...")
        info = datasets.DATASETS[dataset]
    elif path is None:
        raise ValueError("dataset/path: give a dataset name or the path of a LIBSVM file")
    if sigma is None and info is not None:
        sigma = info.sigma
    if sigma is not None:
        sigma = check_positive("sigma", sigma)  # a number: "0.5" is refused, never parsed
    if n_rows is None and info is not None and path is None:
        n_rows = info.n_rows
    if n_rows is not None:
        n_rows = _positive_int(n_rows, "n_rows")
    path = None if path is None else check_path("path", path)
    test_path = None if test_path is None else check_path("test_path", test_path)
    data_dir = None if data_dir is None else check_path("data_dir", data_dir)
    if base_url is not None and not (isinstance(base_url, str) and base_url):
        raise TypeError(f"base_url: expected a URL (a non-empty str) or None, got {base_url!r}")
    download = check_bool("download", download)  # "no" would be true
    kw = dict(data_dir=data_dir, base_url=base_url, download=download)
    source = path if path is not None else dataset
    X, y = datasets.load_libsvm(source, **kw)
    if n_rows is not None and n_rows > X.shape[0]:
        raise ValueError(f"n_rows: {n_rows} exceeds the {X.shape[0]} rows of {source!r}; "
                         f"pass at most {X.shape[0]} (or None for all of them)")
    X, y = X[:n_rows], y[:n_rows]
    test = datasets.load_libsvm(test_path, **kw) if test_path is not None else None
    n_feat = max(X.shape[1], test[0].shape[1] if test else 0)
    n_total = X.shape[0] + (test[0].shape[0] if test else 0)
    if n_total * n_feat * 8 > max_dense_bytes:
        raise ValueError(
            f"{source}: the dense features ({n_total} x {n_feat} float64, "
            f"{n_total * n_feat * 8 / 1e9:.1f} GB) exceed max_dense_bytes "
            f"({max_dense_bytes / 1e9:.1f} GB); sparse high-dimensional data is not supported")
    X = _dense(X, n_feat)
    y = _labels01(y, source)
    name = dataset or Path(str(path)).name
    if test is not None:
        Xte, yte = _dense(test[0], n_feat), _labels01(test[1], test_path)
        return Split(name, X, y, Xte, yte, None if sigma is None else float(sigma))
    if X.shape[0] < 5:
        raise ValueError(f"n_rows: need at least 5 rows to split, got {X.shape[0]}")
    from sklearn.model_selection import train_test_split

    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=TEST_SIZE, random_state=SPLIT_SEED)
    return Split(name, Xtr, ytr, Xte, yte, None if sigma is None else float(sigma))


def _dense(X: Any, n_features: int) -> np.ndarray:
    out = np.zeros((X.shape[0], n_features), dtype=np.float64)
    out[:, : X.shape[1]] = X.toarray()
    return out


