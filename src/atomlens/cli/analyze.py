"""``atomlens analyze``: bonds, rings, lattice, strain, tracks and descriptors of an atoms
table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from atomlens.cli.app import STATE, USER_ERRORS, fail
from atomlens.cli.parse import floats


def analyze(
    table: Annotated[Path, typer.Argument(help="atoms.csv (or .parquet) from `atomlens find`.")],
    out: Annotated[Path, typer.Option("--out", help="Output directory.")],
    material: Annotated[
        str | None,
        typer.Option(help="Reference material for absolute strain (graphene, srtio3, …)."),
    ] = None,
    zone_axis: Annotated[
        str | None,
        typer.Option(
            "--zone-axis",
            help="Zone axis of the image for --material's reference lattice, 'u,v,w' "
            "(default: the material's, e.g. 0,0,1).",
        ),
    ] = None,
    species: Annotated[
        list[str] | None,
        typer.Option(help="Class=element for classes that are not elements (TiO=Ti)."),
    ] = None,
    cutoff: Annotated[
        float | None, typer.Option(help="One bond cut-off for all pairs [Å].")
    ] = None,
    image: Annotated[
        Path | None,
        typer.Option(help="The image the atoms were found in: adds local descriptors."),
    ] = None,
    pixel_size: Annotated[
        float | None, typer.Option(help="Pixel size of --image [Å/px] (default: the table's).")
    ] = None,
    patch: Annotated[
        float | None, typer.Option(help="Descriptor patch side [Å] (default: the bond length).")
    ] = None,
    clusters: Annotated[
        int | None, typer.Option(help="Descriptor clusters (default: chosen by BIC).")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out.")] = False,
) -> None:
    """Bonds, rings, lattice, strain and tracks of an atoms table, into OUT; with --image,
    also local descriptors (descriptors.npz) and their clusters."""
    try:
        from atomlens.analysis.analyze import analyze_files

        STATE["flags"]["cutoff_A"] = "--cutoff"  # the library's name for it
        mapping = {}
        for item in species or []:
            if "=" not in item:
                raise ValueError(f"--species {item!r}: write CLASS=ELEMENT, e.g. TiO=Ti.")
            k, v = item.split("=", 1)
            mapping[k.strip()] = v.strip()
        summary = analyze_files(
            table,
            out=out,
            image=image,
            pixel_size=pixel_size,
            material=material,
            zone_axis=None if zone_axis is None else zone_axis_ints(zone_axis),
            species=mapping,
            cutoff_A=cutoff,
            patch_A=patch,
            n_clusters=clusters,
            overwrite=overwrite,
        )
    except USER_ERRORS as exc:
        fail(exc)
    if not STATE["quiet"]:
        if "reference_warning" not in summary and "reference" in summary:
            strain = summary["strain_vs_" + str(material)]
            typer.echo(
                f"strain vs {summary['reference']}: exx {strain['exx']:+.2%}, eyy "
                f"{strain['eyy']:+.2%}, exy {strain['exy']:+.2%}, rotation "
                f"{strain['rotation_deg']:+.2f}°"
            )
        typer.echo(
            f"wrote {out}/: {summary['atoms']} atoms, {summary['bonds']} bonds, rings "
            f"{summary['rings']}, lattice {summary['lattice']}"
            + (
                f", {summary['descriptors']['clusters']} descriptor clusters"
                if "descriptors" in summary
                else ""
            )
        )


def zone_axis_ints(text: str) -> tuple[int, ...]:
    """``--zone-axis 1,1,0`` as three integers."""
    vals = floats(text, 3, "--zone-axis")
    if any(v != int(v) for v in vals):
        raise typer.BadParameter(
            f"expected 3 integers u,v,w, got {text!r}", param_hint="--zone-axis"
        )
    return tuple(int(v) for v in vals)
