"""``atomlens explore``: an automated experiment on a saved simulated sample, a spectrum
image, or features + targets."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from atomlens.cli.app import STATE, USER_ERRORS, fail


class ModelChoice(str, Enum):
    dkl = "dkl"
    gp = "gp"
    dkl_ensemble = "dkl-ensemble"
    sparse = "sparse"


class AcquisitionChoice(str, Enum):
    ucb = "ucb"
    ei = "ei"
    logei = "logei"
    pi = "pi"
    ue = "ue"
    thompson = "thompson"
    random = "random"
    grid = "grid"


def explore(
    data: Annotated[
        Path,
        typer.Argument(
            help="A saved simulated sample (directory), a spectrum image (.npy (H, W, E) or "
            ".hspy) or features.npy (with --targets)."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Run record directory.")],
    scalarizer: Annotated[
        str | None,
        typer.Option(
            help="What a spectrum is worth: band:LO:HI[:BG_LO:BG_HI], height:LO:HI, "
            "position:LO:HI or ratio:LO:HI:REF_LO:REF_HI [eV]."
        ),
    ] = None,
    model: Annotated[ModelChoice, typer.Option(help="Surrogate model.")] = ModelChoice.dkl,
    acquisition: Annotated[
        AcquisitionChoice, typer.Option(help="Acquisition (random, grid: baselines).")
    ] = AcquisitionChoice.ucb,
    steps: Annotated[int, typer.Option(help="Measurements after the seed points.")] = 40,
    n_seed: Annotated[int, typer.Option(help="Random seed points.")] = 5,
    batch: Annotated[int, typer.Option(help="Points per round (q).")] = 1,
    beta: Annotated[float, typer.Option(help="UCB weight on the variance: μ + √β σ.")] = 4.0,
    seed: Annotated[int, typer.Option(help="Seed of every random choice.")] = 0,
    grid_step: Annotated[int, typer.Option(help="Candidate grid spacing [px].")] = 5,
    patch: Annotated[int, typer.Option(help="Patch side around a candidate [px].")] = 16,
    targets: Annotated[
        Path | None, typer.Option(help="targets.npy (N,) for a features.npy DATA.")
    ] = None,
    image: Annotated[
        Path | None, typer.Option(help="Structural image .npy (H, W) of a spectrum image.")
    ] = None,
    energy: Annotated[
        str | None, typer.Option(help="START:STEP of a .npy spectrum image's energy axis [eV].")
    ] = None,
    pixel_size: Annotated[
        float | None, typer.Option(help="Pixel size of a .npy spectrum image [Å/px].")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run recorded in --out.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = False,
) -> None:
    """Seed points, then fit → acquire → measure for --steps measurements; writes
    OUT/path.csv, steps.jsonl, raw.npy, the maps and the figures."""
    try:
        from atomlens.active.loop import ExploreSettings
        from atomlens.experiment.files import explore_files

        STATE["flags"].update(grid_step_px="--grid-step", patch_px="--patch")
        e = None
        if energy is not None:
            parts = energy.split(":")
            if len(parts) != 2:
                raise ValueError(f"--energy {energy!r}: write START:STEP in eV, e.g. 80:0.5.")
            e = (float(parts[0]), float(parts[1]))
        settings = ExploreSettings(
            model=model.value,  # type: ignore[arg-type]
            acquisition=acquisition.value,  # type: ignore[arg-type]
            steps=steps,
            n_seed=n_seed,
            batch=batch,
            beta=beta,
            seed=seed,
            grid_step_px=grid_step,
            patch_px=patch,
        )
        result = explore_files(
            data,
            out=out,
            scalarizer=scalarizer,
            settings=settings,
            targets=targets,
            image=image,
            energy=e,
            pixel_size=pixel_size,
            resume=resume,
            overwrite=overwrite,
            progress=progress,
        )
    except USER_ERRORS as exc:
        fail(exc)
    if not STATE["quiet"]:
        best = int(result.values.argmax())
        typer.echo(
            f"wrote {out}/: {len(result.values)} measurements, best {result.values[best]:.6g} "
            f"at step {best} (candidate {result.indices[best]})"
        )
