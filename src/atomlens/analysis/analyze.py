"""``atomlens analyze``: the analysis chain on an atoms table, written as tables, maps and
an HTML section."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from atomlens._shared.atomic import atomic_directory
from atomlens.analysis.ase_bridge import write_structure
from atomlens.analysis.descriptors import (
    atom_patches,
    cluster_descriptors,
    radial_profiles,
    reduce_patches,
)
from atomlens.analysis.graph import bond_angles, bond_table, coordination, neighbour_graph
from atomlens.analysis.lattice import LatticeFit, fit_lattice, homogeneous_strain, local_strain
from atomlens.analysis.point_defects import point_defects
from atomlens.analysis.rings import find_rings
from atomlens.analysis.tracking import track_atoms
from atomlens.io import read
from atomlens.report.analysis_figures import save_clusters_png, save_strain_map_png
from atomlens.report.html import render_analysis_html
from atomlens.simulate import load_material

__all__ = [
    "analyze",
    "analyze_files",
    "choose_reference",
    "frame_statistics",
    "material_reference",
    "reference_lattices",
]

logger = logging.getLogger(__name__)


def _reduced(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Lattice vectors in :func:`fit_lattice`'s convention: ``a1`` shortest, acute angle,
    ``a1 × a2 > 0`` (Lagrange–Gauss reduction), as columns."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    for _ in range(10):
        if np.linalg.norm(b) < np.linalg.norm(a):
            a, b = b, a
        k = round(float(a @ b / (a @ a)))
        if k == 0:
            break
        b = b - k * a
    if a[0] * b[1] - a[1] * b[0] < 0:
        b = -b
    if a @ b < -1e-9:  # obtuse: the other shortest vector gives the acute angle
        b = a + b
    return np.column_stack([a, b])


def material_reference(material: str, /, zone_axis: Sequence[int] | None = None) -> np.ndarray:
    """The reduced lattice vectors (columns, Å) of a material's projected cell: ``a1``
    shortest, acute angle, ``a1 × a2 > 0`` — the convention of :func:`fit_lattice`.

    Parameters
    ----------
    material : str
        A material name or structure file (:func:`atomlens.simulate.load_material`).
    zone_axis : sequence of 3 int, optional
        The zone axis [u v w] the image looks down; default: the material's default
        (graphene, hBN, MoS₂ and WS₂ [001], SrTiO₃ [001]).
    """
    cell = load_material(material, zone_axis=zone_axis)
    return _reduced(cell.a, cell.b)


def reference_lattices(
    material: str, /, zone_axis: Sequence[int] | None = None
) -> list[tuple[str, np.ndarray]]:
    """The lattices atoms of ``material`` down ``zone_axis`` can form: the projected cell's,
    and the finer ones of two or more of its column sites taken as one (a model with one
    class finds SrO and Ti columns alike: down SrTiO₃ [110] they form a 2.76 × 1.95 Å
    lattice, not the cell's 2.76 × 3.905 Å).

    Returns
    -------
    list of (str, ndarray of shape (2, 2))
        A description (``"srtio3[110]"``, ``"srtio3[110], columns SrO+Ti as one"``) and
        the reduced lattice vectors as columns [Å], the cell's first.
    """
    cell = load_material(material, zone_axis=zone_axis)
    a, b = np.asarray(cell.a, float), np.asarray(cell.b, float)
    out = [(cell.name, _reduced(a, b))]
    labels = cell.column_labels()
    pos = np.asarray(cell.positions, float)
    picks: list[tuple[int, ...]] = [(i, j) for i in range(len(pos)) for j in range(i + 1, len(pos))]
    if len(pos) > 2:
        picks.append(tuple(range(len(pos))))

    def key(m: np.ndarray) -> tuple[float, float, float]:  # equal for equal lattices
        return tuple(np.round([m[:, 0] @ m[:, 0], m[:, 1] @ m[:, 1], abs(m[:, 0] @ m[:, 1])], 3))

    seen = {key(out[0][1])}
    n = np.arange(-3, 4)
    for pick in picks:
        gens = np.array([a, b] + [pos[k] - pos[pick[0]] for k in pick[1:]])
        grid = np.stack(np.meshgrid(*([n] * len(gens)), indexing="ij"), -1).reshape(-1, len(gens))
        pts = grid @ gens
        pts = pts[np.linalg.norm(pts, axis=1) > 1e-6]
        pts = pts[np.argsort(np.linalg.norm(pts, axis=1), kind="stable")]
        v1 = pts[0]  # in 2-D the two shortest independent vectors are a basis
        cross = np.abs(v1[0] * pts[:, 1] - v1[1] * pts[:, 0])
        v2 = pts[np.argmax(cross > 1e-6 * np.linalg.norm(v1) * np.linalg.norm(pts, axis=1))]
        m = _reduced(v1, v2)
        if key(m) in seen:  # the cell's lattice, or one already listed
            continue
        seen.add(key(m))
        names = "+".join(labels[k] for k in pick)
        out.append((f"{cell.name}, columns {names} as one", m))
    return out


#: A fitted lattice this far (largest |ε| component) from the reference is not a strained
#: copy of it: another zone axis, another material or a wrong pixel size.
MISMATCH = 0.10


def _largest_strain(fit: LatticeFit, reference: np.ndarray) -> float:
    h = homogeneous_strain(fit, reference)
    return max(abs(h["exx"]), abs(h["eyy"]), abs(h["exy"]))


def choose_reference(
    fit: LatticeFit, material: str, /, zone_axis: Sequence[int] | None = None
) -> tuple[str, np.ndarray, str | None]:
    """The reference lattice for strain: ``material``'s down ``zone_axis``, or one of its
    finer lattices (:func:`reference_lattices`) when the atoms form that one.

    Returns
    -------
    (str, ndarray, str or None)
        The reference's description, its vectors (columns, Å), and a warning when even the
        best of them is more than :data:`MISMATCH` off the fitted lattice (naming the
        low-index zone axis that fits, if one does).
    """
    cands = reference_lattices(material, zone_axis)
    scored = [(_largest_strain(fit, m), name, m) for name, m in cands]
    best = min(scored, key=lambda t: t[0])
    if best[0] <= MISMATCH:
        return best[1], best[2], None
    others: list[tuple[float, tuple[int, int, int]]] = []
    for uvw in ((0, 0, 1), (1, 0, 0), (1, 1, 0), (1, 1, 1)):
        try:
            lattices = reference_lattices(material, uvw)
        except ValueError:
            continue
        others += [(_largest_strain(fit, m), uvw) for _, m in lattices]
    fits, uvw = min(others, key=lambda t: t[0]) if others else (float("inf"), None)
    hint = (
        f"; [{' '.join(map(str, uvw))}] fits within {fits:.1%}: pass "
        f"`zone_axis={','.join(map(str, uvw))}`"
        if uvw is not None and fits <= MISMATCH
        else "; no low-index zone axis of it fits either: is it this material, and the pixel "
        "size right?"
    )
    warning = (
        f"the fitted lattice is {scored[0][0]:.0%} off {cands[0][0]}'s lattice, too much for "
        f"strain: another zone axis, material or pixel size{hint}"
    )
    return scored[0][1], scored[0][2], warning


def frame_statistics(
    atoms: pd.DataFrame,
    /,
    *,
    cutoff_A: float | None = None,
    species: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Per-frame figures of a stack's atoms table, which need no linking across frames.

    Parameters
    ----------
    atoms : pandas.DataFrame
        Atoms table with ``frame, x_A, y_A, class``.
    cutoff_A, species
        As for :func:`atomlens.analysis.neighbour_graph`.

    Returns
    -------
    pandas.DataFrame
        One row per frame: ``frame``, ``atoms``, one ``n_<class>`` column per class,
        ``bonds``, ``median_bond_A`` and ``mean_coordination``.
    """
    rows = []
    classes = sorted(atoms["class"].astype(str).unique())
    for f, one in atoms.groupby("frame", sort=True):
        one = one.reset_index(drop=True)
        g = neighbour_graph(one, cutoff_A=cutoff_A, species=species)
        bonds = bond_table(g)
        counts = one["class"].astype(str).value_counts()
        rows.append(
            {
                "frame": int(f),
                "atoms": len(one),
                **{f"n_{c}": int(counts.get(c, 0)) for c in classes},
                "bonds": len(bonds),
                "median_bond_A": float(bonds["length_A"].median()) if len(bonds) else np.nan,
                "mean_coordination": 2 * len(bonds) / max(len(one), 1),
            }
        )
    return pd.DataFrame(rows)


def analyze(
    atoms: pd.DataFrame,
    /,
    *,
    out: str | PathLike[str],
    material: str | None = None,
    zone_axis: Sequence[int] | None = None,
    species: Mapping[str, str] | None = None,
    cutoff_A: float | None = None,
    image: np.ndarray | None = None,
    pixel_size: float | None = None,
    patch_A: float | None = None,
    n_clusters: int | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Bonds, rings, lattice, strain and (for stacks) tracks of an atoms table.

    Writes into ``out`` (atomically): ``bonds.csv``, ``angles.csv``, ``rings.csv``,
    ``atoms.csv`` (input plus ``coordination`` and, for a crystal, ``sublattice`` and
    displacements), ``defects.csv`` (vacancies, substitutions and stray atoms against the
    fitted lattice), ``strain.csv`` and strain/rotation maps (PNG) when a lattice is found
    (relative to ``material``'s lattice when given, else to the mean lattice),
    for stacks ``frames.csv`` (:func:`frame_statistics`) and, with trackpy installed,
    ``tracks.csv``/``drift.csv``/``transitions.csv`` (without it a warning), ``structure.extxyz``
    (ASE), ``summary.json`` and ``analysis.html`` (a self-contained section). With the
    ``image`` the atoms were found in, also local descriptors: ``descriptors.npz``
    (``patches`` (n, s, s) sampled at each atom, rotation-invariant ``radial`` profiles,
    ``pca`` features, the atoms' ``index`` into ``atoms.csv`` and ``x_A``/``y_A``; the input
    of later VAE work) and Gaussian-mixture clusters of the radial profiles (number by BIC
    unless ``n_clusters``) as a ``cluster`` column and ``clusters.png``.

    Parameters
    ----------
    atoms : pandas.DataFrame
        An atoms table (``x_A, y_A, class``; ``frame`` for stacks: frame 0 is analysed and
        all frames are tracked).
    out : path
        Output directory.
    material : str, optional
        Reference material for absolute strain (``graphene``, ``srtio3``, …).
    zone_axis : sequence of 3 int, optional
        The zone axis of the image, for ``material``'s reference lattice (default: the
        material's, e.g. [001]). A fitted lattice more than 10 % off the reference gets a
        warning that names the low-index zone axis that fits best.
    species : mapping, optional
        Class → element, for classes that are not element symbols (bond cut-offs, ASE).
    cutoff_A : float, optional
        One bond cut-off for all pairs [Å] instead of covalent radii.
    image : ndarray of shape (H, W), optional
        The image (frame 0 for stacks) the atoms were found in, for local descriptors.
    pixel_size : float, optional
        Its pixel size [Å/px]; default: ``x_A / x_px`` of the table.
    patch_A : float, optional
        Side of the descriptor patches [Å]; default the median bond length (a patch the size
        of one column, which the rotation-invariant profiles describe best).
    n_clusters : int, optional
        Clusters of the descriptors; chosen by BIC (1–6) when not given.
    overwrite : bool
        Replace ``out``.

    Returns
    -------
    dict
        The summary written to the HTML section (counts, ring statistics, strain).
    """

    if zone_axis is not None and material is None:
        raise ValueError("`zone_axis` sets the reference lattice of `material`: give both.")
    need = {"x_A", "y_A", "class"} - set(atoms.columns)
    if need:
        raise ValueError(f"the atoms table lacks the columns {sorted(need)}.")
    stack = "frame" in atoms and atoms["frame"].nunique() > 1
    one = atoms[atoms["frame"] == atoms["frame"].min()] if "frame" in atoms else atoms
    one = one.reset_index(drop=True)
    summary: dict[str, Any] = {"atoms": len(one)}
    figures: dict[str, bytes] = {}  # name → PNG, inlined in analysis.html in this order
    with atomic_directory(Path(out), overwrite=overwrite) as tmp:
        g = neighbour_graph(one, cutoff_A=cutoff_A, species=species)
        bonds = bond_table(g)
        bonds.to_csv(tmp / "bonds.csv", index=False, float_format="%.6g")
        bond_angles(g).to_csv(tmp / "angles.csv", index=False, float_format="%.6g")
        table = one.copy()
        table["coordination"] = coordination(g).reindex(range(len(one)), fill_value=0).to_numpy()
        rings = find_rings(g, max_size=12)
        rings.rings.assign(atoms=rings.rings["atoms"].map(lambda a: " ".join(map(str, a)))).to_csv(
            tmp / "rings.csv", index=False, float_format="%.6g"
        )
        summary.update(
            bonds=len(bonds),
            median_bond_A=float(bonds["length_A"].median()) if len(bonds) else float("nan"),
            rings=rings.counts,
            coordination=table["coordination"].value_counts().sort_index().to_dict(),
        )
        try:
            fit = fit_lattice(one)
        except ValueError as exc:
            logger.info("no lattice fitted: %s", exc)
            summary["lattice"] = f"none ({exc})"
        else:
            ref, ref_name, ref_warning = None, None, None
            if material:
                ref_name, ref, ref_warning = choose_reference(fit, material, zone_axis)
            summary["lattice"] = {
                "a1_A": fit.a1.round(4).tolist(),
                "a2_A": fit.a2.round(4).tolist(),
                "sublattices": len(fit.origins),
                "rms_displacement_pm": round(fit.rms_displacement_A * 100, 2),
            }
            if ref is not None and material is not None:
                h = homogeneous_strain(fit, ref)
                summary["strain_vs_" + material] = {k: round(v, 5) for k, v in h.items()}
                summary["reference"] = ref_name
                if ref_warning is not None:
                    summary["reference_warning"] = ref_warning
                    logger.warning("%s", ref_warning)
            for c in ("sublattice", "dx_A", "dy_A"):
                table[c] = fit.atoms[c].to_numpy()
            defects = point_defects(fit)
            defects.to_csv(tmp / "defects.csv", index=False, float_format="%.6g")
            summary["point_defects"] = defects["kind"].value_counts().to_dict()
            strain = local_strain(fit, reference=ref)
            strain.to_csv(tmp / "strain.csv", index=False, float_format="%.6g")
            label = f"vs {material}" if material else "vs the mean lattice"
            for col, cmap in (
                ("exx", "RdBu_r"),
                ("eyy", "RdBu_r"),
                ("exy", "RdBu_r"),
                ("rotation_deg", "PuOr"),
            ):
                save_strain_map_png(
                    tmp / f"{col}.png",
                    strain,
                    values=strain[col],
                    cmap=cmap,
                    title=f"{col} ({label})",
                )
                figures[col] = (tmp / f"{col}.png").read_bytes()
        if image is not None:
            side = patch_A or (summary["median_bond_A"] if len(bonds) else 1.5)
            summary["descriptors"] = _descriptors(
                table, image, tmp, pixel_size=pixel_size, patch_A=side, n_clusters=n_clusters
            )
            if "cluster" in table:
                figures["clusters"] = (tmp / "clusters.png").read_bytes()
        table.to_csv(tmp / "atoms.csv", index=False, float_format="%.6g")
        try:
            write_structure(one, tmp / "structure.extxyz", species=species)
        except ValueError as exc:
            logger.warning("structure.extxyz not written: %s (map classes with `species`)", exc)
        if stack:
            per_frame = frame_statistics(atoms, cutoff_A=cutoff_A, species=species)
            per_frame.to_csv(tmp / "frames.csv", index=False, float_format="%.6g")
            summary["frames"] = len(per_frame)
            nn = float(np.median(bonds["length_A"])) if len(bonds) else 1.0
            try:
                tr = track_atoms(atoms, search_range_A=0.45 * nn, memory=1)
            except ImportError as exc:  # the per-frame figures do not need it
                logger.warning("tracks.csv, drift.csv and transitions.csv not written: %s", exc)
                summary["tracks"] = f"not linked ({exc})"
            else:
                tr.atoms.to_csv(tmp / "tracks.csv", index=False, float_format="%.6g")
                tr.drift.to_csv(tmp / "drift.csv", index=False, float_format="%.6g")
                tr.transitions.to_csv(tmp / "transitions.csv", index=False, float_format="%.6g")
                summary.update(
                    tracks=int(tr.atoms["track"].nunique()), transitions=len(tr.transitions)
                )
        (tmp / "summary.json").write_text(
            json.dumps(summary, indent=1, default=str) + "\n", encoding="utf-8"
        )
        (tmp / "analysis.html").write_text(
            render_analysis_html(summary, figures=figures), encoding="utf-8"
        )
    return summary


def analyze_files(
    table: str | PathLike[str],
    /,
    *,
    out: str | PathLike[str],
    image: str | PathLike[str] | None = None,
    pixel_size: float | None = None,
    material: str | None = None,
    zone_axis: Sequence[int] | None = None,
    species: Mapping[str, str] | None = None,
    cutoff_A: float | None = None,
    patch_A: float | None = None,
    n_clusters: int | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """:func:`analyze` on files: what ``atomlens analyze`` runs.

    Parameters
    ----------
    table : path
        ``atoms.csv`` or ``atoms.parquet`` of :func:`atomlens.pipeline.find_files`.
    out : path
        Output directory.
    image : path, optional
        The image file the atoms were found in (its first frame), for local descriptors.
    pixel_size : float, optional
        Pixel size of ``image`` [Å/px]; default: the file's calibration, else the table's.
    material, zone_axis, species, cutoff_A, patch_A, n_clusters, overwrite
        As for :func:`analyze`.

    Returns
    -------
    dict
        The summary of :func:`analyze`.

    Raises
    ------
    FileNotFoundError
        ``table`` or ``image`` does not exist.
    ValueError
        For the reasons of :func:`atomlens.io.read` and :func:`analyze`.
    """
    path = Path(table)
    if not path.is_file():
        raise FileNotFoundError(f"{table}: no such file; pass the atoms.csv of a find run.")
    atoms = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    img = None
    if image is not None:
        im = read(image, pixel_size=pixel_size)
        img = im.frame(0)
        pixel_size = pixel_size or im.pixel_size
    return analyze(
        atoms,
        out=out,
        material=material,
        zone_axis=zone_axis,
        species=species,
        cutoff_A=cutoff_A,
        image=img,
        pixel_size=pixel_size,
        patch_A=patch_A,
        n_clusters=n_clusters,
        overwrite=overwrite,
    )


def _descriptors(
    table: pd.DataFrame,
    image: np.ndarray,
    tmp: Path,
    *,
    pixel_size: float | None,
    patch_A: float,
    n_clusters: int | None,
) -> dict[str, Any]:
    """Patches, radial profiles, PCA features and GMM clusters; adds ``cluster`` to
    ``table`` (−1 for atoms within half a patch of the border) and writes
    ``descriptors.npz`` and ``clusters.png``."""

    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2:
        raise ValueError(f"the image for descriptors must be 2-D (one frame), got {img.shape}.")
    if pixel_size is None:
        ok = table["x_px"].abs() > 1e-9
        if not ok.any():
            raise ValueError("give the pixel size of the image (`pixel_size`).")
        pixel_size = float(np.median(table.loc[ok, "x_A"] / table.loc[ok, "x_px"]))
    h, w = img.shape
    half = patch_A / 2 / pixel_size
    x, y = table["x_px"].to_numpy(float), table["y_px"].to_numpy(float)
    if x.max(initial=0) > w + 1 or y.max(initial=0) > h + 1:
        raise ValueError(
            f"the atoms reach ({x.max():.0f}, {y.max():.0f}) px, beyond the {w}×{h} px image; "
            "give the image the atoms were found in."
        )
    inside = np.flatnonzero((x >= half) & (x <= w - 1 - half) & (y >= half) & (y <= h - 1 - half))
    if len(inside) < 3:
        raise ValueError("fewer than 3 atoms lie a half patch away from the border.")
    sub = table.iloc[inside]
    patches = atom_patches(img, sub, pixel_size=pixel_size, size_A=patch_A)
    radial = radial_profiles(patches)
    pca = reduce_patches(patches, method="pca")
    cl = cluster_descriptors(radial, n_clusters=n_clusters)
    labels = np.full(len(table), -1, int)
    labels[inside] = cl.labels
    table["cluster"] = labels
    np.savez_compressed(
        tmp / "descriptors.npz",
        index=inside,
        x_A=sub["x_A"].to_numpy(float),
        y_A=sub["y_A"].to_numpy(float),
        patches=patches.astype(np.float32),
        radial=radial.astype(np.float32),
        pca=pca.astype(np.float32),
        cluster=cl.labels,
        patch_A=patch_A,
        pixel_size=pixel_size,
    )
    save_clusters_png(
        tmp / "clusters.png",
        sub,
        labels=cl.labels,
        title=f"{cl.n_clusters} descriptor clusters (radial profiles, GMM by BIC)",
    )
    return {
        "atoms": int(len(inside)),
        "clusters": int(cl.n_clusters),
        "sizes": np.bincount(cl.labels).tolist(),
        "patch_A": patch_A,
    }
