"""Packages that load their modules on first use: ``import atomlens.live`` stays light and
``atomlens.live.SteeredRun`` imports the module that holds it only when asked for."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, where: Mapping[str, str], /
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's module-level ``__getattr__`` and ``__dir__`` for names that live in its
    submodules (PEP 562).

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    where : mapping of str to str
        Public name → the submodule (relative to ``package``) that defines it.

    Returns
    -------
    getattr, dir : callable
        Assign them to ``__getattr__`` and ``__dir__`` in the package's ``__init__``.

    Examples
    --------
    >>> get, names = lazy_exports("atomlens.live", {"read_log": "provenance"})
    >>> get("read_log").__name__, names()
    ('read_log', ['read_log'])
    """
    names = sorted(where)

    def __getattr__(name: str) -> Any:
        if name in where:
            return getattr(importlib.import_module(f"{package}.{where[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return names

    return __getattr__, __dir__
