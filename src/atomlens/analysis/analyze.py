"""``atomlens analyze``: the analysis chain on an atoms table, written as tables, maps and
an HTML section."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
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
from atomlens.analysis.lattice import fit_lattice, homogeneous_strain, local_strain
from atomlens.analysis.point_defects import point_defects
from atomlens.analysis.rings import find_rings
from atomlens.analysis.tracking import track_atoms
from atomlens.io import read
from atomlens.report.analysis_figures import save_clusters_png, save_strain_map_png
from atomlens.report.html import render_analysis_html
from atomlens.simulate import load_material

__all__ = ["analyze", "analyze_files", "material_reference"]

logger = logging.getLogger(__name__)


def material_reference(material: str, /) -> np.ndarray:
    """The reduced lattice vectors (columns, Å) of a material's projected cell: ``a1``
    shortest, acute angle, ``a1 × a2 > 0`` — the convention of :func:`fit_lattice`."""

    cell = load_material(material)
    a, b = np.asarray(cell.a, float), np.asarray(cell.b, float)
    for _ in range(10):  # Lagrange–Gauss reduction
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


def analyze(
    atoms: pd.DataFrame,
    /,
    *,
    out: str | PathLike[str],
    material: str | None = None,
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
    ``tracks.csv``/``drift.csv``/``transitions.csv`` for stacks, ``structure.extxyz``
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
            ref = material_reference(material) if material else None
            summary["lattice"] = {
                "a1_A": fit.a1.round(4).tolist(),
                "a2_A": fit.a2.round(4).tolist(),
                "sublattices": len(fit.origins),
                "rms_displacement_pm": round(fit.rms_displacement_A * 100, 2),
            }
            if ref is not None:
                summary["strain_vs_" + material] = {
                    k: round(v, 5) for k, v in homogeneous_strain(fit, ref).items()
                }
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
            nn = float(np.median(bonds["length_A"])) if len(bonds) else 1.0
            tr = track_atoms(atoms, search_range_A=0.45 * nn, memory=1)
            tr.atoms.to_csv(tmp / "tracks.csv", index=False, float_format="%.6g")
            tr.drift.to_csv(tmp / "drift.csv", index=False, float_format="%.6g")
            tr.transitions.to_csv(tmp / "transitions.csv", index=False, float_format="%.6g")
            summary.update(tracks=int(tr.atoms["track"].nunique()), transitions=len(tr.transitions))
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
    material, species, cutoff_A, patch_A, n_clusters, overwrite
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
