"""Plugins: how paltest's processes learn of problems registered by your own code.

A problem of your own is a factory registered with :func:`problems.registry.register`.
The command line (``paltest run``, ``sweep``, ``figure --problem``), a sweep's worker
processes (loky, Dask) and the benchopt benchmark are separate processes: each must run
that registration too. Two ways, both loaded in every process the first time a problem
name is not known yet (or :func:`problems.names` is asked):

* the entry point group ``paltest.problems`` of an installed package (the way to
  publish problems): each entry point's name is a problem name and its value the
  factory, e.g. in the package's ``pyproject.toml``::

      [project.entry-points."paltest.problems"]
      logreg-breast-cancer = "my_package.problems:make_logreg"

  Installed once, it works everywhere the package is installed, workers on other
  machines included, with nothing to configure; the factory module is imported only
  when the problem is built.
* ``PALTEST_PLUGINS``: modules that register problems when imported, separated by
  ``os.pathsep`` (``:`` on Linux and macOS): module names importable by Python, or
  paths of ``.py`` files (the way for a script of your own, not a package). The
  command line's ``--plugin MODULE`` adds to it (an absolute path for a file), so the
  worker processes it starts inherit it; Dask workers on other machines need it in
  their environment (or the entry point).

A plugin that cannot be imported raises :class:`PluginError` (an ``ImportError``) naming
it and where it came from.

>>> import os
>>> os.pathsep.join(["my_problems", "/home/me/more_problems.py"])  # doctest: +SKIP
'my_problems:/home/me/more_problems.py'
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

__all__ = ["ENTRY_POINT_GROUP", "ENV", "PluginError", "add", "load", "load_module", "specs"]

#: The entry point group of problem factories.
ENTRY_POINT_GROUP = "paltest.problems"
#: The environment variable listing plugin modules (``os.pathsep``-separated).
ENV = "PALTEST_PLUGINS"



class PluginError(ImportError):
    """A plugin module or entry point that cannot be imported (the message names it)."""


_loaded: dict[str, ModuleType] = {}
_entry_points_loaded = False


def specs() -> list[str]:
    """The plugin modules named in ``PALTEST_PLUGINS``, in order."""
    return [s.strip() for s in os.environ.get(ENV, "").split(os.pathsep) if s.strip()]


def _is_path(spec: str) -> bool:
    return spec.endswith(".py") or os.sep in spec or (os.altsep or os.sep) in spec


def load_module(spec: str) -> ModuleType:
    """Import plugin ``spec`` (a module name or a ``.py`` path) once; return the module.

    A file is imported as a module named after its resolved path
    (``paltest_plugin_<stem>_<hash>``), so the same file is imported once however it is
    named.
    """
    if spec in _loaded:
        return _loaded[spec]
    try:
        if _is_path(spec):
            path = Path(spec).expanduser().resolve()
            if not path.is_file():
                raise FileNotFoundError(f"no such file {str(path)!r}")
            digest = hashlib.sha256(str(path).encode()).hexdigest()[:8]
            name = f"paltest_plugin_{path.stem}_{digest}"
            module = sys.modules.get(name)
            if module is None:
                loader_spec = importlib.util.spec_from_file_location(name, path)
                module = importlib.util.module_from_spec(loader_spec)
                sys.modules[name] = module
                try:
                    loader_spec.loader.exec_module(module)
                except BaseException:
                    del sys.modules[name]
                    raise
        else:
            module = importlib.import_module(spec)
    except Exception as err:
        raise PluginError(f"plugin {spec!r} (from {ENV} or --plugin): cannot import it "
                          f"({type(err).__name__}: {err})") from err
    _loaded[spec] = module
    return module


def add(spec: str) -> ModuleType:
    """Import plugin ``spec`` now and append it to ``PALTEST_PLUGINS`` (a file as its
    absolute path), so that processes started from here on import it too."""
    module = load_module(spec)
    entry = str(Path(spec).expanduser().resolve()) if _is_path(spec) else spec
    if entry not in specs():
        os.environ[ENV] = os.pathsep.join([*specs(), entry])
    _loaded[entry] = module
    return module


def _loader(entry_point) -> object:
    def load():
        try:
            return entry_point.load()
        except Exception as err:
            raise PluginError(f"problem {entry_point.name!r}: cannot load the entry point "
                              f"{entry_point.value!r} of group {ENTRY_POINT_GROUP!r} "
                              f"({type(err).__name__}: {err})") from err

    load.paltest_loader = True
    return load


def load() -> None:
    """Register the entry points of group ``paltest.problems`` (once per process) and
    import the modules of ``PALTEST_PLUGINS`` not imported yet."""
    global _entry_points_loaded
    if not _entry_points_loaded:
        _entry_points_loaded = True
        from importlib.metadata import entry_points

        from problems import registry

        for ep in entry_points(group=ENTRY_POINT_GROUP):
            registry._add_loader(ep.name, _loader(ep),
                                 f"{ep.value} (entry point of {ENTRY_POINT_GROUP})")
    for spec in specs():
        load_module(spec)
