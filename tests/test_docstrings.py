"""The runnable examples in every module's docstrings stay runnable."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import paltest
import problems


def _modules():
    for package in (paltest, problems):
        yield package.__name__
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            yield info.name


#: Modules that need an optional package (its leg of CI runs their examples).
_NEEDS = {"paltest.torch": "torch", "paltest.optax": "optax"}


@pytest.mark.parametrize("name", sorted(_modules()))
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    if name in _NEEDS:
        pytest.importorskip(_NEEDS[name], reason=f"{_NEEDS[name]} is not installed "
                            f"(pip install -e '.[{_NEEDS[name]}]'); {name} needs it")
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"


#: README blocks that need an optional backend: they import it at a line's start.
_OPTIONAL = re.compile(r"^(?:import|from) (jax|torch)\b", flags=re.M)


def _readme_blocks():
    readme = Path(__file__).resolve().parents[1] / "README.md"
    blocks = re.findall(r"^```python\n(.*?)^```", readme.read_text(), flags=re.S | re.M)
    return readme, blocks


def test_readme_examples_run_verbatim(tmp_path, monkeypatch, capsys):
    """Every ``python`` block of the README that needs no optional backend runs as
    written, in order, in one namespace (issue 12: the examples include
    ``paltest.SLS()`` from its defaults)."""
    readme, blocks = _readme_blocks()
    blocks = [b for b in blocks if not _OPTIONAL.search(b)]
    assert any("paltest.SLS()" in block for block in blocks)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(readme), "exec"), namespace)
    assert capsys.readouterr().out.count("\n") >= len(blocks)


@pytest.mark.parametrize("package", ["jax", "torch"])
def test_readme_backend_examples_run_verbatim(package, tmp_path, monkeypatch, capsys):
    """The README's JAX (a compiled PAL epoch) and PyTorch (torch.func) examples of the
    functional interface run as written, each in a fresh namespace; they skip, saying
    so, only when the package is not installed. (The optimizer and transformation
    examples, ``paltest.torch`` and ``paltest.optax``, run in tests/test_torch.py and
    tests/test_optax.py.)"""
    readme, blocks = _readme_blocks()
    mine = [b for b in blocks if package in _OPTIONAL.findall(b)
            and "paltest.torch" not in b and "paltest.optax" not in b]
    assert mine, f"README: no example imports {package}"
    pytest.importorskip(package, reason=f"{package} is not installed (pip install -e "
                                        f"'.[{package}]'); its README example needs it")
    monkeypatch.chdir(tmp_path)
    for block in mine:
        namespace: dict = {}
        exec(compile(block, str(readme), "exec"), namespace)
        printed = capsys.readouterr().out.split()
        assert printed, "the example prints its result"
        if package == "jax":  # the compiled epochs trained: from 0.84 down
            assert float(printed[-1]) < 0.1
        else:  # no autograd graph through the steps, and PAL converged
            assert printed[0] == "None" and float(printed[-1]) < 1e-6
