"""Which position to report: the Gaussian fit's on the raw image, the network's, or both.

``find`` starts every atom at the network's position (the probability-weighted centroid of
its peak; for an ensemble, the mean over the members) and fits a Gaussian to the raw image
around it (``refine_gaussian``: batched, neighbour-aware, noise-weighted).
``find(positions=…)`` (``atomlens find --positions``) says which is reported. This
benchmark scores the choices on the ensemble of ``benchmarks/elit_shift.py`` (4 members
trained on simulated graphene at one condition A, cached in ``benchmarks/.models/elit-A``)
under A and its ten shifted conditions, side by side in one run:

- **fit**: the fit's position;
- **network** (``find``'s default since 2026-11-28): the network's position (since
  2026-11-29, for a column whose disk the border cuts, the mean of the fit's and the
  centre the cut disk gives; before, the fit's, also for every column whose fitted disk
  crossed the border);
- **mean**: the mean of the two;
- **no fit** (``refine=False``): the network's position (for a cut column, its cut
  disk's centre), and no fit at all.

In all four a column is left out when its centre lies outside the image: where its
probability disk reaches the border, as the cut disk says (since 2026-11-29); elsewhere as
the fit says (in the first three).

Cells are F1 (0.5 Å match radius) and the RMSE of matched positions [pm] on ``--frames``
held-out frames per condition (elit_shift's test frames); then the RMSE of the atoms at
least 1.5 Å from the frame's border (where every column is whole), for fit and network.

Then the fit alone against a thin amorphous carbon film: simulated graphene (1e5 e⁻/Å²,
0.1 Å/px) under 0–3 Å of film, found from maps that mark the true columns (the simulation's
label disks, as a perfect network's would), the fit's RMSE beside the maps' centroids' and
the Cramér–Rao bound.

Then how much the positions move with the tiling (the network's see each tile's
group-normalisation statistics): a 512² px image at condition A found in one tile and in
tiles of 256 and 128 px, each atom's move [px] against the one-tile result.

Then, without labels, real images from ``../shared/data/real`` (skipped when absent) with
the bundled ``haadf-generic`` model: in a crystal each column sits at the midpoint of its
neighbours that lie opposite each other through it, so the RMS offset from those midpoints
(:func:`local_scatter`; slowly varying scan distortion and strain cancel in it) measures
how precisely each choice places the columns (lower is better). The columns at the edge
have no neighbours beyond them; for them, the offset from where the row running inwards
puts them (:func:`edge_scatter`).

    python benchmarks/refine_positions.py [--frames 10] [--real-only]

(``--real-only``: the film sweep and the real images, without the 11 conditions.)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

import elit_shift as shift  # benchmarks/ is on the path when this script runs
from atomlens.metrics import match_points, score_atoms
from atomlens.pipeline import find
from atomlens.simulate import simulate_image

CHOICES = {
    "fit": {"positions": "fit"},
    "network": {"positions": "network"},
    "mean": {"positions": "mean"},
    "no fit": {"refine": False},
}


def score(ens, sims: list, ps: float) -> dict[str, tuple[float, float, float]]:
    """F1, RMSE [pm] and the interior atoms' RMSE [pm] of every choice over ``sims``."""
    out = {}
    for name, opts in CHOICES.items():
        hits = n_pred = n_true = 0
        dist, inner = [], []
        for s in sims:
            truth = s.truth[["x_px", "y_px"]].to_numpy(float)
            pred = find(s.image, model=ens, pixel_size=ps, **opts).atoms
            xy = pred[["x_px", "y_px"]].to_numpy(float)
            m = match_points(xy, truth, radius=0.5 / ps)
            hits += len(m.pred_index)
            n_pred += len(xy)
            n_true += len(truth)
            dist.append(np.asarray(m.distance) * ps)
            # x and y squared errors of the pairs away from the border
            away = score_atoms(pred, s.truth, shape=s.image.shape, pixel_size=ps, margin_A=1.5)
            inner.append(np.asarray(away["sq_err_A2"]))
        rms = 100 * float(np.sqrt(np.mean(np.concatenate(dist) ** 2)))
        rms_inner = 100 * float(np.sqrt(2 * np.mean(np.concatenate(inner))))
        out[name] = (2 * hits / max(n_pred + n_true, 1), rms, rms_inner)
    return out


REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
# file, pixel size [Å/px] (None: the file's calibration), what it shows
REAL_IMAGES = [
    ("srtio3_atomap/SrTiO3_ADF.hspy", None, "SrTiO3 ADF (Atomap)"),
    ("atomsegnet/10_dso_8nm_none_none.png", 8 * 10 / 1024, "DyScO3 HAADF, ≈8 nm field"),
]


