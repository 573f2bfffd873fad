"""Which label class each column belongs to.

A :class:`ClassMap` turns column contents into class names. The list of class names is fixed
from the material and the defects *before* any image is drawn, so that every image of a data
set has the same channels (an absent class gives an empty mask).

Modes (``by``):

- ``"species"``: the column's element symbols, heaviest first, without counts
  (``"C"``, ``"Si"``, ``"Mo"``, ``"S"``, ``"TiO"``);
- ``"content"``: the column's composition with counts (``"S2"`` and ``"S"`` differ);
- ``"defect"``: ``"lattice"`` when a column holds what the perfect crystal holds there,
  ``"defect"`` otherwise;
- ``"atom"``: one class, ``"atom"``.

``rename`` maps labels to class names (several labels may share a name), e.g.
``ClassMap(by="content", rename={"S2": "S2", "S": "S-vacancy"})``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from ase.data import chemical_symbols

from atomlens.simulate.defects import Substitution, defect_elements

__all__ = ["ClassMap", "column_compositions", "column_species"]

ClassMode = Literal["species", "content", "defect", "atom"]
_MAX_CLASSES = 64


def column_species(counts: np.ndarray, elements: Sequence[int]) -> list[str]:
    """Element symbols present in each column, heaviest first (``elements`` must be sorted so)."""
    syms = [chemical_symbols[z] for z in elements]
    present = counts > 0
    return ["".join(s for s, p in zip(syms, row, strict=True) if p) for row in present]


def column_compositions(counts: np.ndarray, elements: Sequence[int]) -> list[str]:
    """Composition of each column with counts (count 1 omitted), heaviest first."""
    syms = [chemical_symbols[z] for z in elements]
    out = []
    for row in counts:
        out.append(
            "".join(f"{s}{n if n > 1 else ''}" for s, n in zip(syms, row, strict=True) if n > 0)
        )
    return out


@dataclass(frozen=True)
class ClassMap:
    """A mapping from columns to label classes.

    Parameters
    ----------
    by : {"species", "content", "defect", "atom"}
        What distinguishes classes (see the module docstring).
    rename : mapping of str to str
        Optional renaming of labels to class names.
    """

    by: ClassMode = "species"
    rename: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.by not in ("species", "content", "defect", "atom"):
            raise ValueError(
                f"ClassMap.by must be 'species', 'content', 'defect' or 'atom'; got {self.by!r}."
            )
        object.__setattr__(self, "rename", dict(self.rename))

    # -- labels -----------------------------------------------------------------------------
    def labels(
        self, counts: np.ndarray, elements: Sequence[int], pristine: np.ndarray | None = None
    ) -> list[str]:
        """Class name of each column.

        Parameters
        ----------
        counts : ndarray of shape (N, E)
            Column contents on the element axis ``elements`` (heaviest first).
        elements : sequence of int
            Atomic numbers.
        pristine : ndarray of shape (N, E), optional
            Contents of the perfect crystal at the same sites (needed for ``by="defect"``).

        Returns
        -------
        list of str
        """
        if self.by == "species":
            raw = column_species(counts, elements)
        elif self.by == "content":
            raw = column_compositions(counts, elements)
        elif self.by == "defect":
            if pristine is None:
                raise ValueError("ClassMap(by='defect') needs the pristine column contents.")
            raw = np.where((counts == pristine).all(axis=1), "lattice", "defect").tolist()
        else:
            raw = ["atom"] * len(counts)
        return [self.rename.get(s, s) for s in raw]

    def class_names(
        self, cell_counts: np.ndarray, elements: Sequence[int], defects: Sequence[object] = ()
    ) -> tuple[str, ...]:
        """Every class name that columns of this material with these defects can have.

        Parameters
        ----------
        cell_counts : ndarray of shape (M, E)
            Contents of the columns of the perfect crystal's projected cell.
        elements : sequence of int
            Atomic numbers of the element axis, heaviest first.
        defects : sequence of Vacancy or Substitution
            The defects that may occur.

        Returns
        -------
        tuple of str
            Sorted by first appearance: pristine classes first, then defect classes.
        """

        if self.by == "atom":
            raw: list[str] = ["atom"]
        elif self.by == "defect":
            raw = ["lattice", "defect"] if defects else ["lattice"]
        else:
            all_el = defect_elements(elements, defects)
            idx = {z: i for i, z in enumerate(all_el)}
            from ase.data import atomic_numbers

            affected = {atomic_numbers[d.element] for d in defects}
            repl = {
                atomic_numbers[d.element]: atomic_numbers[d.replacement]
                for d in defects
                if isinstance(d, Substitution)
            }
            raw = []
            seen_rows = set()
            for row in cell_counts:
                base = np.zeros(len(all_el), dtype=np.int64)
                for i, z in enumerate(elements):
                    base[idx[z]] = row[i]
                key = tuple(base)
                if key in seen_rows:
                    continue
                seen_rows.add(key)
                raw.extend(self._variants(base, all_el, affected, repl, idx))
        names: list[str] = []
        for s in raw:
            n = self.rename.get(s, s)
            if n not in names:
                names.append(n)
        if len(names) > _MAX_CLASSES:
            raise ValueError(
                f"ClassMap(by={self.by!r}) gives {len(names)} classes for this material and "
                f"these defects (limit {_MAX_CLASSES}); use by='species' or 'defect', or rename."
            )
        return tuple(names)

    def _variants(self, base, all_el, affected, repl, idx) -> list[str]:
        # Ranges of counts each element can take in a column that starts as `base`.
        ranges: list[range] = []
        for i, z in enumerate(all_el):
            n = int(base[i])
            if z in affected and n > 0:
                ranges.append(range(n, -1, -1))
            else:
                ranges.append(range(n, n + 1))
        extra = {idx[repl[z]]: int(base[idx[z]]) for z in repl if base[idx[z]] > 0}
        for j, n in extra.items():
            ranges[j] = range(int(base[j]), int(base[j]) + n + 1)
        total = 1
        for r in ranges:
            total *= len(r)
        if total > 4096:
            raise ValueError(
                f"ClassMap(by={self.by!r}): too many possible column contents ({total}); "
                "use by='species' or by='defect'."
            )
        out = []
        n0 = int(base.sum())
        for combo in itertools.product(*ranges):
            c = np.array(combo)
            if c.sum() == 0 or c.sum() > n0:
                continue
            lab = (column_species if self.by == "species" else column_compositions)(
                c[None], all_el
            )[0]
            if lab not in out:
                out.append(lab)
        return out
