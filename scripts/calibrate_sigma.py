"""Fit a bundled model's σ model on simulated images under shifted conditions, validated
leaving each condition out, and (with ``--install``) store it in the model's
``calibration.json``. Only the calibration changes, never the weights; ``p_real``'s
logistic model is kept as it is.

    python scripts/calibrate_sigma.py graphene [--install]
    python scripts/calibrate_sigma.py graphene --model build/bundled/graphene-w8 [--install]
    python scripts/calibrate_sigma.py graphene --rescale-only [--install]

``--model DIR`` fits a candidate trained for that name's materials (and installs into DIR).
The HAADF models' images start from the simulator's defaults, as the shipped σ models
were fitted; ``train_ensemble`` (and so ``scripts/train_bundled.py``) now fits a σ model
itself, from the recipe's ranges on up to six of its materials
(:func:`atomlens.train.ensemble.sigma_materials`), which this script then replaces.
``--rescale-only`` keeps the stored σ model's coefficients (and so ``positions="auto"``'s
decisions) and fits only the exponents of its σ's rescaling towards the lattice
(:func:`atomlens.train.calibration.fit_sigma_rescale`), each condition scored with the
exponents chosen on the others; the stored validation stays, the rescaling's beside it.
``--compare`` then scores the fitted model against the model's stored one (or the default
when it has none) on new images of the same conditions (another seed): z RMS, share
within 1σ, RMSE of the reported positions and the share taken from the fit, side by side.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MATERIALS = {
    "graphene": ["graphene"],
    "haadf-generic": ["graphene", "hbn", "mos2", "ws2", "srtio3"],
    # a light 2D lattice, an oxide, a heavy metal and two dumbbell crystals of its recipe
    "haadf-any": ["graphene", "hbn", "srtio3[110]", "au[110]", "si[110]", "gaas[110]"],
    "abf-any": ["graphene", "hbn", "srtio3[110]", "au[110]", "si[110]", "gaas[110]"],
}
#: Models whose σ images start from their training recipe's ranges (bright field and its
#: contrast exponent); the HAADF ones start from the simulator's defaults, as installed.
FROM_RECIPE = {"abf-any"}


def _base(name: str):
    """The recipe's ranges (:func:`atomlens.train.recipe.make_ranges`) for FROM_RECIPE."""
    if name not in FROM_RECIPE:
        return None
    # deferred, as in main: the library loads only when the script runs
    import sys

    from atomlens.train.recipe import make_ranges

    sys.path.insert(0, str(ROOT / "scripts"))
    from train_bundled import _recipe  # the script beside this one

    recipe = _recipe(name)
    return make_ranges(**{k: v for k, v in recipe.items() if k not in ("architecture",)})


def _scores(ens, images) -> dict[str, dict[str, float]]:
    """Per condition: z RMS, share within 1σ, RMSE [pm] and share of fitted positions of
    ``find``'s atoms matched within 0.5 Å (1 Å from the border left out)."""
    # deferred, as in main: the library loads only when the script runs
    import numpy as np

    from atomlens.metrics import inside_margin, match_points
    from atomlens.pipeline import find

    parts: dict[str, list] = {}
    for name, sim in images:
        ps = float(sim.pixel_size)
        a = find(sim.image, model=ens, pixel_size=ps).atoms
        t = sim.truth[["x_px", "y_px"]].to_numpy(float)
        m = match_points(a[["x_px", "y_px"]].to_numpy(float), t, radius=0.5 / ps)
        keep = inside_margin(t[m.true_index], np.shape(sim.image), 1.0 / ps)
        rows = a.iloc[m.pred_index[keep]]
        err = (rows[["x_px", "y_px"]].to_numpy(float) - t[m.true_index[keep]]) * ps
        sig = rows[["sigma_x_A", "sigma_y_A"]].to_numpy(float)
        fit = (rows["position_source"] == "fit").to_numpy(float)
        parts.setdefault(name, []).append((err.ravel(), (err / sig).ravel(), fit))
        parts.setdefault("all", []).append(parts[name][-1])
    out = {}
    for name, p in parts.items():
        e, z, f = (np.concatenate(x) for x in zip(*p, strict=True))
        out[name] = {
            "z": float(np.sqrt(np.mean(z**2))),
            "1s": float(np.mean(np.abs(z) <= 1)),
            "rmse": float(np.sqrt(2 * np.mean(e**2)) * 100),
            "fit": float(np.mean(f)),
        }
    return out


def compare(ens, model, materials: list[str], *, seed: int, base=None) -> None:
    """The stored (or default) σ model against the fitted one on new shifted images."""
    # deferred, as in main: the library loads only when the script runs
    from dataclasses import replace

    from atomlens.ensemble import Ensemble
    from atomlens.train.calibration import sigma_calibration_images

    images = sigma_calibration_images(materials, ens.config.pixel_size_A, seed=seed, base=base)
    cal = ens.calibration
    if cal is None:
        raise SystemExit("the model has no calibration.json to hold a σ model")
    fitted = Ensemble(ens.networks, ens.config)
    fitted.calibration = replace(cal, sigma_model=model.to_dict())
    before, after = _scores(ens, images), _scores(fitted, images)
    stored = "stored" if cal.sigma_model is not None else "default"
    print(f"\nnew images (seed {seed}): {stored} σ model | fitted σ model")
    print(
        f"{'condition':<14} {'z RMS':>6} {'1σ':>6} {'RMSE pm':>8} {'fit':>5} | "
        f"{'z RMS':>6} {'1σ':>6} {'RMSE pm':>8} {'fit':>5}"
    )
    for k in before:
        b, a = before[k], after[k]
        print(
            f"{k:<14} {b['z']:6.2f} {b['1s']:6.1%} {b['rmse']:8.2f} {b['fit']:5.2f} | "
            f"{a['z']:6.2f} {a['1s']:6.1%} {a['rmse']:8.2f} {a['fit']:5.2f}"
        )


