"""Simulated frames with what real frames have besides the lattice: thick amorphous
contamination patches (which can saturate the detector), holes to vacuum and a grain
boundary, with a per-pixel map of the true regions.

The truth of a :class:`RegionScene` holds every column of the crystal with the region it
lies in (``region``): a reference made by hand leaves the columns under contamination out
(nobody can see them), so a found atom outside the crystal region counts as false and the
crystal columns are what detection is scored on (:meth:`RegionScene.crystal_truth`).

Region codes (the values of :attr:`RegionScene.regions`) follow
:data:`atomlens.fourier.regions.REGIONS`: 0 crystal, 1 amorphous (contamination), 2 vacuum,
3 saturated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage as ndi
from scipy.spatial import cKDTree
from scipy.stats import poisson

from atomlens._shared.validate import validate_pixel_size, validate_positive
from atomlens.simulate.conditions import ImagingConditions
from atomlens.simulate.imaging import Background, record, render_film
from atomlens.simulate.scene import MaterialLike, simulate_image

__all__ = ["REGION_NAMES", "RegionScene", "SceneLayout", "simulate_regions"]

#: The region of each code of :attr:`RegionScene.regions` (as
#: :data:`atomlens.fourier.regions.REGIONS`).
REGION_NAMES: tuple[str, ...] = ("crystal", "amorphous", "vacuum", "saturated")


@dataclass(frozen=True)
class SceneLayout:
    """What a :func:`simulate_regions` frame holds besides the lattice.

    Parameters
    ----------
    contamination : int
        Number of amorphous contamination patches (irregular blobs).
    contamination_radius_A : (float, float)
        Range of their radii [Å].
    contamination_thickness_A : (float, float)
        Range of their thickness of amorphous carbon [Å] (the crystal's own columns still
        shine through; 10 Å of carbon scatter about 2.6× as much as a graphene sheet).
    holes : int
        Number of holes to vacuum (no specimen at all: neither crystal nor film).
    hole_radius_A : (float, float)
        Range of their radii [Å].
    grain_boundary : bool
        Split the frame along a random line into two grains rotated against each other by
        ``misorientation_deg``.
    misorientation_deg : (float, float)
        Range of the second grain's rotation against the first [°].
    saturate : float or None
        Clip the recorded counts at this multiple of the crystal's brightest expected
        column peak (a detector or an 8-bit range that saturates on the contamination), and
        never below what that peak's shot noise reaches (its Poisson 1 − 10⁻⁴ quantile: at
        a low dose a multiple of a fraction of a count would clip every count); None: no
        clipping.
    """

    contamination: int = 1
    contamination_radius_A: tuple[float, float] = (3.0, 6.0)
    contamination_thickness_A: tuple[float, float] = (10.0, 30.0)
    holes: int = 1
    hole_radius_A: tuple[float, float] = (2.0, 4.0)
    grain_boundary: bool = True
    misorientation_deg: tuple[float, float] = (12.0, 25.0)
    saturate: float | None = None

    def __post_init__(self) -> None:
        for name in ("contamination", "holes"):
            v = getattr(self, name)
            if not (isinstance(v, int) and v >= 0):
                raise ValueError(f"{name} must be an int ≥ 0, got {v!r}.")
        for name in (
            "contamination_radius_A",
            "contamination_thickness_A",
            "hole_radius_A",
            "misorientation_deg",
        ):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"{name} must be a range (low, high) with 0 ≤ low ≤ high.")
        if self.saturate is not None:
            validate_positive(self.saturate, name="saturate")


@dataclass(frozen=True)
class RegionScene:
    """A simulated frame with contamination, holes and grain boundary, and its truth.

    Attributes
    ----------
    image : ndarray of shape (H, W), float32
        Recorded counts.
    expected : ndarray of shape (H, W)
        Expected counts (noise-free, before clipping).
    truth : pandas.DataFrame
        Every crystal column inside the frame and outside the holes (atoms-table columns)
        with ``grain`` (0 or 1) and ``region`` (the region name at its position: columns
        under contamination are there, marked "amorphous" or "saturated").
    regions : ndarray of shape (H, W), uint8
        The true region of every pixel (codes of :data:`REGION_NAMES`).
    pixel_size : float
        [Å/px].
    metadata : dict
        The layout, the drawn patches and the seeds.
    """

    image: np.ndarray
    expected: np.ndarray
    truth: pd.DataFrame
    regions: np.ndarray
    pixel_size: float
    metadata: dict[str, Any] = field(default_factory=dict)

    def crystal_truth(self) -> pd.DataFrame:
        """The columns in the crystal region: what detection is scored on."""
        return self.truth[self.truth["region"] == "crystal"].reset_index(drop=True)

    def region_share(self) -> dict[str, float]:
        """Share of the frame's pixels in each region."""
        return {n: float(np.mean(self.regions == k)) for k, n in enumerate(REGION_NAMES)}


