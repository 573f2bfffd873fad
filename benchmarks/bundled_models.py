"""How the bundled models do on images they were not trained for.

For each bundled model, on held-out simulated images (seeds never used in training):

- its own material at doses 1e3–1e6 e⁻/Å² (the validation table of its model card);
- other materials (hBN, WS2, MoS2, SrTiO3 [001] and [110]), marked when the model was not
  trained on them: where it fails, and how;
- samplings 0.7× and 1.3× the nominal 0.1 Å/px, side by side: told the nominal pixel size
  (a wrong calibration), told the true one, and with the pixel size estimated from the
  lattice (``atomlens find`` without ``--pixel-size`` on an uncalibrated file).

F1 at a 0.5 Å match radius (1 Å border excluded) and RMSE of matched atoms [pm]; beside it,
F1 over the columns HAADF shows (:func:`atomlens.metrics.shown_columns`: SrTiO3's pure O and
WS2's S columns do not), where an atom on a column it does not show counts neither way.
The images are HAADF; a bright-field model (``abf-any``) is told so (``contrast="bright"``),
as its warning tells a user: its own figures are ``generic_models.py``'s bright-field ones.

The images come from seeds 90 000 + i: the model cards report them, and border and
position rules were checked on them while they were developed. ``--frozen`` draws them
from ``FROZEN_SEED`` + i instead, a set kept for reporting (runs logged in
``benchmarks/FROZEN.md``).

    python benchmarks/bundled_models.py [--images N] [--only NAME|DIR] [--frozen]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from atomlens.bundled import bundled_models
from atomlens.ensemble import Ensemble
from atomlens.fourier import estimate_for_model
from atomlens.inference import PRECISIONS, inference_precision
from atomlens.metrics import score_atoms, shown_columns
from atomlens.pipeline import find
from atomlens.simulate import (
    AberratedProbe,
    Background,
    ImagingConditions,
    Substitution,
    simulate_image,
)


def run(
    ens: Ensemble,
    material: str,
    *,
    ps: float,
    told: float | None,
    dose: float,
    seeds,
    zone_axis=None,
    defects=(),
    precision: str = "auto",
) -> tuple[float, float, float, float]:
    tp = fp = fn = tp_s = fp_s = fn_s = 0
    sq = []
    used = []
    for s in seeds:
        cond = ImagingConditions(
            dose_e_per_A2=dose, probe=AberratedProbe(defocus_A=5.0), background=Background(1.0)
        )
        kw = {"zone_axis": zone_axis} if zone_axis else {}
        sim = simulate_image(
            material, shape=384, pixel_size=ps, rng=s, conditions=cond, defects=list(defects), **kw
        )
        p = told if told is not None else estimate_for_model(sim.image, ens.config).pixel_size
        used.append(p)
        # the images are HAADF: a bright-field model is told so (find warns and reads them
        # as dark otherwise, as such a model's own images would be)
        contrast = "bright" if ens.config.contrast == "bf" else "auto"
        atoms = find(
            sim.image, model=ens, pixel_size=p, precision=precision, contrast=contrast
        ).atoms
        # score in the true frame: positions in px do not depend on the pixel size told
        atoms = atoms.assign(x_A=atoms["x_px"] * ps, y_A=atoms["y_px"] * ps)
        r = score_atoms(atoms, sim.truth, shape=sim.image.shape, pixel_size=ps)
        tp, fp, fn = tp + r["tp"], fp + r["fp"], fn + r["fn"]
        sq.extend(r["sq_err_A2"])
        # and over the columns HAADF shows (SrTiO3's O, WS2's S do not)
        r = score_atoms(
            atoms,
            sim.truth,
            shape=sim.image.shape,
            pixel_size=ps,
            ignore=~shown_columns(sim.truth),
        )
        tp_s, fp_s, fn_s = tp_s + r["tp"], fp_s + r["fp"], fn_s + r["fn"]
    f1 = 2 * tp / max(2 * tp + fp + fn, 1)
    f1_shown = 2 * tp_s / max(2 * tp_s + fp_s + fn_s, 1)
    rmse = float(np.sqrt(np.mean(sq)) * 100) if sq else float("nan")
    return f1, rmse, float(np.mean(used)), f1_shown


#: first seed of the frozen images (``--frozen``): no rule or setting was tuned on them
FROZEN_SEED = 970_000

CASES = (("hbn", None), ("ws2", None), ("mos2", None), ("srtio3", None), ("srtio3", (1, 1, 0)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=3, help="images per row")
    ap.add_argument("--only", help="one bundled model by name, or a model directory")
    ap.add_argument(
        "--frozen", action="store_true", help=f"the frozen images (seeds {FROZEN_SEED} + i)"
    )
    ap.add_argument(
        "--precision",
        default="auto",
        choices=PRECISIONS,
        help="the networks' arithmetic (find's precision); auto: bfloat16 on AMX CPUs",
    )
    args = ap.parse_args()
    first = FROZEN_SEED if args.frozen else 90_000
    prec = args.precision
    seeds = range(first, first + args.images)
    models = bundled_models()
    if args.only and args.only not in models:  # a model directory not installed (yet)
        ens = Ensemble.load(args.only)
        models = {
            args.only: {
                "members": len(ens),
                "pixel_size_A": ens.config.pixel_size_A,
                "classes": ens.config.class_names,
            }
        }
    for name, info in models.items():
        if args.only and name != args.only:
            continue
        t0 = time.perf_counter()
        ens = Ensemble.load(name)
        print(
            f"\n{name}: {info['members']} members, {info['pixel_size_A']} Å/px, "
            f"classes {info['classes']}; {args.images} images of 384² px per row, seeds "
            f"{first}+"
            + (" (frozen)" if args.frozen else "")
            + f"; precision {inference_precision(args.precision)}"
        )
        print(f"{'case':44} {'F1':>7} {'RMSE pm':>8} {'F1 over the columns HAADF shows':>33}")
        mat = (ens.config.provenance.get("materials") or ["graphene"])[0]
        si = [Substitution("C", "Si", density=0.01)] if mat == "graphene" else []
        for dose in (1e3, 1e4, 1e5, 1e6):
            f1, rmse, _, f1s = run(
                ens, mat, ps=0.1, told=0.1, dose=dose, seeds=seeds, defects=si, precision=prec
            )
            print(f"{mat + f' at {dose:.0e} e/Å², 0.1 Å/px':44} {f1:7.4f} {rmse:8.2f} {f1s:33.4f}")
        trained = set(ens.config.provenance.get("materials") or [])
        for other, za in CASES:
            if other == mat and za is None:
                continue
            f1, rmse, _, f1s = run(
                ens, other, ps=0.1, told=0.1, dose=1e5, seeds=seeds, zone_axis=za, precision=prec
            )
            seen = (other if za is None else f"{other}[110]") in trained
            label = f"{other}{' [110]' if za else ''} at 1e5 e/Å²" + (
                "" if seen else " (not trained on)"
            )
            print(f"{label:44} {f1:7.4f} {rmse:8.2f} {f1s:33.4f}")
        print(
            f"\n{'true sampling':14} {'told 0.1 Å/px':>22} {'told the truth':>22} "
            f"{'estimated from lattice':>32}"
        )
        for factor in (0.7, 1.3):
            ps = 0.1 * factor
            rows = []
            for t in (0.1, ps, None):
                try:
                    kw = {"seeds": seeds, "defects": si, "precision": prec}
                    rows.append(run(ens, mat, ps=ps, told=t, dose=1e5, **kw))
                except ValueError:  # a model of several materials does not guess the scale
                    rows.append((float("nan"), float("nan"), float("nan"), float("nan")))
            cells = [
                f"F1 {f:.4f} RMSE {r:6.2f}" if f == f else "refused (no scale)"
                for f, r, _, _ in rows
            ]
            print(
                f"{ps:.3f} Å/px    {cells[0]:>22} {cells[1]:>22} {cells[2]:>22} "
                f"(est. {rows[2][2]:.4f})"
            )
        print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
