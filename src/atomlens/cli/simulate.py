"""``atomlens simulate``: one STEM image with exact truth."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from atomlens.cli.app import STATE, USER_ERRORS, fail
from atomlens.cli.parse import ClassBy, floats


class ProbeKind(str, Enum):
    gaussian = "gaussian"
    aberrated = "aberrated"


class Mode(str, Enum):
    haadf = "haadf"
    bf = "bf"


def simulate(
    out: Annotated[Path, typer.Option(help="Output directory (must not exist or be empty).")],
    material: Annotated[
        str,
        typer.Option(
            help="A built-in material (graphene, srtio3, au, si, gan, …: `atomlens materials` "
            "lists them; si[110] names the zone axis too), or a structure file (CIF, …)."
        ),
    ] = "graphene",
    zone_axis: Annotated[
        str | None, typer.Option(help="Zone axis u,v,w (default: the material's own, [001]).")
    ] = None,
    thickness: Annotated[
        float | None, typer.Option(help="Thickness of bulk crystals [Å] (default ≈ 50 Å).")
    ] = None,
    size: Annotated[int, typer.Option(help="Image side [px].")] = 256,
    pixel_size: Annotated[float, typer.Option(help="Pixel size [Å/px].")] = 0.1,
    dose: Annotated[float, typer.Option(help="Electron dose [e⁻/Å²].")] = 1e5,
    seed: Annotated[int, typer.Option(help="Seed of every random choice.")] = 0,
    rotation: Annotated[
        float | None, typer.Option(help="In-plane rotation [°] (default: random from the seed).")
    ] = None,
    strain: Annotated[str, typer.Option(help="Homogeneous strain exx,eyy,exy.")] = "0,0,0",
    defect: Annotated[
        list[str] | None,
        typer.Option(help="vacancy:EL:DENSITY or substitution:EL:NEW:DENSITY; repeat for several."),
    ] = None,
    probe: Annotated[ProbeKind, typer.Option(help="Probe model.")] = ProbeKind.gaussian,
    probe_fwhm: Annotated[float, typer.Option(help="Gaussian probe FWHM [Å].")] = 0.8,
    energy: Annotated[float, typer.Option(help="Beam energy [keV] (aberrated probe).")] = 200.0,
    convergence: Annotated[
        float, typer.Option(help="Convergence semi-angle [mrad] (aberrated probe).")
    ] = 25.0,
    defocus: Annotated[
        float, typer.Option(help="Defocus [Å], positive = underfocus (aberrated probe).")
    ] = 0.0,
    cs: Annotated[
        float, typer.Option(help="Spherical aberration Cs [mm] (aberrated probe).")
    ] = 0.001,
    mode: Annotated[
        Mode, typer.Option(help="haadf, or bf for inverted (ABF/BF) contrast.")
    ] = Mode.haadf,
    gamma: Annotated[float, typer.Option(help="Z-contrast exponent: intensity ∝ Σ Z^γ.")] = 1.7,
    film: Annotated[float, typer.Option(help="Amorphous carbon film thickness [Å].")] = 0.0,
    read_noise: Annotated[float, typer.Option(help="Detector read noise [counts].")] = 0.0,
    jitter: Annotated[float, typer.Option(help="Line jitter, std along x [px].")] = 0.0,
    drift: Annotated[str, typer.Option(help="Drift over the frame dx,dy [px].")] = "0,0",
    flyback: Annotated[float, typer.Option(help="Flyback lag at line start [px].")] = 0.0,
    classes: Annotated[
        ClassBy, typer.Option(help="What distinguishes label classes.")
    ] = ClassBy.species,
    label_radius: Annotated[float, typer.Option(help="Label disk radius [Å].")] = 0.5,
    masks: Annotated[bool, typer.Option(help="Also write masks.npy.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output directory.")] = False,
) -> None:
    """Simulate a STEM image with exact truth: image.tif/.npy, truth.csv, preview.png."""
    try:
        from atomlens.simulate import (
            AberratedProbe,
            Background,
            GaussianProbe,
            ImagingConditions,
            ScanDistortion,
            parse_defect,
            simulate_image,
            write_simulation,
        )
        from atomlens.simulate.distortions import default_flyback_decay

        zone = (
            None
            if zone_axis is None
            else tuple(int(round(v)) for v in floats(zone_axis, 3, "--zone-axis"))
        )
        dx, dy = floats(drift, 2, "--drift")
        p = (
            GaussianProbe(fwhm_A=probe_fwhm)
            if probe is ProbeKind.gaussian
            else AberratedProbe(
                energy_keV=energy, convergence_mrad=convergence, defocus_A=defocus, cs_mm=cs
            )
        )
        cond = ImagingConditions(
            mode=mode.value,
            gamma=gamma,
            probe=p,
            dose_e_per_A2=dose,
            read_noise=read_noise,
            background=Background(film_thickness_A=film),
            distortion=ScanDistortion(
                line_jitter_px=jitter,
                drift_x_px=dx,
                drift_y_px=dy,
                flyback_px=flyback,
                flyback_decay_px=default_flyback_decay(flyback),
            ),
        )
        sim = simulate_image(
            material,
            shape=size,
            pixel_size=pixel_size,
            conditions=cond,
            zone_axis=zone,
            thickness_A=thickness,
            rotation_deg=rotation,
            strain=floats(strain, 3, "--strain"),
            defects=[parse_defect(d) for d in (defect or [])],
            classes=classes.value,
            label_radius_A=label_radius,
            rng=seed,
        )
        write_simulation(sim, out, overwrite=overwrite, masks=masks)
    except USER_ERRORS as exc:
        fail(exc)
    if not STATE["quiet"]:
        counts = sim.truth["class"].value_counts()
        per_class = ", ".join(f"{k} {v}" for k, v in counts.items())
        typer.echo(
            f"wrote {out}/: {size}×{size} px at {pixel_size:g} Å/px, {len(sim.truth)} columns "
            f"({per_class}), {len(sim.vacancies)} vacancies; mean {sim.image.mean():.3g} counts/px"
        )


def materials() -> None:
    """List the built-in materials: name, common zone axes (the default first), what it is."""
    from atomlens.simulate import material_table

    rows = material_table()
    w = max(len(r["name"]) for r in rows)
    z = max(len(r["zone_axes"]) for r in rows)
    for r in rows:
        typer.echo(f"{r['name']:<{w}}  {r['zone_axes']:<{z}}  {r['description']}")
