"""JSON (de)serialisation of typed configs: one unknown-key check for every config class."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ConfigDict", "check_keys", "json_default"]


def check_keys(cls: type, d: Mapping[str, Any], /, what: str | None = None) -> dict[str, Any]:
    """``d`` as a dict when every key names a field of the dataclass ``cls``.

    Parameters
    ----------
    cls : dataclass type
        The config class.
    d : mapping
        The keys read from a file or given by a user.
    what : str, optional
        How the message names the config (default: the class name).

    Raises
    ------
    ValueError
        Unknown keys, all named at once with the allowed ones.
    """
    allowed = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise ValueError(
            f"unknown {what or cls.__name__} keys {unknown}; allowed: {sorted(allowed)}."
        )
    return dict(d)


class ConfigDict:
    """Mixin for dataclass configs: :meth:`to_dict` and a :meth:`from_dict` that refuses
    unknown keys. A class with nested configs overrides :meth:`_nested_from_dict`."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (round-trips through :meth:`from_dict`)."""
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def _nested_from_dict(cls, d: dict[str, Any], /) -> dict[str, Any]:
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], /) -> Any:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError`` naming them."""
        return cls(**cls._nested_from_dict(check_keys(cls, d)))


def json_default(obj: Any) -> Any:
    """``default=`` for :func:`json.dumps`: NumPy scalars and arrays, paths."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")
