"""The train/test splits of the LIBSVM datasets (problems.splits)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from problems import datasets, splits


def _toy_file(tmp_path, n=60, labels=(-1, 1), name="toy.txt"):
    rng = np.random.default_rng(0)
    path = tmp_path / name
    with open(path, "w") as f:
        for i in range(n):
            f.write(f"{labels[i % len(labels)]} 1:{rng.normal():.6f} 3:{rng.normal():.6f}\n")
    return path


def _expected_positives(data_dir, name, n_rows):
    X, y = datasets.load_libsvm(name, data_dir=data_dir, download=False)
    y = y[:n_rows]
    y01 = (y == y.max()).astype(float)
    tr, te = train_test_split(np.arange(y.size), test_size=0.2, random_state=9513451)
    return y01, int(y01[tr].sum()), int(y01[te].sum())


@pytest.mark.parametrize("name,n,m,d,rows", [("mushrooms", 6499, 1625, 112, None),
                                             ("ijcnn", 28000, 7000, 22, 35000)])
def test_split_shapes_and_balance(data_dir, name, n, m, d, rows):
    s = splits.load_split(dataset=name, data_dir=data_dir, download=False)
    assert s.X_train.shape == (n, d) and s.X_test.shape == (m, d)
    assert s.y_train.shape == (n,) and set(np.unique(s.y_train)) == {0.0, 1.0}
    y01, pos_tr, pos_te = _expected_positives(data_dir, name, rows)
    assert int(s.y_train.sum()) == pos_tr and int(s.y_test.sum()) == pos_te
    assert pos_tr + pos_te == int(y01.sum()) == {"mushrooms": 4208}.get(name, pos_tr + pos_te)
    assert 0.05 < pos_tr / n < 0.95 and abs(pos_tr / n - pos_te / m) < 0.03


def test_toy_split_is_the_protocol(tmp_path):
    """80/20 with the protocol's seed; the larger label is 1; missing features are 0."""
    path = _toy_file(tmp_path, labels=(3, 7))
    s = splits.load_split(path=path, sigma=2.0)
    rows = np.arange(60)
    tr, te = train_test_split(rows, test_size=splits.TEST_SIZE, random_state=splits.SPLIT_SEED)
    np.testing.assert_array_equal(s.y_train, (tr % 2 == 1).astype(float))
    np.testing.assert_array_equal(s.y_test, (te % 2 == 1).astype(float))
    assert s.X_train.shape == (48, 3) and np.all(s.X_train[:, 1] == 0.0)
    assert (s.name, s.sigma) == ("toy.txt", 2.0)


def test_separate_test_file_is_not_split(tmp_path):
    s = splits.load_split(path=_toy_file(tmp_path, n=30), sigma=1.0,
                          test_path=_toy_file(tmp_path, n=11, name="test.txt"))
    assert s.X_train.shape == (30, 3) and s.X_test.shape == (11, 3)


def test_labels_must_be_binary(tmp_path):
    with pytest.raises(ValueError, match="2 distinct labels"):
        splits.load_split(path=_toy_file(tmp_path, labels=(1, 2, 3)), sigma=1.0)


def test_dense_size_guard(tmp_path):
    with pytest.raises(ValueError, match="max_dense_bytes"):
        splits.load_split(path=_toy_file(tmp_path), sigma=1.0, max_dense_bytes=1000)


@pytest.mark.parametrize("kwargs,match", [
    (dict(sigma=-1.0), "sigma"), (dict(sigma=float("inf")), "sigma"), (dict(n_rows=0), "n_rows"),
    (dict(n_rows=3), "n_rows"), (dict(n_rows=True), "n_rows"), (dict(path=None), "dataset/path"),
    (dict(path=None, dataset="nope"), "dataset"),
])
def test_argument_errors_name_the_argument(tmp_path, kwargs, match):
    args = dict(path=_toy_file(tmp_path), sigma=1.0) | kwargs
    with pytest.raises(ValueError, match=match):
        splits.load_split(**args)


def test_more_rows_than_the_file_has_is_an_error(tmp_path):
    """Issue 12 D15: n_rows above the file's row count was silently capped."""
    path = _toy_file(tmp_path)  # 60 rows
    with pytest.raises(ValueError, match=r"^n_rows: 61 exceeds the 60 rows of"):
        splits.load_split(path=path, sigma=1.0, n_rows=61)
    assert splits.load_split(path=path, sigma=1.0, n_rows=60).X_train.shape[0] == 48


def test_mushrooms_n_rows_beyond_the_file(data_dir):
    with pytest.raises(ValueError, match=r"^n_rows: 1000000 exceeds the 8124 rows of"):
        splits.load_split(dataset="mushrooms", n_rows=10**6, data_dir=data_dir,
                          download=False)
