"""The argument types of the ``paltest`` command: each value is checked and converted."""

from __future__ import annotations

import argparse

import pytest

from paltest import cli_args


@pytest.mark.parametrize("convert, text, value", [
    (cli_args.positive_int, "3", 3),
    (cli_args.nonneg_int, "0", 0),
    (cli_args.positive_bytes, "4.5e9", 4.5e9),
    (cli_args.n_jobs, "-1", -1),
    (cli_args.joblib_backend, "threading", "threading"),
    (cli_args.key_value, "beta=fletcher-reeves", ("beta", "fletcher-reeves")),
    (cli_args.key_value, "mu=0.1", ("mu", 0.1)),
])
def test_good_values_are_converted(convert, text, value):
    assert convert(text) == value


@pytest.mark.parametrize("convert, text, words", [
    (cli_args.positive_int, "0", "expected a positive integer"),
    (cli_args.nonneg_int, "-1", "expected an integer >= 0"),
    (cli_args.nonneg_int, "1.5", "expected an integer >= 0"),
    (cli_args.positive_bytes, "-1", "expected a positive number of bytes"),
    (cli_args.positive_bytes, "inf", "expected a positive number of bytes"),
    (cli_args.positive_bytes, "abc", "expected a positive number of bytes"),
    (cli_args.n_jobs, "0", "expected an integer from 1 to 1024, or -1"),
    (cli_args.joblib_backend, "nonexistent", "unknown joblib backend 'nonexistent'"),
    (cli_args.key_value, "mu", "expected key=value"),
])
def test_bad_values_are_argument_errors(convert, text, words):
    with pytest.raises(argparse.ArgumentTypeError, match=words):
        convert(text)


def test_out_dir_must_be_writable_or_creatable(tmp_path):
    assert cli_args.out_dir(str(tmp_path)) == str(tmp_path)
    deep = tmp_path / "a" / "b"
    assert cli_args.out_dir(str(deep)) == str(deep) and not deep.exists()  # not created
    (tmp_path / "file").write_text("")
    for bad in (tmp_path / "file", tmp_path / "file" / "sub"):
        with pytest.raises(argparse.ArgumentTypeError, match="is not a directory"):
            cli_args.out_dir(str(bad))
