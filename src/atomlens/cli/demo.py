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
    ensemble, write the report into OUT and print F1 and RMSE against the truth."""
    try:
        from atomlens.demo import run_demo

        r = run_demo(out, seed=seed, overwrite=overwrite, progress=not STATE["quiet"])
    except USER_ERRORS as exc:
        fail(exc)
    typer.echo(
        f"atomlens demo: {r.n_atoms} atoms found in a simulated 512 × 512 px graphene image "
        f"(0.1 Å/px, 1e5 e⁻/Å²); against the truth: F1 {r.f1:.4f}, RMSE {r.rmse_pm:.1f} pm, "
        f"Si dopants found {r.si_found}; {r.seconds:.1f} s. Open {r.out}/report.html"
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
