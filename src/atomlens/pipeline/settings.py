"""The settings of finding atoms, in one frozen, validated, serialisable object."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np

from atomlens._shared.config import ConfigDict
from atomlens.locate.atoms import POSITIONS, Positions
from atomlens.pipeline.contrast import CONTRASTS

__all__ = ["REGION_RULES", "FindSettings"]

#: What ``FindSettings.regions`` can be.
REGION_RULES = ("off", "keep", "flag", "drop")


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)


@dataclass(frozen=True)
class FindSettings(ConfigDict):
    """How atoms are told from background and placed: what :func:`atomlens.pipeline.find`,
    :func:`atomlens.pipeline.find_files`, the stream loop and ELIT use.

    Parameters
    ----------
    threshold : float
        Minimum foreground probability of an atom, within (0, 1).
    min_separation_A : float, optional
        Minimum distance between two atoms [Å]; the model's own default when None.
    p_min : float
        Share of an ensemble's members that must find an atom for it to count, within
        (0, 1]; the others go to ``rejected``.
    p_real_min : float or "auto", optional
        Candidates whose calibrated ``p_real`` is below this go to ``rejected`` as well
        (``"auto"``: the calibration's F1-best threshold). None: ``p_real`` only reported.
    refine : bool
        Fit every atom with a Gaussian on the raw image (σ, intensity, width).
    positions : {"auto", "network", "fit", "mean"}
        The position reported for each atom: "auto" (the default) the fit's where its model
        holds and the network's otherwise, recorded per atom in ``position_source``; or the
        network's, the fit's, or their mean (:func:`atomlens.locate.locate_atoms`).
    contrast : {"auto", "bright", "dark"}
        Whether the atoms are bright (HAADF, ADF) or dark (BF, ABF) in the images. "auto"
        takes it per file from the file's signal type, or else assumes the model's and
        warns when the image looks the other way (:func:`atomlens.pipeline.atom_contrast`).
        An image whose contrast differs from the model's is inverted for the network; the
        Gaussian fit uses its own.
    regions : {"off", "keep", "flag", "drop"}
        Read the image's regions (:func:`atomlens.fourier.regions.region_map`: crystal,
        amorphous contamination, vacuum, saturated) and report each atom's in a ``region``
        column ("keep"); also give atoms outside the crystal ``p_real`` of at most
        :data:`atomlens.pipeline.finder.OUTSIDE_P_REAL` ("flag"; with ``p_real_min`` they
        are then rejected); or move them to ``rejected`` ("drop"). "off" (the default):
        no region map, no column.

    Raises
    ------
    ValueError
        Every invalid setting, named together.
    """

    threshold: float = 0.5
    min_separation_A: float | None = None
    p_min: float = 0.5
    p_real_min: float | str | None = None
    refine: bool = True
    positions: Positions = "auto"
    contrast: Literal["auto", "bright", "dark"] = "auto"
    regions: Literal["off", "keep", "flag", "drop"] = "off"

    def __post_init__(self) -> None:
        bad = []
        if not (_is_number(self.threshold) and 0 < self.threshold < 1):
            bad.append(f"threshold must be within (0, 1), got {self.threshold!r}")
        if self.min_separation_A is not None and not (
            _is_number(self.min_separation_A) and self.min_separation_A > 0
        ):
            bad.append(f"min_separation_A must be positive [Å], got {self.min_separation_A!r}")
        if not (_is_number(self.p_min) and 0 < self.p_min <= 1):
            bad.append(f"p_min must be within (0, 1], got {self.p_min!r}")
        if self.p_real_min is not None and not (
            self.p_real_min == "auto" or (_is_number(self.p_real_min) and 0 <= self.p_real_min <= 1)
        ):
            bad.append(f"p_real_min must be within [0, 1] or 'auto', got {self.p_real_min!r}")
        if not isinstance(self.refine, bool | np.bool_):
            bad.append(f"refine must be True or False, got {self.refine!r}")
        if self.positions not in POSITIONS:
            bad.append(
                f"positions must be one of {', '.join(map(repr, POSITIONS))}, "
                f"got {self.positions!r}"
            )
        if self.contrast not in CONTRASTS:
            bad.append(
                "contrast must be 'auto', 'bright' (atoms bright: HAADF, ADF) or 'dark' "
                f"(atoms dark: BF, ABF), got {self.contrast!r}"
            )
        if self.regions not in REGION_RULES:
            bad.append(
                "`regions` must be 'off', 'keep' (report each atom's region), 'flag' (low "
                f"p_real outside the crystal) or 'drop', got {self.regions!r}"
            )
        if bad:
            raise ValueError("; ".join(bad) + ".")

    def is_default(self) -> bool:
        """True when every setting has its default value."""
        return all(getattr(self, f.name) == f.default for f in fields(self))

    @classmethod
    def resolve(cls, settings: FindSettings | None, /, **keywords: Any) -> FindSettings:
        """``settings``, or the settings the keywords make (what a function that takes
        both, as :func:`atomlens.pipeline.find` does, runs with).

        Raises
        ------
        ValueError
            Both ``settings`` and keywords that differ from the defaults were given.
        TypeError
            ``settings`` is not a :class:`FindSettings`.
        """
        from_keywords = cls(**keywords)
        if settings is None:
            return from_keywords
        if not isinstance(settings, FindSettings):
            raise TypeError(f"settings must be a FindSettings, got {type(settings).__name__}.")
        if not from_keywords.is_default():
            raise ValueError(
                "give either settings or the separate keywords ("
                + ", ".join(sorted(keywords))
                + "), not both."
            )
        return settings
