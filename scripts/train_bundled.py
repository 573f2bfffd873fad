"""Reproduce a bundled model from its seed: ``python scripts/train_bundled.py graphene``.

Each recipe trains an ensemble with :func:`atomlens.ensemble.train_ensemble` (simulated
images, validation and calibration on unseen simulated images) into ``--out`` (default
``build/bundled/NAME``), then, with ``--install``, copies ``config.json``,
``weights.safetensors`` and ``calibration.json`` into ``src/atomlens/bundled/NAME/``.

Budgets: the CPU budget (the default, used for the models shipped now: no GPU was lent) is
``steps_cpu`` per member; ``--gpu`` uses ``steps_gpu`` on CUDA with the members trained
together. The recipe, budget and seed used are recorded in the model's provenance.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

RECIPES = {
    "haadf-generic": {
        "description": "HAADF bright columns of any lattice, one class 'atom'",
        "members": 4,
        "steps_cpu": 600,
        "steps_gpu": 6000,
        "seed": 2027,
        "recipe": {
            "materials": ["graphene", "hbn", "mos2", "ws2", "srtio3"],
            "pixel_size": 0.2,
            "defects": {},
            "classes": "atom",
            "dose_range": (3e3, 1e6),
            "film_thickness_A": (0.0, 4.0),
        },
    },
    "graphene": {
        "description": "HAADF graphene; carbon and substitutional Si as separate classes",
        "members": 4,
        "steps_cpu": 900,
        "steps_gpu": 4000,
        "seed": 2026,
        "recipe": {
            "materials": ["graphene"],
            "pixel_size": 0.2,
            "defects": {"graphene": ["substitution:C:Si:0.02", "vacancy:C:0.01"]},
            "dose_range": (3e3, 1e6),
            "film_thickness_A": (0.0, 4.0),
        },
    },
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("name", choices=sorted(RECIPES))
    ap.add_argument("--out", type=Path)
    ap.add_argument("--gpu", action="store_true", help="the GPU budget, members together")
    ap.add_argument("--install", action="store_true", help="save into src/atomlens/bundled/")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    from atomlens.ensemble import train_ensemble
    from atomlens.simulate import parse_defect
    from atomlens.train import TrainConfig

    r = RECIPES[args.name]
    out = args.out or ROOT / "build" / "bundled" / args.name
    steps = r["steps_gpu"] if args.gpu else r["steps_cpu"]
    recipe = dict(r["recipe"])
    recipe["defects"] = {m: [parse_defect(d) for d in v] for m, v in recipe["defects"].items()}
    if "classes" in recipe:
        from atomlens.simulate import ClassMap

        recipe["classes"] = ClassMap(by=recipe["classes"])
    t = time.perf_counter()
    ens = train_ensemble(
        members=r["members"],
        out=out,
        config=TrainConfig(
            steps=steps, val_every=150, seed=r["seed"], device="cuda" if args.gpu else "cpu"
        ),
        mode="vectorized" if args.gpu else "sequential",
        progress=True,
        **recipe,
    )
    dt = time.perf_counter() - t
    print(f"trained {args.name}: {len(ens)} members × {steps} steps in {dt:.0f} s")
    if args.install:
        from dataclasses import replace

        dest = ROOT / "src" / "atomlens" / "bundled" / args.name
        prov = dict(ens.config.provenance)
        prov["bundled"] = {
            "name": args.name,
            "description": r["description"],
            "script": f"python scripts/train_bundled.py {args.name}"
            + (" --gpu" if args.gpu else ""),
            "budget": "gpu" if args.gpu else "cpu",
            "steps_per_member": steps,
            "seed": r["seed"],
            "recipe": {k: v for k, v in r["recipe"].items()},
        }
        ens.config = replace(ens.config, provenance=prov)
        ens.save(dest, overwrite=True)
        print(f"installed into {dest}")


if __name__ == "__main__":
    main()
