"""``atomlens demo`` and ``atomlens models``: the bundled pretrained models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from atomlens.cli.app import STATE, USER_ERRORS, fail


def demo(
    out: Annotated[Path, typer.Option("--out", help="Output directory.")] = Path("atomlens-demo"),
    seed: Annotated[int, typer.Option(help="Seed of the simulated image.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out.")] = False,
) -> None:
    """Simulate graphene with Si dopants and a vacancy, find its atoms with the bundled
    ensemble, write the report into OUT and print F1, RMSE and the classes against the truth,
    scored as `atomlens evaluate OUT/atoms.csv OUT/truth.csv` scores them."""
    try:
        from atomlens.demo import run_demo

        r = run_demo(out, seed=seed, overwrite=overwrite, progress=not STATE["quiet"])
    except USER_ERRORS as exc:
        fail(exc)
    rep = r.report
    typer.echo(
        f"atomlens demo: {r.n_atoms} atoms found in a simulated 512 × 512 px graphene image "
        f"(0.1 Å/px, 1e5 e⁻/Å²) in {r.seconds:.1f} s.\n"
        f"Scored as `atomlens evaluate {r.out}/atoms.csv {r.out}/truth.csv` scores them "
        f"(match radius {rep.radius:.2f} {rep.radius_unit}, every atom, the border band "
        f"included):\n"
        f"F1 {rep.f1:.3f} (TP {rep.tp}, FP {rep.fp}, FN {rep.fn}), RMSE {r.rmse_pm:.3g} pm; "
        f"{rep.class_summary()}\n"
        f"Open {r.out}/report.html"
    )


def models() -> None:
    """List the bundled pretrained models."""
    from atomlens.bundled import bundled_models

    found = bundled_models()
    if not found:
        typer.echo("no bundled models installed")
    for name, m in found.items():
        typer.echo(
            f"{name:16} {m['members']} members, classes {', '.join(m['classes'])}, "
            f"{m['pixel_size_A']:g} Å/px, {m['megabytes']} MB: {m['description']}"
        )
