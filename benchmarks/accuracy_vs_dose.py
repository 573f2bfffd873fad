"""Accuracy against dose: atomlens vs a classical (Atomap-style) baseline, with the CRLB.

For graphene with Si dopants and SrTiO3 [001], over a dose sweep from "atoms barely
visible" to "clean", prints per dose: F1, localisation RMSE [pm] (per axis), the
Cramér–Rao bound [pm] and RMSE/CRLB, for atomlens (``positions="auto"``, the default: the
fit's position where its model holds, the network's elsewhere) and the baseline side by
side, and atomlens's RMSE with its atoms at the network's and at the Gaussian fit's
positions (``positions="network"`` / ``"fit"``).

Baseline (what Atomap does): Gaussian smoothing, scikit-image ``peak_local_max`` with a
minimum separation and an Otsu threshold, then an independent least-squares 2D Gaussian fit
per atom on a disk of half the nearest-neighbour distance (neighbours ignored, unweighted).

With ``--atomap`` (``pip install atomap``, an optional bench dependency: it brings
HyperSpy) Atomap itself runs beside it, as its documentation does it:
``get_atom_positions`` (PCA denoising, background subtraction, separation = the model's
minimum separation, Atomap's default ``threshold_rel``), centre-of-mass refinement, then
its 2D Gaussian refinement (about 10 s per 256² graphene image).

Test images: 0.1 Å/px, 256² px, Gaussian probe 0.8 Å FWHM, 1 Å amorphous carbon film,
seeds never used in training. Models are trained by this script on first use (CPU: about
18 min each at the default budget on 2 cores), calibrated as ``atomlens train`` calibrates
(under a minute) and cached in ``benchmarks/.models/`` (git-ignored).
Needs ``pip install -e '.[bench]'`` (scikit-image, for the baseline).

    python benchmarks/accuracy_vs_dose.py [--quick] [--images N] [--steps N] [--retrain]
        [--atomap] [--vs-float32]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import ndimage
from scipy.spatial import cKDTree
from skimage.feature import peak_local_max
from skimage.filters import threshold_otsu

from atomlens import find_atoms
from atomlens.ensemble import Model
from atomlens.inference import inference_precision
from atomlens.locate import refine_gaussian
from atomlens.metrics import score_atoms
from atomlens.simulate import (
    Background,
    GaussianProbe,
    ImagingConditions,
    Substitution,
    Vacancy,
    simulate_image,
)
from atomlens.train import TrainConfig
from atomlens.train.ensemble import calibrate_model
from atomlens.train.recipe import train_model

HERE = Path(__file__).parent
CASES = {
    "graphene": {
        "material": "graphene",
        "model": "graphene",
        "film_A": 0.0,
        "defects": [Substitution("C", "Si", 0.01)],
        "train_defects": [Substitution("C", "Si", 0.02), Vacancy("C", 0.01)],
        "about": "suspended graphene with 1 % Si, no film",
    },
    "srtio3": {
        "material": "srtio3",
        "model": "srtio3",
        "film_A": 0.0,
        "defects": [],
        "train_defects": [],
        "about": "SrTiO3 [001], no film",
    },
    "graphene-on-film": {
        "material": "graphene",
        "model": "graphene",
        "film_A": 1.0,
        "defects": [Substitution("C", "Si", 0.01)],
        "train_defects": [],
        "about": "graphene under 1 Å of amorphous carbon: the film's atoms are a texture the "
        "flat-background CRLB leaves out, so RMSE/CRLB grows with dose for any method",
    },
    "srtio3-on-film": {
        "material": "srtio3",
        "model": "srtio3",
        "film_A": 1.0,
        "defects": [],
        "train_defects": [],
        "about": "SrTiO3 [001] under 1 Å of amorphous carbon (same caveat)",
    },
}
DOSES = [1e3, 3e3, 1e4, 3e4, 1e5, 1e6]


def get_model(name: str, *, steps: int, retrain: bool) -> Model:
    """The case's model, trained on first use and calibrated as ``atomlens train`` does
    (``p_real`` and its σ model, which ``positions="auto"`` decides by)."""
    out = HERE / ".models" / f"{name}-{steps}"
    case = CASES[name]
    recipe = {
        "materials": [case["material"]],
        "pixel_size": 0.2,
        "defects": {case["material"]: case["train_defects"]} if case["train_defects"] else {},
        "dose_range": (1e3, 1e6),
        "film_thickness_A": (0.0, 3.0),
    }
    config = TrainConfig(steps=steps, val_every=max(50, steps // 10))
    if retrain or not (out / "config.json").exists():
        print(f"training {name} for {steps} steps into {out} …", flush=True)
        t = time.perf_counter()
        res = train_model(out=out, overwrite=True, config=config, **recipe)
        print(f"  done in {time.perf_counter() - t:.0f} s; validation {res.best}", flush=True)
    if not (out / "calibration.json").exists():
        print(f"calibrating {name} …", flush=True)
        t = time.perf_counter()
        calibrate_model(Model.load(out), recipe, seed=config.seed).save(out)
        print(f"  done in {time.perf_counter() - t:.0f} s", flush=True)
    return Model.load(out)


def baseline(image: np.ndarray, *, pixel_size: float, sep_A: float, otsu: bool) -> np.ndarray:
    sm = ndimage.gaussian_filter(image.astype(float), 0.25 / pixel_size)
    sep = max(1, int(round(sep_A / pixel_size)))
    # Atomap's get_atom_positions default is threshold_rel=0.02; Otsu is the usual fix
    threshold = {"threshold_abs": threshold_otsu(sm)} if otsu else {"threshold_rel": 0.02}
    yx = peak_local_max(sm, min_distance=sep, exclude_border=False, **threshold)
    xy = yx[:, ::-1].astype(float)
    if len(xy) < 2:
        return xy
    d_nn = float(np.median(cKDTree(xy).query(xy, k=2)[0][:, 1]))
    fit = refine_gaussian(
        image,
        xy,
        radius_px=max(2.0, d_nn / 2),
        width_px=max(1.0, d_nn / 5),
        neighbours=False,
        weighted=False,
        rounds=1,
        iterations=8,
    )
    return fit.xy


ATOMAP_FAILED: list[str] = []  # images where Atomap's Gaussian step raised


def atomap_positions(image: np.ndarray, *, pixel_size: float, sep_A: float) -> np.ndarray:
    """Atomap's own recipe (its tutorial's): peaks, centre of mass, 2D Gaussians [px].
    Where its 2D-Gaussian step raises (at low dose its centre of mass can leave an atom
    at NaN), the centre-of-mass positions are kept, NaNs dropped, and the image counted
    in :data:`ATOMAP_FAILED`."""
    import logging
    import warnings

    import atomap.api as am  # optional: the bench run names --atomap
    import hyperspy.api as hs

    logging.getLogger("hyperspy").setLevel(logging.ERROR)
    logging.getLogger("atomap").setLevel(logging.ERROR)
    sig = hs.signals.Signal2D(image.astype(float))
    sep = max(2, int(round(sep_A / pixel_size)) - 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pos = am.get_atom_positions(sig, separation=sep, pca=True, subtract_background=True)
        if len(pos) < 4:
            return np.asarray(pos, float).reshape(-1, 2)
        sub = am.Sublattice(pos, image.astype(float))
        sub.find_nearest_neighbors()
        sub.refine_atom_positions_using_center_of_mass(show_progressbar=False)
        try:
            sub.refine_atom_positions_using_2d_gaussian(show_progressbar=False)
        except (ValueError, RuntimeError) as err:
            ATOMAP_FAILED.append(f"{type(err).__name__}: {err}")
    xy = np.column_stack([sub.x_position, sub.y_position]).astype(float)
    return xy[np.isfinite(xy).all(axis=1)]


def _f1(a: dict) -> float:
    prec = a["tp"] / max(a["tp"] + a["fp"], 1)
    rec = a["tp"] / max(a["tp"] + a["fn"], 1)
    return 2 * prec * rec / max(prec + rec, 1e-12)


def _rmse_pm(a: dict) -> tuple[float, float]:
    """RMSE per axis [pm] of a method's matched atoms, and its ratio to their RMS CRLB."""
    e2 = np.array(list(a["err"].values()))
    rmse = float(np.sqrt(e2.mean())) * 100 if e2.size else float("nan")
    own_crlb = float(np.sqrt(np.mean(np.concatenate(a["crlb"]) ** 2))) * 100
    return rmse, rmse / own_crlb


