"""Fit a bundled model's σ model on simulated images under shifted conditions, validated
leaving each condition out, and (with ``--install``) store it in the model's
``calibration.json``. Only the calibration changes, never the weights; ``p_real``'s
logistic model is kept as it is.

    python scripts/calibrate_sigma.py graphene [--install]
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
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("name", choices=sorted(MATERIALS))
    ap.add_argument("--install", action="store_true", help="save into src/atomlens/bundled/")
    ap.add_argument("--seed", type=int, default=31_000)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import torch

    from atomlens.ensemble import Ensemble
    from atomlens.train.calibration import fit_sigma_model, sigma_calibration_images

    torch.set_num_threads(2)
    dest = ROOT / "src" / "atomlens" / "bundled" / args.name
    ens = Ensemble.load(dest)
    images = sigma_calibration_images(MATERIALS[args.name], ens.config.pixel_size_A, seed=args.seed)
    model, validation = fit_sigma_model(ens, images, progress=True)
    print(f"{args.name}: σ model {json.dumps(model.to_dict())}")
    print(f"{'condition left out':<20} {'z RMS':>6} {'1σ':>6} {'2σ':>6} {'n':>7}")
    for k, v in validation.items():
        print(
            f"{k:<20} {v['z_rms']:6.2f} {v['within_1sigma']:6.1%} {v['within_2sigma']:6.1%} "
            f"{v['n']:7d}"
        )
    print("targets: z RMS 0.8–1.25, 1σ 60–76 %, 2σ ≈ 95 %")
    if args.install:
        cal = ens.calibration
        if cal is None:
            raise SystemExit(f"{dest} has no calibration.json to add the σ model to")
        replace(cal, sigma_model=model.to_dict(), sigma_validation=validation).save(dest)
        print(f"installed {dest / 'calibration.json'}")


if __name__ == "__main__":
    main()
