"""One simulated image with its exact truth: :func:`simulate_image`."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from os import PathLike
from typing import Any, Literal

import numpy as np
import pandas as pd
from ase import Atoms

from atomlens import __version__
from atomlens._shared.validate import validate_pixel_size, validate_positive
from atomlens.io.atoms_table import make_atoms_table
from atomlens.metrics import bright_level, crlb_gaussian_position
from atomlens.simulate.classes import ClassMap, column_compositions, column_species
from atomlens.simulate.conditions import ImagingConditions
from atomlens.simulate.defects import (
    Defect,
    Substitution,
    Vacancy,
    apply_defects,
    expand_elements,
)
from atomlens.simulate.geometry import Bicrystal, Nanoparticle, join_grains
from atomlens.simulate.imaging import (
    AMORPHOUS_CARBON_DENSITY,
    _core_and_tail_radius,
    record,
    render_columns,
    render_film,
)
from atomlens.simulate.labels import render_masks
from atomlens.simulate.structures import ProjectedCell, load_material, tile_cell

__all__ = ["SimulatedImage", "film_counts", "simulate_image"]

logger = logging.getLogger(__name__)

MaterialLike = str | Atoms | PathLike[str] | ProjectedCell


@dataclass(frozen=True)
class SimulatedImage:
    """A simulated image with its exact truth.

    Attributes
    ----------
    image : ndarray of shape (H, W), float32
        Recorded counts (Poisson shot noise, read noise and the detector effects of
        ``conditions.detector`` included).
    expected : ndarray of shape (H, W), float64
        Expected counts λ per pixel (the noise-free image), before the detector's gain,
        hot and dead pixels and saturation.
    truth : pandas.DataFrame
        One row per atomic column inside the field of view, with the atoms-table columns
        ``x_px, y_px, x_A, y_A, class`` (image positions, i.e. after scan distortion) and
        ``species`` (element symbols, heaviest first), ``composition`` (with counts),
        ``n_atoms``, ``z_gamma_sum`` (Σ Z^γ), ``counts`` (expected detector counts the column
        scatters, D·σ), ``is_defect``, ``near_edge`` (closer to the border than the probe's
        core radius), ``x_spec_A, y_spec_A`` (specimen positions before scan distortion [Å])
        and ``site`` (index of the column in the projected cell); with a
        :class:`~atomlens.simulate.Bicrystal` geometry also ``grain`` (0 or 1).
    vacancies : pandas.DataFrame
        Sites emptied by vacancies (atoms-table columns and ``composition`` of the perfect
        column there).
    masks : ndarray of shape (K + 1, H, W), float32
        Channel 0 background, channel ``k + 1`` class ``class_names[k]``.
    class_names : tuple of str
        The K class names.
    pixel_size : float
        Pixel size [Å/px].
    conditions : ImagingConditions
        How the image was taken.
    metadata : dict
        Everything else needed to reproduce the image (material, seed, rotation, strain,
        defects, cross-section scale, atomlens version).
    hidden : pandas.DataFrame
        Columns inside the field of view that are rendered but, below
        ``label_min_share``, neither labelled nor in ``truth`` (atoms-table columns and
        ``composition``): an atom found on one is real, though not asked for, and scores
        (:func:`atomlens.train.fit_calibration`) leave it out rather than count it false.
    """

    image: np.ndarray
    expected: np.ndarray
    truth: pd.DataFrame
    vacancies: pd.DataFrame
    masks: np.ndarray
    class_names: tuple[str, ...]
    pixel_size: float
    conditions: ImagingConditions
    metadata: dict[str, Any] = field(default_factory=dict)
    hidden: pd.DataFrame = field(
        default_factory=lambda: make_atoms_table(np.zeros((0, 2)), pixel_size=1.0)
    )

    @property
    def background_per_px(self) -> float:
        """Mean expected background counts per pixel from the film (HAADF) [counts]."""
        return float(self.metadata.get("background_counts_per_px", 0.0))

    def crlb_A(self) -> np.ndarray:
        """Cramér–Rao lower bound on each truth column's position (per axis) [Å].

        Treats each column as a Gaussian spot with the profile's effective width, its
        expected counts ``truth.counts`` and the film's mean background per pixel. With an
        amorphous film the background is a texture of atoms rather than flat: the bound
        still holds but is not reached (error / CRLB ≈ 1.3 for 3 Å of carbon, measured by
        ``tests/simulate/test_crlb_end_to_end.py``; ≈ 1.0 without a film).

        Returns
        -------
        ndarray of shape (N,)
        """

        if self.conditions.mode != "haadf":
            raise ValueError("crlb_A is defined for HAADF images (bright columns) only.")
        return crlb_gaussian_position(
            sigma=float(self.metadata["profile_sigma_A"]),
            counts=self.truth["counts"].to_numpy(dtype=float),
            background=self.background_per_px,
            pixel_size=self.pixel_size,
        )


def _shape(shape: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(shape, int | np.integer):
        shape = (int(shape), int(shape))
    try:
        h, w = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise TypeError(f"shape must be an int or (height, width), got {shape!r}.") from None
    if h < 8 or w < 8 or h > 8192 or w > 8192:
        raise ValueError(f"shape must be within 8–8192 px per side, got {(h, w)}.")
    return h, w


def _seed_streams(rng: int | np.random.Generator | np.random.SeedSequence | None, n: int):
    if isinstance(rng, np.random.Generator):
        return rng.spawn(n), None
    if rng is None or isinstance(rng, int | np.integer):
        ss = np.random.SeedSequence(rng)
    elif isinstance(rng, np.random.SeedSequence):
        ss = rng
    else:
        raise TypeError(
            f"rng must be an int seed, a SeedSequence, a Generator or None, got {rng!r}."
        )
    return [np.random.default_rng(s) for s in ss.spawn(n)], ss.entropy


def simulate_image(
    material: MaterialLike,
    /,
    *,
    shape: int | Sequence[int] = 256,
    pixel_size: float = 0.1,
    conditions: ImagingConditions | None = None,
    zone_axis: Sequence[int] | None = None,
    thickness_A: float | None = None,
    rotation_deg: float | None = None,
    strain: Sequence[float] = (0.0, 0.0, 0.0),
    defects: Sequence[Defect] = (),
    classes: ClassMap | str = "species",
    label_radius_A: float = 0.5,
    label_kind: Literal["disk", "gaussian"] = "disk",
    label_min_share: float = 0.0,
    displacement: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    geometry: Bicrystal | Nanoparticle | None = None,
    rng: int | np.random.Generator | np.random.SeedSequence | None = None,
) -> SimulatedImage:
    """Simulate a STEM image of a crystal with exact truth and labels.

    Parameters
    ----------
    material : str, ase.Atoms, path or ProjectedCell
        A material name (``"graphene"``, ``"hbn"``, ``"mos2"``, ``"ws2"``, ``"srtio3"``), an
        ASE ``Atoms``, a structure file (CIF, …) or an already projected cell.
    shape : int or (int, int)
        Image size (H, W) [px].
    pixel_size : float
        Pixel size [Å/px].
    conditions : ImagingConditions, optional
        Probe, dose, noise, background, distortions; defaults to ``ImagingConditions()``.
    zone_axis : sequence of 3 int, optional
        Viewing direction [uvw]; the material's default if omitted.
    thickness_A : float, optional
        Specimen thickness [Å] for bulk crystals (a whole number of periods).
    rotation_deg : float, optional
        In-plane rotation of the crystal [degrees]; random (uniform) if ``None``.
    strain : (float, float, float)
        Homogeneous strain ``(ε_xx, ε_yy, ε_xy)`` in the image frame (x = columns).
    defects : sequence of Vacancy or Substitution
        Point defects.
    classes : ClassMap or str
        How columns map to label classes (a ``ClassMap`` or its ``by`` mode).
    label_radius_A : float
        Radius of the label disks (or σ of label Gaussians) [Å].
    label_kind : {"disk", "gaussian"}
        Mask shape.
    label_min_share : float
        Columns whose Σ Z^γ is below this share of the bright columns' (the 90th percentile
        of the columns, so that a few heavy dopants do not count) are rendered but neither
        labelled nor in the truth: what the image does not show (at 0.25, HAADF's
        γ 1.7 drops SrTiO3 [110]'s pure O columns, 0.13 of SrO's, and N beside Ga; ABF's
        γ 0.3–0.8 keeps them). 0 labels every column.
    displacement : callable, optional
        A field that moves columns off their lattice sites:
        ``displacement(xy_A, classes) → (N, 2)`` [Å], given every column's specimen position
        ``(x, y)`` [Å] (after rotation and strain, before scan distortion) and its class name
        (as in the truth's ``class``). E.g. a polarisation field that shifts only the
        B-site columns of a perovskite. The truth holds the displaced positions.
    geometry : Bicrystal or Nanoparticle, optional
        What the specimen is besides one crystal filling the frame
        (:mod:`~atomlens.simulate.geometry`): two grains rotated against each other at a
        straight boundary (the truth gains a ``grain`` column, 0 or 1; ``rotation_deg`` is the
        first grain's), or a finite particle of the crystal (on the support film of
        ``conditions.background``; the truth holds the particle's columns only). ``None``:
        the crystal fills the field of view.
    rng : int, SeedSequence, Generator or None
        The one source of every random choice (lattice offset, rotation, defects, film,
        jitter, noise).

    Returns
    -------
    SimulatedImage

    Examples
    --------
    >>> sim = simulate_image("graphene", shape=64, pixel_size=0.1, rng=0)
    >>> sim.image.shape, sim.class_names
    ((64, 64), ('C',))

    Two grains of gold seen down [110], 20° apart at a vertical boundary:

    >>> from atomlens.simulate import Bicrystal
    >>> sim = simulate_image("au[110]", shape=64, pixel_size=0.1, rotation_deg=0.0, rng=0,
    ...                      geometry=Bicrystal(misorientation_deg=20.0))
    >>> sorted(set(sim.truth["grain"]))
    [0, 1]
    """
    h, w = _shape(shape)
    px = validate_pixel_size(pixel_size)
    cond = conditions if conditions is not None else ImagingConditions()
    if not isinstance(cond, ImagingConditions):
        raise TypeError(f"conditions must be ImagingConditions, got {type(cond).__name__}.")
    cmap = ClassMap(by=classes) if isinstance(classes, str) else classes
    if not isinstance(cmap, ClassMap):
        raise TypeError(f"classes must be a ClassMap or one of its modes, got {classes!r}.")
    validate_positive(label_radius_A, name="label_radius_A", unit="Å")
    if not 0.0 <= float(label_min_share) < 1.0:
        raise ValueError(f"label_min_share must be within [0, 1), got {label_min_share!r}.")
    exx, eyy, exy = (float(s) for s in strain)
    if max(abs(exx), abs(eyy), abs(exy)) > 0.2:
        raise ValueError(f"strain components must stay below 0.2 (20 %), got {tuple(strain)}.")
    for d in defects:
        if not isinstance(d, Vacancy | Substitution):
            raise TypeError(f"defects must hold Vacancy or Substitution objects, got {d!r}.")
    if geometry is not None and not isinstance(geometry, Bicrystal | Nanoparticle):
        raise TypeError(f"geometry must be None, a Bicrystal or a Nanoparticle, got {geometry!r}.")

    cell = (
        material
        if isinstance(material, ProjectedCell)
        else load_material(
            material,
            zone_axis=None if zone_axis is None else tuple(int(z) for z in zone_axis),
            thickness_A=thickness_A,
        )
    )
    (g_geom, g_defect, g_film, g_scan, g_noise), seed_entropy = _seed_streams(rng, 5)

    # --- geometry: lattice offset, rotation, strain -------------------------------------------
    theta_deg = float(g_geom.uniform(0.0, 360.0)) if rotation_deg is None else float(rotation_deg)
    theta = math.radians(theta_deg)
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    deform = np.array([[1.0 + exx, exy], [exy, 1.0 + eyy]]) @ rot
    frac = g_geom.uniform(0.0, 1.0, 2)
    origin = frac[0] * cell.a + frac[1] * cell.b
    profile = cond.probe.image_profile(cond.column_sigma_A)
    r_core, r_tail = _core_and_tail_radius(profile)
    centre_px = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    half_diag_A = 0.5 * math.hypot(h, w) * px
    margin_A = max(r_tail, label_radius_A * 3) + 2.0 + 2.0 * _max_distortion_px(cond) * px
    radius = (half_diag_A + margin_A) / (1.0 - max(abs(exx), abs(eyy), abs(exy)) * 1.5)
    xy_cell, site = tile_cell(cell, center_A=tuple(origin), radius_A=radius)
    xy_A = (xy_cell - origin) @ deform.T + centre_px * px  # specimen positions [Å]
    grain: np.ndarray | None = None
    geometry_meta: dict[str, Any] = {}
    if isinstance(geometry, Bicrystal):
        # the second grain: the same crystal turned further, with its own lattice offset
        theta2 = math.radians(theta_deg + float(geometry.misorientation_deg))
        rot2 = np.array(
            [[math.cos(theta2), -math.sin(theta2)], [math.sin(theta2), math.cos(theta2)]]
        )
        deform2 = np.array([[1.0 + exx, exy], [exy, 1.0 + eyy]]) @ rot2
        frac2 = g_geom.uniform(0.0, 1.0, 2)
        origin2 = frac2[0] * cell.a + frac2[1] * cell.b
        xy2_cell, site2 = tile_cell(cell, center_A=tuple(origin2), radius_A=radius)
        xy2_A = (xy2_cell - origin2) @ deform2.T + centre_px * px
        keep1, keep2 = join_grains(xy_A, xy2_A, bicrystal=geometry, center_A=centre_px * px)
        xy_A = np.concatenate([xy_A[keep1], xy2_A[keep2]])
        site = np.concatenate([site[keep1], site2[keep2]])
        grain = np.repeat(np.array([0, 1], dtype=np.int64), [int(keep1.sum()), int(keep2.sum())])
        geometry_meta = {"rotation_deg_second": theta_deg + float(geometry.misorientation_deg)}
    elif isinstance(geometry, Nanoparticle):
        inside_particle = geometry.contains(xy_A - centre_px * px, crystal_angle_deg=theta_deg)
        xy_A, site = xy_A[inside_particle], site[inside_particle]

    # --- defects and classes -------------------------------------------------------------------
    pristine = np.asarray(cell.counts)[site]
    counts, elements = apply_defects(
        pristine, elements=cell.elements, defects=defects, xy_A=xy_A, rng=g_defect
    )
    pristine_ext = expand_elements(pristine, cell.elements, elements)
    class_names = cmap.class_names(np.asarray(cell.counts), cell.elements, defects)
    z = np.asarray(elements, dtype=float)
    z_gamma = counts @ ((z / 6.0) ** cond.gamma)  # Σ (Z/6)^γ per column
    present = counts.sum(axis=1) > 0
    labels = np.asarray(cmap.labels(counts, elements, pristine_ext), dtype=object)
    moved = 0.0
    if displacement is not None:
        xy_A, moved = _displaced(xy_A, labels, displacement)

    # --- scan distortion: where each column lands in the image ---------------------------------
    spec_px = xy_A / px
    field_ = cond.distortion.draw((h, w), g_scan)
    img_px = field_.image_positions(spec_px, sigma_px=profile.sigma_A / px)
    scan = None if cond.distortion.is_identity else field_
    jitter_margin = 3.0 * max(cond.distortion.line_jitter_px, cond.distortion.line_jitter_y_px)

    # --- imaging -------------------------------------------------------------------------------
    sigma_c = cond.carbon_cross_section_A2
    columns = render_columns(
        spec_px[present],
        weights=z_gamma[present],
        profile=profile,
        shape=(h, w),
        pixel_size=px,
        image_px=img_px[present],
        scan=scan,
        jitter_margin_px=jitter_margin,
    )
    film = render_film(
        cond.background,
        shape=(h, w),
        pixel_size=px,
        profile=profile,
        carbon_cross_section_A2=1.0,
        rng=g_film,
    )
    signal = columns + film
    peak = float(signal.max()) * sigma_c if signal.size else 0.0
    scale = 1.0
    limit = cond.max_scattered_fraction * (cond.bf_transmission if cond.mode == "bf" else 1.0)
    if peak > limit:
        scale = limit / peak
        logger.info(
            "cross-sections scaled by %.3g to keep the scattered fraction <= %.2f", scale, limit
        )
    fraction = signal * sigma_c * scale
    electrons_per_px = cond.dose_e_per_A2 * px**2
    if cond.mode == "haadf":
        expected = electrons_per_px * fraction
    else:
        expected = electrons_per_px * (cond.bf_transmission - fraction)
    image = record(expected, detector=cond.detector, read_noise=cond.read_noise, rng=g_noise)
    film_mean = AMORPHOUS_CARBON_DENSITY * cond.background.film_thickness_A * sigma_c * scale

    # --- truth ---------------------------------------------------------------------------------
    inside = (
        (img_px[:, 0] >= -0.5)
        & (img_px[:, 0] < w - 0.5)
        & (img_px[:, 1] >= -0.5)
        & (img_px[:, 1] < h - 0.5)
    )
    shown = present.copy()
    if label_min_share > 0 and present.any():
        # against the bright columns' level, not the brightest one (dopants)
        shown &= z_gamma >= float(label_min_share) * bright_level(z_gamma[present])
    keep = inside & shown
    edge_px = r_core / px
    near_edge = (
        (img_px[:, 0] < edge_px - 0.5)
        | (img_px[:, 0] > w - 0.5 - edge_px)
        | (img_px[:, 1] < edge_px - 0.5)
        | (img_px[:, 1] > h - 0.5 - edge_px)
    )
    truth = make_atoms_table(
        img_px[keep],
        pixel_size=px,
        classes=labels[keep],
        extra={
            "species": np.asarray(column_species(counts[keep], elements), dtype=object),
            "composition": np.asarray(column_compositions(counts[keep], elements), dtype=object),
            "n_atoms": counts[keep].sum(axis=1),
            "z_gamma_sum": z_gamma[keep] * 6.0**cond.gamma,
            "counts": cond.dose_e_per_A2 * sigma_c * scale * z_gamma[keep],
            "is_defect": ~(counts[keep] == pristine_ext[keep]).all(axis=1),
            "near_edge": near_edge[keep],
            "x_spec_A": xy_A[keep, 0],
            "y_spec_A": xy_A[keep, 1],
            "site": site[keep],
            **({} if grain is None else {"grain": grain[keep]}),
        },
    )
    hid = inside & present & ~shown
    hidden = make_atoms_table(
        img_px[hid],
        pixel_size=px,
        classes=labels[hid],
        extra={"composition": np.asarray(column_compositions(counts[hid], elements), dtype=object)},
    )
    vac = inside & ~present
    vacancies = make_atoms_table(
        img_px[vac],
        pixel_size=px,
        classes="vacancy",
        extra={
            "composition": np.asarray(
                column_compositions(pristine_ext[vac], elements), dtype=object
            )
        },
    )

    # --- labels --------------------------------------------------------------------------------
    cls_index = {n: i for i, n in enumerate(class_names)}
    lab_sel = shown & _within(img_px, (h, w), 3 * label_radius_A / px + 1)
    masks = render_masks(
        img_px[lab_sel],
        class_index=np.array([cls_index[s] for s in labels[lab_sel]], dtype=np.int64),
        n_classes=len(class_names),
        shape=(h, w),
        radius_px=label_radius_A / px,
        kind=label_kind,
    )

    metadata = {
        "material": cell.name,
        "zone_axis": list(cell.zone_axis),
        "thickness_A": float(cell.thickness_A),
        "shape": [h, w],
        "pixel_size_A": px,
        "rotation_deg": theta_deg,
        "strain": [exx, eyy, exy],
        "max_displacement_A": moved,
        "defects": [_defect_dict(d) for d in defects],
        "classes": {"by": cmap.by, "rename": dict(cmap.rename), "names": list(class_names)},
        "label_radius_A": float(label_radius_A),
        "label_kind": label_kind,
        "label_min_share": float(label_min_share),
        "seed_entropy": None if seed_entropy is None else str(seed_entropy),
        "cross_section_scale": scale,
        "profile_sigma_A": profile.sigma_A,
        "background_counts_per_px": electrons_per_px * film_mean,
        "conditions": cond.to_dict(),
        "atomlens_version": __version__,
    }
    if geometry is not None:
        metadata["geometry"] = {**geometry.to_dict(), **geometry_meta}
    return SimulatedImage(
        image=image,
        expected=expected,
        truth=truth,
        vacancies=vacancies,
        masks=masks,
        class_names=class_names,
        pixel_size=px,
        conditions=cond,
        metadata=metadata,
        hidden=hidden,
    )


def _displaced(
    xy_A: np.ndarray, labels: np.ndarray, displacement: Callable[..., Any]
) -> tuple[np.ndarray, float]:
    """Columns moved by a user's displacement field, and the largest move [Å]."""
    d = np.asarray(displacement(xy_A.copy(), labels.copy()), dtype=np.float64)
    if d.shape != xy_A.shape:
        raise ValueError(
            f"displacement returned shape {d.shape}; it must return one (dx, dy) [Å] per "
            f"column, shape {xy_A.shape}."
        )
    if not np.isfinite(d).all():
        raise ValueError("displacement returned NaN or infinite values; return finite (dx, dy).")
    return xy_A + d, float(np.hypot(d[:, 0], d[:, 1]).max(initial=0.0))


def film_counts(
    sim: SimulatedImage,
    thickness_A: float,
    /,
    *,
    rng: int | Sequence[int] | np.random.Generator | None = None,
) -> np.ndarray:
    """Expected counts an amorphous carbon film of ``thickness_A`` would add to ``sim``.

    The film is drawn anew (random atoms, :func:`~atomlens.simulate.imaging.render_film`)
    and imaged as ``sim``'s columns were: the same probe, pixel size, dose, cross-section
    scale and contrast mode (negative in bright field), with the gradient and variation of
    ``sim``'s own background. ``sim.expected + film_counts(sim, t)`` is ``sim`` seen through
    a film of ``t`` more Å (up to the cross-section cap, which is not re-applied).

    Parameters
    ----------
    sim : SimulatedImage
        The image to add a film to.
    thickness_A : float
        Film thickness [Å] (0 gives zeros).
    rng : int, sequence of int or numpy.random.Generator, optional
        Source of the film's randomness (a seed, or a generator that is advanced).

    Returns
    -------
    ndarray (H, W), float64
        Expected counts [e⁻ per px].
    """
    validate_positive(thickness_A, name="thickness_A", unit="Å", allow_zero=True)
    cond = sim.conditions
    if thickness_A == 0:
        return np.zeros(sim.expected.shape)
    film = render_film(
        replace(cond.background, film_thickness_A=float(thickness_A)),
        shape=sim.expected.shape,
        pixel_size=sim.pixel_size,
        profile=cond.probe.image_profile(cond.column_sigma_A),
        carbon_cross_section_A2=1.0,
        rng=np.random.default_rng(rng),
    )
    scale = float(sim.metadata.get("cross_section_scale", 1.0))
    counts = cond.dose_e_per_A2 * sim.pixel_size**2 * film * cond.carbon_cross_section_A2 * scale
    return counts if cond.mode == "haadf" else -counts


def _within(xy: np.ndarray, shape: tuple[int, int], margin: float) -> np.ndarray:
    h, w = shape
    return (
        (xy[:, 0] > -margin)
        & (xy[:, 0] < w + margin)
        & (xy[:, 1] > -margin)
        & (xy[:, 1] < h + margin)
    )


def _max_distortion_px(cond: ImagingConditions) -> float:
    d = cond.distortion
    return (
        abs(d.drift_x_px)
        + abs(d.drift_y_px)
        + d.flyback_px
        + 4 * max(d.line_jitter_px, d.line_jitter_y_px)
    )


def _defect_dict(d: Defect) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": type(d).__name__.lower(), "element": d.element}
    if isinstance(d, Substitution):
        out["replacement"] = d.replacement
    out["density"] = float(d.density)
    out["sites"] = [list(s) for s in d.sites]
    out["count"] = d.count
    return out