def local_scatter(atoms) -> tuple[float, int]:
    """How far each atom sits from the midpoints of its neighbour pairs that lie opposite
    each other through it (``r_k ≈ 2 r_i − r_j`` within 0.15 nearest-neighbour distances,
    ``j`` within 2.5 of them): RMS over atoms of the mean offset [pm], and how many atoms
    had such pairs. In a crystal the offset is zero; scan distortion and strain that vary
    slowly cancel in it, the position error of the three atoms does not."""
    from scipy.spatial import cKDTree

    xy = atoms[["x_A", "y_A"]].to_numpy(float)
    tree = cKDTree(xy)
    nn = float(np.median(tree.query(xy, k=2)[0][:, 1]))
    offsets = []
    for i, near in enumerate(tree.query_ball_point(xy, 2.5 * nn)):
        js = np.array([j for j in near if j != i])
        if not len(js):
            continue
        d, ks = tree.query(2 * xy[i] - xy[js])
        ok = d < 0.15 * nn
        if ok.sum() >= 2:
            offsets.append((xy[i] - 0.5 * (xy[js[ok]] + xy[ks[ok]])).mean(axis=0))
    return 100 * float(np.sqrt(np.mean(np.square(offsets)))), len(offsets)


def edge_scatter(
    atoms, shape: tuple[int, int], pixel_size: float, band_A: float = 1.0
) -> tuple[float, int]:
    """How far each atom within ``band_A`` of the image's edge sits from where the row of
    atoms running inwards from it puts it (``r_i ≈ 2 r_j − r_k`` with ``r_k ≈ 2 r_j − r_i``
    within 0.15 nearest-neighbour distances, ``j`` within 2.5 of them): RMS over those
    atoms of the mean offset [pm], and how many had such rows. The edge's columns have no
    neighbours beyond them, so :func:`local_scatter` leaves them out; this measures the
    ones the border cuts, with the error of two inner atoms added (4σ² + σ²)."""
    from scipy.spatial import cKDTree

    xy = atoms[["x_A", "y_A"]].to_numpy(float)
    px = atoms[["x_px", "y_px"]].to_numpy(float)
    h, w = shape
    edge = np.minimum.reduce(
        [px[:, 0] + 0.5, w - 0.5 - px[:, 0], px[:, 1] + 0.5, h - 0.5 - px[:, 1]]
    )
    tree = cKDTree(xy)
    nn = float(np.median(tree.query(xy, k=2)[0][:, 1]))
    offsets = []
    for i in np.flatnonzero(edge * pixel_size < band_A):
        js = np.array([j for j in tree.query_ball_point(xy[i], 2.5 * nn) if j != i])
        if not len(js):
            continue
        d, ks = tree.query(2 * xy[js] - xy[i])
        ok = d < 0.15 * nn
        if ok.any():
            offsets.append((xy[i] - (2 * xy[js[ok]] - xy[ks[ok]])).mean(axis=0))
    return 100 * float(np.sqrt(np.mean(np.square(offsets)))), len(offsets)


def film_sweep() -> None:
    """The fit's and the perfect maps' RMSE [pm] under thin films, with the CRLB."""
    from atomlens.locate import locate_atoms
    from atomlens.simulate import Background, ImagingConditions

    print("graphene, 1e5 e/Å², perfect maps, 3 images of 192² px per film: RMSE [pm]")
    print(f"{'film [Å]':>9s}{'fit':>9s}{'maps':>9s}{'CRLB':>9s}")
    for film in (0.0, 0.25, 0.5, 1.0, 3.0):
        sq: dict[str, list] = {"fit": [], "network": []}
        crlb = []
        for i in range(3):
            sim = simulate_image(
                "graphene",
                shape=192,
                pixel_size=0.1,
                rng=3 + i,
                conditions=ImagingConditions(dose_e_per_A2=1e5, background=Background(film)),
            )
            crlb.append(sim.crlb_A())
            for pos in sq:
                atoms = locate_atoms(
                    sim.masks,
                    sim.image,
                    pixel_size=0.1,
                    class_names=sim.class_names,
                    positions=pos,
                )
                r = score_atoms(atoms, sim.truth, shape=sim.image.shape, pixel_size=0.1)
                sq[pos].append(r["sq_err_A2"])
        rms = {k: 100 * np.sqrt(np.mean(np.concatenate(v))) for k, v in sq.items()}
        bound = 100 * np.sqrt(np.mean(np.concatenate(crlb) ** 2))
        print(f"{film:9.2f}{rms['fit']:9.2f}{rms['network']:9.2f}{bound:9.2f}", flush=True)


