"""Atoms tables to and from ASE, and structure files for DFT/MD codes through ASE."""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["from_ase", "to_ase", "write_structure"]

_CARRY = ("sigma_x_A", "sigma_y_A", "p_detect", "p_real", "frame")


def to_ase(
    atoms: pd.DataFrame,
    /,
    *,
    species: Mapping[str, str] | None = None,
    z_A: float | Mapping[str, float] = 0.0,
    cell_A: tuple[float, float, float] | None = None,
    vacuum_A: float = 10.0,
    pbc: bool | tuple[bool, bool, bool] = False,
) -> Any:
    """An ``ase.Atoms`` from an atoms table (one atom per column; x, y in Å).

    Parameters
    ----------
    atoms : pandas.DataFrame
        ``x_A, y_A, class`` (and optionally ``z_A``, σ, confidences, carried along as
        per-atom arrays).
    species : mapping, optional
        Class → element symbol (classes that are element symbols map to themselves).
    z_A : float or mapping
        Height of every atom, or per class [Å] (a ``z_A`` column wins).
    cell_A : (float, float, float), optional
        Cell lengths [Å]; by default the atoms' extent in x and y (from 0) and
        ``2 · vacuum_A`` in z, with the atoms at height ``z + vacuum_A`` (the middle).
    vacuum_A : float
        Vacuum above and below for the default cell [Å].
    pbc : bool or 3 bools
        Periodic boundaries.
    """
    from ase import Atoms

    cls = atoms["class"].astype(str).to_numpy()
    symbols = [(species or {}).get(c, c) for c in cls]
    if "z_A" in atoms:
        z = atoms["z_A"].to_numpy(float)
    elif isinstance(z_A, Mapping):
        z = np.array([float(z_A.get(c, 0.0)) for c in cls])
    else:
        z = np.full(len(atoms), float(z_A))
    pos = np.column_stack([atoms["x_A"].to_numpy(float), atoms["y_A"].to_numpy(float), z])
    if cell_A is None:
        hi = pos.max(axis=0) if len(pos) else np.zeros(3)
        cell_A = (float(hi[0]) + 1.0, float(hi[1]) + 1.0, 2 * vacuum_A)
        pos = pos + np.array([0.0, 0.0, vacuum_A])
    try:
        out = Atoms(symbols=symbols, positions=pos, cell=cell_A, pbc=pbc)
    except KeyError as exc:
        raise ValueError(
            f"class {exc.args[0]!r} is not an element symbol: map it to one with `species` "
            f"(e.g. {exc.args[0]} → Ti)."
        ) from None
    for col in _CARRY:
        if col in atoms:
            out.set_array(col, atoms[col].to_numpy(float))
    out.info["atomlens_z_offset_A"] = float(pos[0, 2] - z[0]) if len(pos) else 0.0
    return out


def from_ase(
    structure: Any, /, *, project: str = "z", z_offset_A: float | None = None
) -> pd.DataFrame:
    """Columns of an ``ase.Atoms`` seen along ``project``: an atoms table
    ``x_A, y_A, z_A, class`` (class = element), with carried arrays restored.

    Parameters
    ----------
    structure : ase.Atoms
        The structure (e.g. relaxed by DFT/MD).
    project : {"z", "y", "x"}
        Viewing direction.
    z_offset_A : float, optional
        Subtracted from the heights: the vacuum :func:`to_ase` added below the sheet. Read
        from the structure when it recorded it (extxyz keeps it; POSCAR and CIF do not:
        pass ``vacuum_A`` then).
    """
    axes = {"z": (0, 1, 2), "y": (0, 2, 1), "x": (1, 2, 0)}
    if project not in axes:
        raise ValueError(f"project must be 'x', 'y' or 'z', got {project!r}.")
    a, b, c = axes[project]
    pos = structure.get_positions()
    off = (
        float(z_offset_A)
        if z_offset_A is not None
        else float(structure.info.get("atomlens_z_offset_A", 0.0))
    )
    table = pd.DataFrame(
        {
            "x_A": pos[:, a],
            "y_A": pos[:, b],
            "z_A": pos[:, c] - off,
            "class": structure.get_chemical_symbols(),
        }
    )
    for col in _CARRY:
        if col in structure.arrays:
            table[col] = structure.arrays[col]
    return table


def write_structure(
    atoms: pd.DataFrame, path: str | PathLike[str], /, *, format: str | None = None, **kwargs: Any
) -> None:
    """Write an atoms table as a structure file through ASE (xyz, extxyz, cif, POSCAR, …).

    Parameters
    ----------
    atoms : pandas.DataFrame
        The table.
    path : path
        The file; ``format`` from its name unless given (``POSCAR`` → ``vasp``).
    format : str, optional
        ASE format name.
    **kwargs
        Passed to :func:`to_ase`.
    """
    from pathlib import Path

    from ase.io import write

    p = Path(path)
    fmt = format or ("vasp" if p.name.upper().startswith(("POSCAR", "CONTCAR")) else None)
    write(p, to_ase(atoms, **kwargs), format=fmt)
