"""``atomlens train``: a model, or an ensemble, trained on simulated images."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from atomlens.cli.app import STATE, USER_ERRORS, fail, stop
from atomlens.cli.parse import ClassBy, floats

#: Keywords of train_model that are not the recipe (what the model is trained on).
_NOT_RECIPE = ("out", "config", "overwrite", "progress")


def train(
    out: Annotated[Path, typer.Option("--out", help="Model directory to write (or resume).")],
    material: Annotated[
        list[str],
        typer.Option(
            "--material",
            "-m",
            help="Material to train on (repeatable): graphene, "
            "hbn, mos2, ws2, srtio3 or a structure file.",
        ),
    ],
    pixel_size: Annotated[
        float, typer.Option(help="The model's sampling [Å/px]; 0.15–0.25 trains fastest.")
    ] = 0.2,
    defect: Annotated[
        list[str] | None,
        typer.Option(
            help="Defect in the training images (repeatable), e.g. "
            "substitution:C:Si:0.02 or vacancy:C:0.01; applies to every material "
            "that has the element."
        ),
    ] = None,
    classes: Annotated[ClassBy, typer.Option(help="How columns map to classes.")] = (
        ClassBy.species
    ),
    dose_range: Annotated[
        str, typer.Option(help="Dose range 'low,high' [e⁻/Å²], drawn log-uniformly.")
    ] = "2e3,1e6",
    film_range: Annotated[
        str, typer.Option(help="Amorphous carbon film thickness range 'low,high' [Å].")
    ] = "0,3",
    steps: Annotated[int, typer.Option(help="Optimiser steps.")] = 1500,
    batch_size: Annotated[int, typer.Option(help="Images per step.")] = 8,
    crop: Annotated[int, typer.Option(help="Training image side [px].")] = 128,
    width: Annotated[int, typer.Option(help="U-Net channels of the first level.")] = 16,
    depth: Annotated[int, typer.Option(help="U-Net down-samplings.")] = 3,
    lr: Annotated[float, typer.Option(help="Peak learning rate (AdamW).")] = 3e-3,
    val_every: Annotated[int, typer.Option(help="Validate and checkpoint every N steps.")] = 100,
    patience: Annotated[
        int, typer.Option(help="Stop after N validations without improvement (0: never).")
    ] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    seed: Annotated[int, typer.Option(help="Random seed (network, data, augmentation).")] = 0,
    members: Annotated[
        int, typer.Option(help="Ensemble members, each with its own seed (1: a single model).")
    ] = 1,
    together: Annotated[
        str,
        typer.Option(
            help="Train the members together in one batched pass per step ('vectorized'), "
            "one after the other ('sequential'), or 'auto' (vectorized on a GPU)."
        ),
    ] = "auto",
    sigma: Annotated[
        bool,
        typer.Option(
            "--sigma/--no-sigma",
            help="Fit the model's σ model after training, on about 30 simulated images "
            "per material (up to 6) under shifted conditions, and a p_real on them where it "
            "ranks their false atoms better than the one from the calibration images.",
        ),
    ] = True,
    overwrite: Annotated[bool, typer.Option(help="Replace a finished model at --out.")] = False,
) -> None:
    """Train a model (or an ensemble) on simulated images; re-running resumes it."""
    try:
        from atomlens.nn import UNetConfig
        from atomlens.simulate import defects_for_materials
        from atomlens.simulate.classes import ClassMap
        from atomlens.train import TrainConfig
        from atomlens.train.recipe import train_model

        per_material = defects_for_materials(defect or [], materials=material, name="--defect")
        kwargs = dict(
            materials=material,
            pixel_size=pixel_size,
            out=out,
            defects=per_material,
            classes=ClassMap(by=classes.value),
            dose_range=floats(dose_range, 2, "--dose-range"),
            film_thickness_A=floats(film_range, 2, "--film-range"),
            crop=crop,
            architecture=UNetConfig(width=width, depth=depth),
            config=TrainConfig(
                steps=steps,
                batch_size=batch_size,
                lr=lr,
                val_every=val_every,
                patience=patience,
                seed=seed,
                device=device,
            ),
            overwrite=overwrite,
            progress=not STATE["quiet"],
        )
        if members > 1:
            from atomlens.train import train_ensemble

            ens = train_ensemble(members=members, mode=together, fit_sigma=sigma, **kwargs)
        else:
            from atomlens.ensemble import Model  # deferred with the others: torch
            from atomlens.train.ensemble import calibrate_model

            # a model trained before whose calibration was interrupted: calibrate it now
            calibrate_only = (
                not overwrite
                and (out / "config.json").exists()
                and not (out / "calibration.json").exists()
            )
            res = None if calibrate_only else train_model(**kwargs)
            # a single model is calibrated as an ensemble's members are together: p_real
            # and its σ model, beside its weights
            recipe = {k: v for k, v in kwargs.items() if k not in _NOT_RECIPE}
            cal = calibrate_model(
                Model.load(out), recipe, seed=seed, fit_sigma=sigma, progress=not STATE["quiet"]
            )
            cal.save(out)
    except USER_ERRORS as exc:
        fail(exc)
    except KeyboardInterrupt as exc:
        stop(exc)
    if members > 1:
        if not STATE["quiet"]:
            scores = [
                p.get("validation", {}).get("f1", float("nan")) for p in ens.member_provenance
            ]
            typer.echo(
                f"wrote {out}/: ensemble of {members}; member validation F1 "
                + ", ".join(f"{f:.4f}" for f in scores)
            )
        return
    if STATE["quiet"]:
        return
    if res is None:
        typer.echo(f"calibrated {out}/ (trained before)")
    else:
        b = res.best
        score = (
            f"validation F1 {b['f1']:.4f}, RMSE {b['rmse_pm']:.2f} pm at step {b['step']}"
            if "f1" in b
            else "no validation"
        )
        typer.echo(
            f"wrote {out}/ ({res.steps_done} steps, {res.seconds:.0f} s): {score}; calibrated"
        )