def tiling(ens) -> None:
    """Median and 99th percentile of each atom's move [px] between tilings."""
    sim = simulate_image(
        "graphene", shape=512, pixel_size=0.1, rng=77, conditions=shift.A, defects=shift.DEFECTS
    )
    print("tiling, 512² px at condition A: move against one tile [px], median / p99")
    for name in ("fit", "network"):
        found = {
            t: find(sim.image, model=ens, pixel_size=0.1, tile=t, positions=name).atoms
            for t in (512, 256, 128)
        }
        cells = []
        for t in (256, 128):
            xy = [found[k][["x_px", "y_px"]].to_numpy(float) for k in (512, t)]
            d = np.asarray(match_points(xy[0], xy[1], radius=3).distance)
            cells.append(f"tile {t}: {np.median(d):.3f} / {np.percentile(d, 99):.3f}")
        print(f"  {name:8s} " + "   ".join(cells), flush=True)


def real_images() -> None:
    """The local scatter of every choice on the real images."""
    from atomlens.io import read_image

    if not REAL.is_dir():
        print(f"real images: {REAL} not found; skipped")
        return
    print(
        "real images, bundled haadf-generic: RMS offset [pm] of each column from its"
        " opposite neighbours' midpoints (columns);\nedge: of each column within 1 Å of"
        " the edge from where its row inwards puts it (columns)"
    )
    print(f"{'image':30s}" + "".join(f"{c:>14s}" for c in CHOICES if c != "no fit"))
    for rel, ps, what in REAL_IMAGES:
        im = read_image(REAL / rel)
        data = np.asarray(im.data, float)
        if data.ndim == 3:  # RGB(A) PNG
            data = data[..., :3].mean(axis=-1)
        size = ps if ps is not None else float(im.pixel_size)
        cells, edge = [], []
        for name, opts in CHOICES.items():
            if name == "no fit":
                continue
            atoms = find(data, model="haadf-generic", pixel_size=size, **opts).atoms
            rms, n = local_scatter(atoms)
            cells.append(f"{rms:9.2f} ({n})")
            rms, n = edge_scatter(atoms, data.shape, size)
            edge.append(f"{rms:9.2f} ({n})")
        print(f"{what:30s}" + "".join(f"{c:>14s}" for c in cells), flush=True)
        print(f"{'  edge':30s}" + "".join(f"{c:>14s}" for c in edge), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=10, help="test frames per condition")
    ap.add_argument(
        "--real-only", action="store_true", help="only the film sweep and the real images"
    )
    args = ap.parse_args()
    torch.set_num_threads(2)
    t0 = time.time()
    if args.real_only:
        film_sweep()
        real_images()
        print(f"total {time.time() - t0:.0f} s")
        return
    ens = shift.train_base(shift.DEFAULT, 4, 300)
    conditions = list(shift.SHIFTS.items()) + list(shift.HARSH.items())[1:]
    print(
        f"ensemble {shift.DEFAULT.name} (4 members, simulated graphene at condition A); "
        f"{args.frames} test frames of 256² px per condition"
    )
    print("cells: F1/RMSE [pm]; interior: RMSE [pm] of atoms ≥ 1.5 Å from the border")
    head = "".join(f"{c:>15s}" for c in CHOICES)
    print(f"{'condition':30s}{head}   interior fit / network   network − fit: F1, RMSE")
    totals: dict[str, list] = {c: [] for c in CHOICES}
    for name, (cond, ps) in conditions:
        k = list(shift.SHIFTS if name in shift.SHIFTS else shift.HARSH).index(name)
        sims = [
            simulate_image(
                "graphene",
                shape=256,
                pixel_size=ps,
                rng=1000 * k + 500 + i,
                conditions=cond,
                defects=shift.DEFECTS,
            )
            for i in range(args.frames)
        ]
        res = score(ens, sims, ps)
        for c, v in res.items():
            totals[c].append(v)
        fit, net = res["fit"], res["network"]
        print(
            f"{name:30s}"
            + "".join(f"  {f:.4f}/{r:5.1f}" for f, r, _ in res.values())
            + f"   {fit[2]:11.1f} / {net[2]:5.1f}"
            + f"   {net[0] - fit[0]:+.4f}, ×{net[1] / fit[1]:.2f}",
            flush=True,
        )
    print(
        f"{'mean over the conditions':30s}"
        + "".join(
            f"  {np.mean([v[0] for v in t]):.4f}/{np.mean([v[1] for v in t]):5.1f}"
            for t in totals.values()
        )
    )
    tiling(ens)
    film_sweep()
    real_images()
    print(f"total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
