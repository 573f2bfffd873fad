"""The atoms table: one row per atom (or atomic column), in pixels and in ångström.

Conventions (used by every module of atomlens):

- ``x_px`` is the column index and ``y_px`` the row index of the image, with pixel centres at
  integer coordinates: the centre of the top-left pixel is ``(0, 0)``.
- ``x_A = x_px * pixel_size`` and ``y_A = y_px * pixel_size`` [Å], with the same origin.
- ``class`` holds the class name (a string).

Later stages add columns: ``p_detect``, ``sigma_x_A``, ``sigma_y_A``, ``intensity``, ``frame``.
The simulator's truth tables add ``species``, ``composition``, ``n_atoms`` and more (see
:func:`atomlens.simulate.simulate_image`).
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike

import numpy as np
import pandas as pd

from atomlens._shared.validate import validate_pixel_size

#: Columns every atoms table has, in this order.
REQUIRED_COLUMNS: tuple[str, ...] = ("x_px", "y_px", "x_A", "y_A", "class")

__all__ = ["REQUIRED_COLUMNS", "make_atoms_table", "read_atoms_csv", "validate_atoms_table"]


def make_atoms_table(
    xy_px: np.ndarray,
    /,
    *,
    pixel_size: float,
    classes: Sequence[str] | np.ndarray | str = "atom",
    extra: dict[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """Build an atoms table from pixel positions.

    Parameters
    ----------
    xy_px : ndarray of shape (N, 2)
        Positions as (x, y) = (column, row) [px], pixel centres at integers.
    pixel_size : float
        Pixel size [Å/px].
    classes : str or sequence of str
        One class name for all atoms, or one per atom.
    extra : dict of str to ndarray, optional
        Further columns, each of length N.

    Returns
    -------
    pandas.DataFrame
        Columns ``x_px, y_px, x_A, y_A, class`` followed by the ``extra`` columns.

    Examples
    --------
    >>> import numpy as np
    >>> t = make_atoms_table(np.array([[1.0, 2.0]]), pixel_size=0.1)
    >>> list(t.columns), float(t.x_A[0]), float(t.y_A[0])
    (['x_px', 'y_px', 'x_A', 'y_A', 'class'], 0.1, 0.2)
    """
    px = validate_pixel_size(pixel_size)
    xy = np.asarray(xy_px, dtype=float).reshape(-1, 2)
    n = len(xy)
    if isinstance(classes, str):
        cls = np.full(n, classes, dtype=object)
    else:
        cls = np.array(classes, dtype=object)  # a copy: the table must not alias the input
        if cls.shape != (n,):
            raise ValueError(f"classes must have one entry per atom ({n}), got shape {cls.shape}.")
    data: dict[str, np.ndarray] = {
        "x_px": xy[:, 0],
        "y_px": xy[:, 1],
        "x_A": xy[:, 0] * px,
        "y_A": xy[:, 1] * px,
        "class": cls,
    }
    for key, values in (extra or {}).items():
        arr = np.asarray(values)
        if len(arr) != n:
            raise ValueError(f"extra column {key!r} has {len(arr)} entries, expected {n}.")
        data[key] = arr
    return pd.DataFrame(data)


def validate_atoms_table(table: pd.DataFrame, /, *, name: str = "atoms table") -> pd.DataFrame:
    """Check that ``table`` has the atoms-table columns with finite coordinates.

    Parameters
    ----------
    table : pandas.DataFrame
        The table to check.
    name : str
        How to call the table in error messages (e.g. its file name).

    Returns
    -------
    pandas.DataFrame
        The same table.
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame, got {type(table).__name__}.")
    has_px = {"x_px", "y_px"} <= set(table.columns)
    has_A = {"x_A", "y_A"} <= set(table.columns)
    if not (has_px or has_A):
        raise ValueError(
            f"{name} needs coordinate columns x_px, y_px (pixels) and/or x_A, y_A (ångström); "
            f"found {list(table.columns)}."
        )
    for col in ("x_px", "y_px", "x_A", "y_A"):
        if col in table.columns and not np.isfinite(table[col].to_numpy(dtype=float)).all():
            raise ValueError(f"{name} has non-finite values in column {col!r}; remove those rows.")
    return table


def read_atoms_csv(path: str | PathLike[str], /) -> pd.DataFrame:
    """Read an atoms table from a CSV file and validate it.

    Parameters
    ----------
    path : str or path-like
        CSV file with at least ``x_px, y_px`` or ``x_A, y_A`` columns.

    Returns
    -------
    pandas.DataFrame
        The table; ``class`` is read as strings.
    """
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such file. Check the path to the atoms CSV.")
    try:
        table = pd.read_csv(p, dtype={"class": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValueError(f"{p}: not a readable CSV atoms table ({exc}).") from None
    return validate_atoms_table(table, name=str(p))