def run(
    name: str, model: Model, *, n_images: int, atomap: bool = False, vs_float32: bool = False
) -> None:
    case = CASES[name]
    ps = 0.1
    print(f"\n{name} ({case['about']}): {n_images} images of 256² px at {ps} Å/px per dose")
    print(
        f"{'dose e/Å²':>9} {'CRLB pm':>7} | {'atomlens F1':>11} {'RMSE pm':>7} {'/CRLB':>5} "
        f"| {'baseline F1':>11} {'RMSE pm':>7} {'/CRLB':>5} | {'F1 gain':>7} "
        f"{'RMSE on common atoms: atomlens, baseline':>41} "
        f"| {'network: RMSE pm':>16} {'/CRLB':>5} | {'fit: RMSE pm':>12} {'/CRLB':>5}"
        + (f" | {'Atomap F1':>9} {'RMSE pm':>7} {'/CRLB':>5}" if atomap else "")
        + (f" | {'float32 F1':>10} {'RMSE pm':>7}" if vs_float32 else "")
    )
    keys = (
        ("al", "al-net", "al-fit", "bl-rel", "bl-otsu")
        + (("atomap",) if atomap else ())
        + (("al-f32",) if vs_float32 else ())
    )
    for dose in DOSES:
        acc = {k: {"tp": 0, "fp": 0, "fn": 0, "err": {}, "crlb": []} for k in keys}
        crlb_all = []
        for seed in range(n_images):
            cond = ImagingConditions(
                probe=GaussianProbe(fwhm_A=0.8),
                dose_e_per_A2=dose,
                background=Background(film_thickness_A=case["film_A"]),
            )
            sim = simulate_image(
                case["material"],
                shape=256,
                pixel_size=ps,
                conditions=cond,
                defects=case["defects"],
                rng=1000 + seed,
            )
            crlb = sim.crlb_A()
            crlb_all.append(crlb)
            tables = {
                "al": find_atoms(sim.image, model=model, pixel_size=ps),
                # the same atoms at the Gaussian fit's positions (find's --positions fit)
                "al-net": find_atoms(sim.image, model=model, pixel_size=ps, positions="network"),
                "al-fit": find_atoms(sim.image, model=model, pixel_size=ps, positions="fit"),
            }
            if vs_float32:  # the networks in float32, as before bfloat16 on CPUs (#36)
                tables["al-f32"] = find_atoms(
                    sim.image, model=model, pixel_size=ps, precision="float32"
                )
            for key, otsu in (("bl-rel", False), ("bl-otsu", True)):
                xy_b = baseline(
                    sim.image, pixel_size=ps, sep_A=model.config.min_separation_A, otsu=otsu
                )
                tables[key] = pd.DataFrame({"x_px": xy_b[:, 0], "y_px": xy_b[:, 1]})
            if atomap:
                xy_a = atomap_positions(
                    sim.image, pixel_size=ps, sep_A=model.config.min_separation_A
                )
                tables["atomap"] = pd.DataFrame({"x_px": xy_a[:, 0], "y_px": xy_a[:, 1]})
            for key, table in tables.items():
                s = score_atoms(table, sim.truth, shape=sim.image.shape, pixel_size=ps)
                a = acc[key]
                for k in ("tp", "fp", "fn"):
                    a[k] += s[k]
                sq = s["sq_err_A2"].reshape(-1, 2)
                for ti, e2 in zip(s["true_index"], sq, strict=True):
                    a["err"][(seed, int(ti))] = e2
                a["crlb"].append(crlb[s["true_index"]])
        # the baseline gets the better of its two thresholds at each dose
        bl = max(("bl-rel", "bl-otsu"), key=lambda k: _f1(acc[k]))
        crlb_pm = float(np.sqrt(np.mean(np.concatenate(crlb_all) ** 2))) * 100
        row = [f"{dose:9.0e} {crlb_pm:7.2f}"]
        f1s = {}
        for key in ("al", bl):
            a = acc[key]
            f1s[key] = _f1(a)
            rmse, ratio = _rmse_pm(a)
            row.append(f"{f1s[key]:11.4f} {rmse:7.2f} {ratio:5.2f}")
        common = sorted(set(acc["al"]["err"]) & set(acc[bl]["err"]))
        r_al = np.sqrt(np.mean([acc["al"]["err"][k] for k in common])) * 100
        r_bl = np.sqrt(np.mean([acc[bl]["err"][k] for k in common])) * 100
        row.append(
            f"{f1s['al'] - f1s[bl]:+7.4f} {r_al:8.2f} {r_bl:8.2f} pm "
            f"({len(common)} atoms, ratio {r_bl / r_al:4.2f}×)"
        )
        rmse_net, ratio_net = _rmse_pm(acc["al-net"])
        rmse_fit, ratio_fit = _rmse_pm(acc["al-fit"])
        row.append(f"{rmse_net:16.2f} {ratio_net:5.2f} | {rmse_fit:12.2f} {ratio_fit:5.2f}")
        if atomap:
            rmse_am, ratio_am = _rmse_pm(acc["atomap"])
            row.append(f"{_f1(acc['atomap']):9.4f} {rmse_am:7.2f} {ratio_am:5.2f}")
            if ATOMAP_FAILED:
                row.append(f"Atomap's Gaussian step failed on {len(ATOMAP_FAILED)} image(s)")
                ATOMAP_FAILED.clear()
        if vs_float32:
            row.append(f"{_f1(acc['al-f32']):10.4f} {_rmse_pm(acc['al-f32'])[0]:7.2f}")
        print(" | ".join(row), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 image per dose, 300 training steps")
    ap.add_argument("--images", type=int, default=4, help="test images per dose")
    ap.add_argument("--steps", type=int, default=1500, help="training steps per model")
    ap.add_argument("--retrain", action="store_true", help="train again even if cached")
    ap.add_argument("--case", choices=sorted(CASES), action="append", help="default: all")
    ap.add_argument(
        "--atomap", action="store_true", help="run Atomap itself too (pip install atomap)"
    )
    ap.add_argument(
        "--vs-float32",
        action="store_true",
        help="also atomlens with its networks in float32 (find's precision='float32'; the "
        "default 'auto' is bfloat16 on CPUs with AMX units), side by side",
    )
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    steps = 300 if args.quick else args.steps
    n = 1 if args.quick else args.images
    models: dict[str, Model] = {}
    for name in args.case or list(CASES):
        key = CASES[name]["model"]
        if key not in models:
            models[key] = get_model(key, steps=steps, retrain=args.retrain)
        run(name, models[key], n_images=n, atomap=args.atomap, vs_float32=args.vs_float32)
    print(
        "\nRMSE is per axis (x and y pooled), as is the CRLB; /CRLB divides each method's RMSE "
        "by the RMS bound of the atoms it matched. F1 matches within 0.5 Å; atoms within 1 Å "
        "of the border are not counted. The last columns compare both methods on the atoms "
        "both found (ratio = baseline / atomlens). The baseline's F1 is the better of "
        "threshold_rel=0.02 (Atomap's default) and Otsu. atomlens's columns use its default "
        "positions='auto'; 'network' and 'fit' place the same atoms at the network's and at "
        "the Gaussian fit's positions (find_atoms(…, positions='network' / 'fit')). Atomap "
        "(--atomap) is Atomap 0.4 itself; the baseline is its recipe without the "
        "centre-of-mass step, with one unweighted Gaussian round. Networks in "
        f"{inference_precision('auto')} (precision='auto' on this machine)"
        + (
            "; 'float32' (--vs-float32): atomlens with precision='float32'."
            if args.vs_float32
            else "."
        )
    )


if __name__ == "__main__":
    main()
