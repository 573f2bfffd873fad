"""Can `adapt` refit the σ model on frames' styled simulations? Measured on abTEM frames.

`atomlens adapt` recalibrates ``p_real`` on simulated images in the look of the new frames
(``atomlens.elit.recalibrate.styled_validation``: their film, noise, blur and sampling,
with exact atoms) and carries the σ model over. This script measures whether refitting σ
on those same styled images would make σ describe the errors on the frames better:

- frames from outside atomlens's simulator: graphene from abTEM's multislice
  (``abtem_frames.py``, 256² px at 0.1 Å/px, physical dose), two unlabelled frames for the
  styled images and three test frames of another cell (other Si site, other offsets) whose
  true columns score σ;
- the bundled ``graphene`` ensemble, unadapted (the question is whether styled images
  predict σ on the frames, which adapting does not change);
- three σ models scored on the test frames, z = error / σ per axis of ``positions="auto"``:
  **stored** (the model's own, fitted on shifted simulations of its training material),
  **scaled** (stored, times one factor per position source: the RMS z it shows on the
  styled images) and **refit** (a new σ model fitted on the styled images alone).

Pseudo-labels cannot calibrate σ at all: they are the ensemble's own positions, so the
"error" of an atom against its pseudo-label is zero by construction.

    python benchmarks/sigma_styled.py [--doses 1e4,1e5,1e6] [--styled 8] [--test 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import abtem_frames as af  # noqa: E402  (beside this script)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--doses", default="1e4,1e5,1e6", help="physical doses [e⁻/Å²]")
    ap.add_argument("--styled", type=int, default=8, help="styled images per dose")
    ap.add_argument("--test", type=int, default=3, help="test frames per dose")
    ap.add_argument("--cache", type=Path, default=HERE / ".cache" / "elit_shift_abtem")
    args = ap.parse_args()
    import torch

    from atomlens.elit.recalibrate import styled_validation
    from atomlens.ensemble import Ensemble
    from atomlens.locate.sigma import SigmaModel
    from atomlens.train.calibration import _coverage, _fit_sigma, _sigma_samples, sigma_tables

    torch.set_num_threads(2)
    t0 = time.perf_counter()
    ens = Ensemble.load(HERE.parent / "src" / "atomlens" / "bundled" / "graphene")
    stored = SigmaModel(dict(ens.calibration.sigma_model))
    cells = [af.cell(s, args.cache) for s in (410, 413)]
    print(
        "graphene ensemble, abTEM graphene frames 256² px at 0.1 Å/px; z per axis, auto positions"
    )
    print(f"{'dose':>6} {'styled z':>8} | {'test z RMS / within 1σ':>22}: stored | scaled | refit")
    for dose in [float(x) for x in args.doses.split(",")]:
        unl = [af.frame(*cells[0], seed=100 + i, dose=dose).image for i in range(2)]
        test = [af.frame(*cells[1], seed=200 + i, dose=dose) for i in range(args.test)]
        val = styled_validation(ens, unl, pixel_size=0.1, images=args.styled, seed=1)
        styled = sigma_tables(
            ens,
            [
                ("styled", SimpleNamespace(image=im, truth=tr, pixel_size=ps))
                for im, tr, ps in zip(val.images, val.truths, val.pixel_sizes, strict=True)
            ],
        )["styled"]
        frames = [
            ("test", SimpleNamespace(image=f.image, truth=f.truth, pixel_size=0.1)) for f in test
        ]
        tests = sigma_tables(ens, frames)["test"]
        s = _sigma_samples(styled, stored)
        k = {
            c: float(np.sqrt(np.nanmean(s["z"][s["src"] == c] ** 2)))
            for c in ("fit", "network")
            if (s["src"] == c).sum() >= 50
        }
        # a, b, c scale σ; the multiplier's weights (if any) stay
        scaled = SigmaModel(
            {
                c: [v * k.get(c, 1.0) for v in stored.coef[c][:3]] + list(stored.coef[c][3:])
                for c in stored.coef
            }
        )
        cells_out = []
        # refitted in the stored model's form (the multiplier on the sources it has it on)
        form = tuple(c for c in ("fit", "network") if len(stored.coef[c]) > 3)
        for model in (stored, scaled, _fit_sigma(styled, form)):
            cov = _coverage(_sigma_samples(tests, model)["z"])
            cells_out.append(f"{cov['z_rms']:.2f} / {cov['within_1sigma']:.1%}")
        print(f"{dose:6.0e} {_coverage(s['z'])['z_rms']:8.2f} | {'':>22}  " + " | ".join(cells_out))
    print(f"targets: z RMS 0.8–1.25, within 1σ 60–76 %; {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