def _blobs(
    shape: tuple[int, int], n: int, radius_px: tuple[float, float], rng: np.random.Generator
) -> tuple[np.ndarray, list[dict[str, float]]]:
    """``n`` irregular blobs (a disk whose radius varies smoothly with the angle), as a
    soft mask in [0, 1] with edges about 1.5 px wide, and where they are."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    mask = np.zeros(shape)
    drawn = []
    for _ in range(n):
        r0 = float(rng.uniform(*radius_px))
        cx, cy = float(rng.uniform(0.15, 0.85) * w), float(rng.uniform(0.15, 0.85) * h)
        phase = rng.uniform(0, 2 * np.pi, 3)
        amp = rng.uniform(0.0, 0.25, 3)
        ang = np.arctan2(yy - cy, xx - cx)
        r = r0 * (
            1
            + sum(
                a * np.cos((k + 2) * ang + p)
                for k, (a, p) in enumerate(zip(amp, phase, strict=True))
            )
        )
        d = np.hypot(xx - cx, yy - cy) - r
        mask = np.maximum(mask, 1.0 / (1.0 + np.exp(d / 0.75)))
        drawn.append({"x_px": cx, "y_px": cy, "radius_px": r0})
    return mask, drawn


def simulate_regions(
    material: MaterialLike,
    /,
    *,
    shape: int | Sequence[int] = 256,
    pixel_size: float = 0.1,
    conditions: ImagingConditions | None = None,
    layout: SceneLayout | None = None,
    rng: int | None = None,
) -> RegionScene:
    """Simulate a HAADF frame of a crystal with contamination patches, holes to vacuum and
    a grain boundary, with the true region of every pixel and every column.

    Parameters
    ----------
    material : str, ase.Atoms, path or ProjectedCell
        The crystal (as :func:`atomlens.simulate.simulate_image`).
    shape : int or (int, int)
        Frame size [px].
    pixel_size : float
        [Å/px].
    conditions : ImagingConditions, optional
        Probe, dose, noise, thin support film (HAADF only).
    layout : SceneLayout, optional
        Contamination, holes, grain boundary, saturation.
    rng : int, optional
        Seed of everything drawn.

    Returns
    -------
    RegionScene

    Examples
    --------
    >>> s = simulate_regions("graphene", shape=128, pixel_size=0.1, rng=0)
    >>> sorted(s.region_share())
    ['amorphous', 'crystal', 'saturated', 'vacuum']
    """
    px = validate_pixel_size(pixel_size)
    cond = conditions if conditions is not None else ImagingConditions()
    if cond.mode != "haadf":
        raise ValueError(f"simulate_regions simulates HAADF frames, got mode {cond.mode!r}.")
    lay = layout if layout is not None else SceneLayout()
    ss = np.random.SeedSequence(rng)
    s_a, s_b, s_layout, s_film, s_noise = ss.spawn(5)
    g = np.random.default_rng(s_layout)
    theta = float(g.uniform(0, 360))
    first = simulate_image(
        material, shape=shape, pixel_size=px, conditions=cond, rotation_deg=theta, rng=s_a
    )
    h, w = first.image.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    expected = first.expected.astype(float)
    truths = [first.truth.assign(grain=0)]
    meta: dict[str, Any] = {"layout": asdict(lay), "rotation_deg": [theta]}
    if lay.grain_boundary:
        dtheta = float(g.uniform(*lay.misorientation_deg)) * float(g.choice([-1, 1]))
        second = simulate_image(
            material,
            shape=shape,
            pixel_size=px,
            conditions=cond,
            rotation_deg=theta + dtheta,
            rng=s_b,
        )
        phi = float(g.uniform(0, np.pi))
        off = float(g.uniform(-0.2, 0.2)) * min(h, w)
        side = (xx - (w - 1) / 2) * np.cos(phi) + (yy - (h - 1) / 2) * np.sin(phi) - off
        m2 = 1.0 / (1.0 + np.exp(-side / 0.75))
        expected = expected * (1 - m2) + second.expected * m2

        def on_second(t: pd.DataFrame) -> np.ndarray:
            s = (
                (t["x_px"] - (w - 1) / 2) * np.cos(phi)
                + (t["y_px"] - (h - 1) / 2) * np.sin(phi)
                - off
            )
            return s.to_numpy(float) >= 0

        t1 = first.truth[~on_second(first.truth)].assign(grain=0)
        t2 = second.truth[on_second(second.truth)].assign(grain=1)
        # columns of the second grain that crowd one of the first at the boundary are not
        # resolved columns of either: the first grain's is kept
        if len(t1) and len(t2):
            d, _ = cKDTree(t1[["x_px", "y_px"]].to_numpy(float)).query(
                t2[["x_px", "y_px"]].to_numpy(float)
            )
            t2 = t2[d * px >= 1.0]
        truths = [t1, t2]
        meta["rotation_deg"].append(theta + dtheta)
        meta["boundary"] = {"angle_rad": phi, "offset_px": off}
    truth = pd.concat(truths, ignore_index=True)
    peak_col = float(expected.max())

    holes, hole_list = _blobs((h, w), lay.holes, tuple(r / px for r in lay.hole_radius_A), g)
    cont, cont_list = _blobs(
        (h, w), lay.contamination, tuple(r / px for r in lay.contamination_radius_A), g
    )
    cont = cont * (1 - holes)
    gf = np.random.default_rng(s_film)
    if lay.contamination:
        thick = float(g.uniform(*lay.contamination_thickness_A))
        profile = cond.probe.image_profile(cond.column_sigma_A)
        film = render_film(
            Background(film_thickness_A=thick, variation=0.2, variation_length_A=10.0),
            shape=(h, w),
            pixel_size=px,
            profile=profile,
            carbon_cross_section_A2=1.0,
            rng=gf,
        )
        scale = float(first.metadata["cross_section_scale"])
        film_counts = cond.dose_e_per_A2 * px**2 * film * cond.carbon_cross_section_A2 * scale
        expected = expected + cont * film_counts
        meta["contamination_thickness_A"] = thick
    expected = expected * (1 - holes)
    g_noise = np.random.default_rng(s_noise)
    image = record(expected, detector=cond.detector, read_noise=cond.read_noise, rng=g_noise)
    regions = np.zeros((h, w), np.uint8)
    regions[cont >= 0.5] = 1
    regions[holes >= 0.5] = 2
    if lay.saturate is not None:
        # a detector saturates far above what a column's shot noise reaches: at 2·10³
        # e⁻/Å² a graphene column's peak is 0.26 counts, and 1.5× that clipped every count,
        # a binary frame; never below the peak's Poisson 1 − 10⁻⁴ quantile
        level = max(float(lay.saturate) * peak_col, float(poisson.ppf(1 - 1e-4, peak_col)))
        clipped = image >= level
        image = np.minimum(image, np.float32(level))
        sat = ndi.binary_opening(clipped & (regions == 1), iterations=1)
        regions[sat] = 3
        meta["saturation_counts"] = level
    ix = np.clip(np.round(truth["x_px"].to_numpy(float)).astype(int), 0, w - 1)
    iy = np.clip(np.round(truth["y_px"].to_numpy(float)).astype(int), 0, h - 1)
    truth = truth.assign(region=np.asarray(REGION_NAMES, dtype=object)[regions[iy, ix]])
    truth = truth[(holes[iy, ix] < 0.5)].reset_index(drop=True)  # a hole has no columns
    meta.update(
        {
            "contamination": cont_list,
            "holes": hole_list,
            "conditions": cond.to_dict(),
            "seed": None if rng is None else int(rng),
            "peak_column_counts": peak_col,
        }
    )
    return RegionScene(
        image=image.astype(np.float32),
        expected=expected,
        truth=truth,
        regions=regions,
        pixel_size=px,
        metadata=meta,
    )