def calibration_args(description: str, rescale: bool = False) -> argparse.Namespace:
    """The command line of this script and ``calibrate_p_real.py``: a bundled model's
    name, ``--install``, ``--seed``, ``--model DIR`` and ``--compare`` (and with
    ``rescale``, ``--rescale-only``)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("name", choices=sorted(MATERIALS))
    ap.add_argument("--install", action="store_true", help="save into the model directory")
    ap.add_argument("--seed", type=int, default=31_000)
    ap.add_argument("--model", type=Path, help="a model directory instead of the bundled one")
    ap.add_argument("--compare", action="store_true", help="stored vs fitted on new images")
    if rescale:
        ap.add_argument(
            "--rescale-only",
            action="store_true",
            help="keep the stored σ model and fit only its rescaling towards the lattice",
        )
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    return args


def main() -> None:
    args = calibration_args(__doc__.split("\n\n")[0], rescale=True)
    import torch

    from atomlens.ensemble import Ensemble
    from atomlens.train.calibration import (
        fit_sigma_model,
        fit_sigma_rescale,
        sigma_calibration_images,
        sigma_tables,
    )

    torch.set_num_threads(2)
    dest = args.model or ROOT / "src" / "atomlens" / "bundled" / args.name
    ens = Ensemble.load(dest)
    images = sigma_calibration_images(
        MATERIALS[args.name], ens.config.pixel_size_A, seed=args.seed, base=_base(args.name)
    )
    if args.rescale_only:
        if ens.calibration is None or ens.calibration.sigma_model is None:
            raise SystemExit(f"{dest} has no σ model to rescale; fit one without --rescale-only")
        model, rescaled = fit_sigma_rescale(
            sigma_tables(ens, images, progress=True), ens.calibration.sigma
        )
        print(f"{args.name}: σ model {json.dumps(model.to_dict())}")
        al = rescaled["all"]
        print(
            "rescaled towards the lattice, exponents [γ, γ faint] fit "
            f"{[al['rescale_gamma_fit'], al['rescale_gamma_fit_faint']]}, network "
            f"{[al['rescale_gamma_network'], al['rescale_gamma_network_faint']]}"
        )
        print(f"{'condition':<20} {'z RMS':>6} {'1σ':>6} {'2σ':>6} {'n':>7} {'NLL':>7}")
        for k, v in rescaled.items():
            print(
                f"{k:<20} {v['z_rms']:6.2f} {v['within_1sigma']:6.1%} "
                f"{v['within_2sigma']:6.1%} {v['n']:7d} {v['nll']:7.3f}"
            )
        print(
            f"NLL of the stored model on these images {al['nll_before_rescale']:.4f}; "
            "rescaled, each condition by the exponents chosen on the others "
            f"{al['nll']:.4f} (the stored coefficients were fitted on these conditions)"
        )
        # the stored validation (of the coefficients, each condition left out) stays; the
        # rescaling's goes beside it
        validation = dict(ens.calibration.sigma_validation or {})
        validation["all"] = {
            **validation.get("all", {}),
            **{k: v for k, v in al.items() if k.startswith("rescale_")},
            "nll_in_sample_before_rescale": al["nll_before_rescale"],
            "nll_in_sample_rescaled_left_out": al["nll"],
        }
    else:
        model, validation = fit_sigma_model(ens, images, progress=True)
        print(f"{args.name}: σ model {json.dumps(model.to_dict())}")
        _print_validation(validation)
    if args.compare:
        compare(ens, model, MATERIALS[args.name], seed=args.seed + 50_000, base=_base(args.name))
    if args.install:
        cal = ens.calibration
        if cal is None:
            raise SystemExit(f"{dest} has no calibration.json to add the σ model to")
        replace(cal, sigma_model=model.to_dict(), sigma_validation=validation).save(dest)
        print(f"installed {dest / 'calibration.json'}")


def _print_validation(validation: dict) -> None:
    """The fitted σ model's validation, each condition left out, and every form's NLL."""
    print(f"{'condition left out':<20} {'z RMS':>6} {'1σ':>6} {'2σ':>6} {'n':>7} {'NLL':>7}")
    for k, v in validation.items():
        print(
            f"{k:<20} {v['z_rms']:6.2f} {v['within_1sigma']:6.1%} {v['within_2sigma']:6.1%} "
            f"{v['n']:7d} {v['nll']:7.3f}"
        )
    al = validation["all"]
    forms = {k[len("nll_multiplier_") :]: v for k, v in al.items() if k.startswith("nll_mult")}
    print(
        "held-out NLL by where the multiplier applies, _lattice: with the lattice term, "
        "_floor: the fit's σ never below its own (± the SE of its difference to the "
        "smallest, which is kept): "
        + ", ".join(
            f"{k} {v:.3f} ± {al.get('nll_se_multiplier_' + k, float('nan')):.3f}"
            for k, v in forms.items()
        )
    )
    print("targets: z RMS 0.8–1.25, 1σ 60–76 %, 2σ ≈ 95 %")


if __name__ == "__main__":
    main()
