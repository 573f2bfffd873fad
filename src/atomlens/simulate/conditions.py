"""Imaging conditions: one typed, JSON-serialisable description of how an image is taken."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from atomlens._shared.config import check_keys
from atomlens._shared.validate import validate_positive
from atomlens.simulate.distortions import ScanDistortion
from atomlens.simulate.imaging import Background, Detector
from atomlens.simulate.probe import AberratedProbe, GaussianProbe

__all__ = ["ImagingConditions", "probe_from_dict"]

Probe = GaussianProbe | AberratedProbe


def probe_from_dict(d: dict[str, Any], /) -> Probe:
    """Rebuild a probe from :meth:`GaussianProbe.to_dict` / :meth:`AberratedProbe.to_dict`."""
    d = dict(d)
    kind = d.pop("kind", None)
    cls = {"gaussian": GaussianProbe, "aberrated": AberratedProbe}.get(kind)
    if cls is None:
        raise ValueError(f"probe kind must be 'gaussian' or 'aberrated', got {kind!r}.")
    return cls(**check_keys(cls, d, "probe"))


@dataclass(frozen=True)
class ImagingConditions:
    """How a STEM image is taken.

    Parameters
    ----------
    mode : {"haadf", "bf"}
        ``"haadf"``: bright columns on a dark background; ``"bf"``: bright-field/ABF-like,
        columns dark on a bright background (contrast inverted).
    gamma : float
        Exponent of the Z-contrast, column intensity ∝ Σ Z^γ (1.6–2 for HAADF).
    probe : GaussianProbe or AberratedProbe
        The probe.
    column_sigma_A : float
        Gaussian spread of each column's own scattering (thermal vibration, channelling) [Å].
    dose_e_per_A2 : float
        Electron dose [e⁻/Å²].
    carbon_cross_section_A2 : float
        Effective cross-section of one carbon atom for this detector [Å²]; other elements
        scale as (Z/6)^γ.
    max_scattered_fraction : float
        Physical guard: if the brightest point of the image would scatter more than this
        fraction of the beam (thick, heavy crystals), all cross-sections are scaled down
        together to meet it (contrast ratios are kept). The applied factor is recorded.
    bf_transmission : float
        Bright-field signal without specimen, as a fraction of the beam (``mode="bf"``).
    read_noise : float
        Standard deviation of the detector read noise [counts].
    background : Background
        Amorphous film and slow background variations.
    distortion : ScanDistortion
        Scan distortions.
    detector : Detector
        Detector effects besides shot and read noise: gain drift and line-to-line gain
        jitter, hot and dead pixels, saturation (all off by default).
    """

    mode: Literal["haadf", "bf"] = "haadf"
    gamma: float = 1.7
    probe: Probe = field(default_factory=GaussianProbe)
    column_sigma_A: float = 0.08
    dose_e_per_A2: float = 1e5
    carbon_cross_section_A2: float = 0.01
    max_scattered_fraction: float = 0.5
    bf_transmission: float = 0.9
    read_noise: float = 0.0
    background: Background = field(default_factory=Background)
    distortion: ScanDistortion = field(default_factory=ScanDistortion)
    detector: Detector = field(default_factory=Detector)

    def __post_init__(self) -> None:
        if self.mode not in ("haadf", "bf"):
            raise ValueError(f"mode must be 'haadf' or 'bf', got {self.mode!r}.")
        if not (0.1 <= float(self.gamma) <= 3.0):
            raise ValueError(f"gamma must be within 0.1–3 (1.6–2 for HAADF), got {self.gamma!r}.")
        if not isinstance(self.probe, GaussianProbe | AberratedProbe):
            raise TypeError(f"probe must be a GaussianProbe or AberratedProbe, got {self.probe!r}.")
        validate_positive(self.column_sigma_A, name="column_sigma_A", unit="Å", allow_zero=True)
        validate_positive(self.dose_e_per_A2, name="dose_e_per_A2", unit="e⁻/Å²")
        validate_positive(self.carbon_cross_section_A2, name="carbon_cross_section_A2", unit="Å²")
        validate_positive(self.read_noise, name="read_noise", unit="counts", allow_zero=True)
        for name in ("max_scattered_fraction", "bf_transmission"):
            v = getattr(self, name)
            if not (math.isfinite(v) and 0 < v <= 1):
                raise ValueError(f"{name} must be within (0, 1], got {v!r}.")
        if not isinstance(self.background, Background):
            raise TypeError("background must be an atomlens.simulate.Background.")
        if not isinstance(self.distortion, ScanDistortion):
            raise TypeError("distortion must be an atomlens.simulate.ScanDistortion.")
        if not isinstance(self.detector, Detector):
            raise TypeError("detector must be an atomlens.simulate.Detector.")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable description (round-trips through :meth:`from_dict`)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = v.to_dict() if hasattr(v, "to_dict") else v
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any], /) -> ImagingConditions:
        """Rebuild conditions from :meth:`to_dict`; unknown keys raise ``ValueError``."""
        d = dict(check_keys(cls, dict(d), "ImagingConditions"))
        if "probe" in d and isinstance(d["probe"], dict):
            d["probe"] = probe_from_dict(d["probe"])
        if "background" in d and isinstance(d["background"], dict):
            d["background"] = Background(**check_keys(Background, d["background"], "background"))
        if "distortion" in d and isinstance(d["distortion"], dict):
            d["distortion"] = ScanDistortion(
                **check_keys(ScanDistortion, d["distortion"], "distortion")
            )
        if "detector" in d and isinstance(d["detector"], dict):
            d["detector"] = Detector(**check_keys(Detector, d["detector"], "detector"))
        return cls(**d)
