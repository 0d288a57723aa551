"""``paltest.problems`` is the ``problems`` package under a second name: the same module
objects, so one registry.

The testbed's problems live in the top-level package ``problems`` (a generic name that
another distribution on PyPI also uses). ``import paltest.problems`` (or ``from paltest
import problems``) gives that package, and ``paltest.problems.<module>`` the module
``problems.<module>``: this finder, first on :data:`sys.meta_path`, answers every import
of ``paltest.problems[.<module>]`` with the module already imported (or imported now)
under its own name, so no module is ever executed twice and ``paltest.problems.registry
is problems.registry``. ``import paltest`` installs it; ``paltest.problems`` is then an
attribute of ``paltest`` once imported (``import paltest.problems``, ``from paltest
import problems``).

>>> import problems.registry
>>> import paltest.problems.registry
>>> paltest.problems.registry is problems.registry
True
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from types import ModuleType

__all__ = ["ALIASES", "install"]

#: alias prefix -> the package it stands for.
ALIASES = {"paltest.problems": "problems"}


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(self.target)
        self._spec = module.__spec__  # the import system sets __spec__: put it back
        return module

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__ = self._spec


class _AliasFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: object = None,
                  target: object = None) -> importlib.machinery.ModuleSpec | None:
        for alias, real in ALIASES.items():
            if fullname == alias or fullname.startswith(alias + "."):
                name = real + fullname[len(alias):]
                return importlib.machinery.ModuleSpec(fullname, _AliasLoader(name))
        return None


_FINDER = _AliasFinder()


def install() -> None:
    """Put the finder first on :data:`sys.meta_path` (once; done when ``paltest`` is
    imported)."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


install()
