"""The ``atomlens`` command line: thin wrappers over the public Python functions.

Heavy imports happen inside the commands so that ``atomlens --help`` is instant. User
mistakes (bad arguments, missing files) end with a one-line error and exit code 2; pass
``--debug`` for the full traceback.
"""

from __future__ import annotations

import logging
import shutil
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="atomlens",
    help="Atoms you can trust from atom-resolved microscopy images.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: rich markup would eat the [units] in option help
    context_settings={"help_option_names": ["-h", "--help"]},
)

_state = {"debug": False}

_USER_ERRORS = (
    ValueError,
    TypeError,
    FileNotFoundError,
    FileExistsError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
    ImportError,
)


def _version_callback(value: bool) -> None:
    if value:
        from atomlens import __version__

        typer.echo(f"atomlens {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only print errors.")] = False,
    debug: Annotated[bool, typer.Option(help="Show full tracebacks for errors.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version_callback,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """Atoms you can trust from atom-resolved microscopy images."""
    level = logging.DEBUG if verbose else logging.ERROR if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("matplotlib").setLevel(max(level, logging.WARNING))
    _state["debug"] = debug
    _state["quiet"] = quiet


def _fail(exc: BaseException) -> None:
    if _state["debug"]:
        raise exc
    msg = str(exc) or type(exc).__name__
    typer.echo(f"atomlens: error: {msg}", err=True)
    raise typer.Exit(code=2)


def _floats(text: str, n: int, name: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        raise typer.BadParameter(
            f"expected {n} comma-separated numbers, got {text!r}", param_hint=name
        ) from None
    if len(vals) != n:
        raise typer.BadParameter(
            f"expected {n} comma-separated numbers, got {text!r}", param_hint=name
        )
    return vals


class ProbeKind(str, Enum):
    gaussian = "gaussian"
    aberrated = "aberrated"


class Mode(str, Enum):
    haadf = "haadf"
    bf = "bf"


class ClassBy(str, Enum):
    species = "species"
    content = "content"
    defect = "defect"
    atom = "atom"


@app.command()
def simulate(
    out: Annotated[Path, typer.Option(help="Output directory (must not exist or be empty).")],
    material: Annotated[
        str, typer.Option(help="graphene, hbn, mos2, ws2, srtio3, or a structure file (CIF, …).")
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

        zone = (
            None
            if zone_axis is None
            else tuple(int(round(v)) for v in _floats(zone_axis, 3, "--zone-axis"))
        )
        dx, dy = _floats(drift, 2, "--drift")
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
                flyback_decay_px=max(8.0, 3 * flyback),
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
            strain=_floats(strain, 3, "--strain"),
            defects=[parse_defect(d) for d in (defect or [])],
            classes=classes.value,
            label_radius_A=label_radius,
            rng=seed,
        )
        write_simulation(sim, out, overwrite=overwrite, masks=masks)
    except _USER_ERRORS as exc:
        _fail(exc)
        return
    if not _state.get("quiet"):
        counts = sim.truth["class"].value_counts()
        per_class = ", ".join(f"{k} {v}" for k, v in counts.items())
        typer.echo(
            f"wrote {out}/: {size}×{size} px at {pixel_size:g} Å/px, {len(sim.truth)} columns "
            f"({per_class}), {len(sim.vacancies)} vacancies; mean {sim.image.mean():.3g} counts/px"
        )


@app.command()
def evaluate(
    pred: Annotated[
        Path, typer.Argument(help="Predicted atoms CSV (x_px, y_px[, x_A, y_A, class]).")
    ],
    truth: Annotated[Path, typer.Argument(help="True atoms CSV, e.g. truth.csv from `simulate`.")],
    radius_A: Annotated[
        float | None, typer.Option("--radius-A", help="Match radius [Å] (uses x_A, y_A).")
    ] = None,
    radius_px: Annotated[
        float | None, typer.Option("--radius-px", help="Match radius [px] (uses x_px, y_px).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Score predicted atoms against the truth: P/R/F1 (overall and per class) and errors."""
    try:
        from atomlens.metrics import evaluate_files

        if radius_A is None and radius_px is None:
            radius_A = 0.5
        report = evaluate_files(pred, truth, radius_A=radius_A, radius_px=radius_px)
    except _USER_ERRORS as exc:
        _fail(exc)
        return
    if json_out:
        import json

        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        typer.echo(report.format())


@app.command()
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
    overwrite: Annotated[bool, typer.Option(help="Replace a finished model at --out.")] = False,
) -> None:
    """Train a model (or an ensemble) on simulated images; re-running resumes it."""
    try:
        from atomlens.nn import UNetConfig
        from atomlens.simulate import load_material, parse_defect
        from atomlens.simulate.classes import ClassMap
        from atomlens.train import TrainConfig
        from atomlens.train.recipe import train_model

        parsed = [parse_defect(d) for d in (defect or [])]
        per_material = {}
        for m in material:
            cell = load_material(m)
            from ase.data import chemical_symbols

            have = {chemical_symbols[z] for z in cell.elements}
            mine = [d for d in parsed if getattr(d, "element", None) in have]
            if mine:
                per_material[m] = mine
        used = {id(d) for v in per_material.values() for d in v}
        unused = [defect[i] for i, d in enumerate(parsed) if id(d) not in used]  # type: ignore[index]
        if unused:
            raise ValueError(f"--defect {unused[0]} names an element none of {material} has.")
        kwargs = dict(
            materials=material,
            pixel_size=pixel_size,
            out=out,
            defects=per_material,
            classes=ClassMap(by=classes.value),
            dose_range=_floats(dose_range, 2, "--dose-range"),
            film_thickness_A=_floats(film_range, 2, "--film-range"),
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
            progress=not _state.get("quiet"),
        )
        if members > 1:
            from atomlens.train import train_ensemble

            ens = train_ensemble(members=members, mode=together, **kwargs)
        else:
            res = train_model(**kwargs)
    except _USER_ERRORS as exc:
        _fail(exc)
        return
    if members > 1:
        if not _state.get("quiet"):
            scores = [
                p.get("validation", {}).get("f1", float("nan")) for p in ens.member_provenance
            ]
            typer.echo(
                f"wrote {out}/: ensemble of {members}; member validation F1 "
                + ", ".join(f"{f:.4f}" for f in scores)
            )
        return
    if not _state.get("quiet"):
        b = res.best
        score = (
            f"validation F1 {b['f1']:.4f}, RMSE {b['rmse_pm']:.2f} pm at step {b['step']}"
            if "f1" in b
            else "no validation"
        )
        typer.echo(f"wrote {out}/ ({res.steps_done} steps, {res.seconds:.0f} s): {score}")


@app.command()
def find(
    images: Annotated[
        list[str],
        typer.Argument(
            help="Image files, folders or glob patterns: .dm3/.dm4, .emd, .ser, .mrc, "
            ".hspy, .h5, .tif, .png, .jpg, .npy, .npz; stacks too."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Output directory.")],
    model: Annotated[
        Path | None,
        typer.Option(
            "--model",
            help="Model directory from `train` or a bundled name (default: haadf-generic).",
        ),
    ] = None,
    pixel_size: Annotated[
        float | None,
        typer.Option(help="Pixel size [Å/px]; overrides the files' calibration."),
    ] = None,
    signal: Annotated[
        str | None,
        typer.Option(help="Which image of a multi-detector file (e.g. HAADF, DF4)."),
    ] = None,
    threshold: Annotated[float, typer.Option(help="Minimum atom probability.")] = 0.5,
    min_separation: Annotated[
        float | None, typer.Option("--min-separation", help="Minimum atom distance [Å].")
    ] = None,
    p_min: Annotated[
        float,
        typer.Option("--p-min", help="Share of ensemble members that must find an atom."),
    ] = 0.5,
    p_real_min: Annotated[
        str | None,
        typer.Option(
            "--p-real-min",
            help="Reject atoms whose calibrated p_real is below this: a number (0.5: more "
            "likely false than real) or 'auto' (the threshold with the best F1 on the "
            "calibration's images); needs a calibrated model, such as one from `atomlens "
            "adapt`.",
        ),
    ] = None,
    positions: Annotated[
        str,
        typer.Option(
            help="Each atom's reported position: network (the network's; a column the "
            "border cuts: the mean of the fit's and its cut disk's centre), fit (a Gaussian "
            "fit on the raw image, which a thin amorphous film or aberration tails pull off) "
            "or mean (of the two).",
        ),
    ] = "network",
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    scheduler: Annotated[
        str | None,
        typer.Option(help="Dask scheduler address: spread the frames over its workers."),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out.")] = False,
) -> None:
    """Find atoms in IMAGES; write OUT/atoms.csv, atoms.parquet, rejected.csv, maps.h5,
    overlay.png, uncertainty.png and report.html."""
    try:
        from atomlens.ensemble import Ensemble
        from atomlens.pipeline import find_files

        if model is None:
            from atomlens.bundled import DEFAULT_MODEL, default_model

            model = default_model()
            logging.getLogger("atomlens").warning(
                "no --model given: using the bundled %s model", DEFAULT_MODEL
            )
        from atomlens.locate.atoms import check_positions

        check_positions(positions, name="--positions")
        ens = Ensemble.load(model)
        p_real_cut = _p_real_cut(p_real_min)
        client = None
        if scheduler is not None:
            try:
                from distributed import Client
            except ImportError as exc:
                raise ImportError(
                    "--scheduler needs dask.distributed: pip install 'atomlens[distributed]'"
                ) from exc
            client = Client(scheduler)
        try:
            res = find_files(
                images,
                model=ens if client is None else model,
                client=client,
                out=out,
                pixel_size=pixel_size,
                signal=signal,
                device=device,
                threshold=threshold,
                min_separation_A=min_separation,
                p_min=p_min,
                p_real_min=p_real_cut,
                positions=positions,
                overwrite=overwrite,
                progress=not _state.get("quiet"),
            )
        finally:
            if client is not None:
                client.close()
    except _USER_ERRORS as exc:
        _fail(exc)
        return
    if not _state.get("quiet"):
        counts = ", ".join(f"{k} {v}" for k, v in res.class_counts.items()) or "none"
        sizes = ", ".join(
            sorted({f"{f['pixel_size_A']:g} Å/px ({f['pixel_size_source']})" for f in res.files})
        )
        typer.echo(
            f"wrote {out}/: {res.n_atoms} atoms ({counts}) in {res.frames} frame"
            f"{'s' if res.frames > 1 else ''} of {len(res.files)} file"
            f"{'s' if len(res.files) > 1 else ''} at {sizes} with {len(ens)} member"
            f"{'s' if len(ens) > 1 else ''}; {res.n_rejected} candidates below p_detect "
            f"{p_min:g}{'' if p_real_min is None else f' or p_real {p_real_min}'} in "
            f"rejected.csv; {res.frames / max(res.seconds, 1e-9):.2f} frames/s"
        )


@app.command()
def analyze(
    table: Annotated[Path, typer.Argument(help="atoms.csv (or .parquet) from `atomlens find`.")],
    out: Annotated[Path, typer.Option("--out", help="Output directory.")],
    material: Annotated[
        str | None,
        typer.Option(help="Reference material for absolute strain (graphene, srtio3, …)."),
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
        import pandas as pd

        from atomlens.analysis.analyze import analyze as run

        if not table.is_file():
            raise FileNotFoundError(f"{table}: no such file; pass the atoms.csv of a find run.")
        atoms = pd.read_parquet(table) if table.suffix == ".parquet" else pd.read_csv(table)
        mapping = {}
        for item in species or []:
            if "=" not in item:
                raise ValueError(f"--species {item!r}: write CLASS=ELEMENT, e.g. TiO=Ti.")
            k, v = item.split("=", 1)
            mapping[k.strip()] = v.strip()
        img = None
        if image is not None:
            from atomlens.io import read

            im = read(image, pixel_size=pixel_size)
            img = im.frame(0)
            pixel_size = pixel_size or im.pixel_size
        summary = run(
            atoms,
            out=out,
            material=material,
            species=mapping,
            cutoff_A=cutoff,
            image=img,
            pixel_size=pixel_size,
            patch_A=patch,
            n_clusters=clusters,
            overwrite=overwrite,
        )
    except _USER_ERRORS as exc:
        _fail(exc)
        return
    if not _state.get("quiet"):
        typer.echo(
            f"wrote {out}/: {summary['atoms']} atoms, {summary['bonds']} bonds, rings "
            f"{summary['rings']}, lattice {summary['lattice']}"
            + (
                f", {summary['descriptors']['clusters']} descriptor clusters"
                if "descriptors" in summary
                else ""
            )
        )


@app.command()
def adapt(
    frames: Annotated[list[str], typer.Argument(help="Unlabeled frames: files, folders, globs.")],
    model: Annotated[Path, typer.Option("--model", help="Ensemble directory or bundled name.")],
    out: Annotated[Path, typer.Option("--out", help="Directory for the adapted ensemble.")],
    pixel_size: Annotated[
        float | None, typer.Option(help="Pixel size [Å/px]; overrides the files' calibration.")
    ] = None,
    rounds: Annotated[int, typer.Option(help="At most this many ELIT rounds.")] = 3,
    steps: Annotated[int, typer.Option(help="Optimiser steps per member per round.")] = 150,
    mode: Annotated[
        str, typer.Option(help="finetune (from the members' weights) or retrain (new seeds).")
    ] = "finetune",
    p_keep: Annotated[
        float, typer.Option(help="Share of members that must find an atom to label it.")
    ] = 0.99,
    simulated_share: Annotated[
        float,
        typer.Option(
            help="Share of each batch from simulated images of the model's material "
            "(exact labels); 1: simulated images only, no pseudo-labels."
        ),
    ] = 0.0,
    simulated_background: Annotated[
        str,
        typer.Option(
            help="Background and noise of the simulated share: 'simulated' (the "
            "simulation's) or 'frames' (the FRAMES' own, Bragg-filtered out of them; "
            "frames of a crystal of the model's material)."
        ),
    ] = "simulated",
    pixel_noise: Annotated[
        str,
        typer.Option(
            help="With --simulated-background frames: 'borrowed' (the frames' own noise) or "
            "'modelled' (drawn for each simulated image from a Poisson–Gaussian model "
            "fitted to the frames)."
        ),
    ] = "modelled",
    match_blur: Annotated[
        bool,
        typer.Option(
            help="With --simulated-background frames: blur the simulated images as much "
            "more as the FRAMES' Bragg reflections fade (a wider or aberrated probe)."
        ),
    ] = True,
    match_sampling: Annotated[
        bool,
        typer.Option(
            help="With --simulated-background frames: simulate at the FRAMES' own pixel "
            "size, read off their lattice, not across the model's training range (a "
            "--pixel-size more than 3 % off the lattice is reported)."
        ),
    ] = True,
    film: Annotated[
        str,
        typer.Option(
            help="With --simulated-background frames and modelled noise: 'estimated' (crops "
            "of the FRAMES' own film, Wiener-filtered out of them) or 'drawn' (a new "
            "amorphous carbon film for each simulated image, at the thickness fitted to the "
            "FRAMES' background; for a carbon film on a crystal the simulation renders "
            "faithfully)."
        ),
    ] = "estimated",
    background_max: Annotated[
        float | None,
        typer.Option(
            help="Teach background only where the members' mean foreground probability is "
            "at most this (other unlabelled pixels are left out of the loss)."
        ),
    ] = None,
    calibration_images: Annotated[
        int,
        typer.Option(
            help="Simulated images in the FRAMES' look (exact atoms) on which the adapted "
            "ensemble is calibrated, so that `atomlens find` reports p_real for the new "
            "conditions; 0: no calibration."
        ),
    ] = 12,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out.")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
) -> None:
    """Adapt an ensemble to unlabeled FRAMES by training on its own confident atoms (ELIT).

    Writes the adapted ensemble to --out (its provenance holds the settings and the history
    of the rounds) and prints the history. Finished rounds are kept in a hidden directory
    beside --out until it is written: the same command run again after an interruption
    resumes from the last finished round.
    """
    try:
        from atomlens._shared.atomic import check_output_directory
        from atomlens.elit.adapt import AdaptConfig
        from atomlens.elit.adapt import adapt as adapt_ensemble
        from atomlens.ensemble import Ensemble
        from atomlens.pipeline import read_frame_list

        check_output_directory(out, overwrite=overwrite)
        ens = Ensemble.load(model)
        images, ps = read_frame_list(frames, model=ens, pixel_size=pixel_size)
        cfg = AdaptConfig(
            rounds=rounds,
            steps=steps,
            mode=mode,
            p_keep=p_keep,
            simulated_share=simulated_share,
            simulated_background=simulated_background,
            pixel_noise=pixel_noise,
            match_blur=match_blur,
            match_sampling=match_sampling,
            film=film,
            background_max=background_max,
            calibration_images=calibration_images,
            device=device,
        )
        if simulated_background != "frames" and (
            pixel_noise != "modelled" or not match_blur or not match_sampling or film != "estimated"
        ):
            typer.echo(
                "note: --pixel-noise, --no-match-blur, --no-match-sampling and --film only "
                "apply with --simulated-background frames; ignored"
            )
        # finished rounds are kept beside --out, so that the same command run again after
        # an interruption resumes; removed once --out is written
        ckpt = out.parent / f".{out.name}.adapt-checkpoint"
        if (ckpt / "state.json").exists():
            typer.echo(f"{ckpt} holds finished rounds of an earlier run: resuming from them")
        res = adapt_ensemble(ens, images, pixel_size=ps, config=cfg, progress=True, checkpoint=ckpt)
        if res.ensemble is ens:
            typer.echo("no round was kept; the ensemble is unchanged (see the history)")
        res.ensemble.save(out, overwrite=overwrite)
        shutil.rmtree(ckpt, ignore_errors=True)
    except _USER_ERRORS as exc:
        _fail(exc)
        return
    typer.echo(res.history.to_string(index=False, float_format="%.4f"))
    typer.echo(f"adapted ensemble written to {out}")
    cal = (res.ensemble.config.provenance.get("elit") or {}).get("calibration")
    if cal and res.ensemble is not ens:
        typer.echo(
            f"calibrated on {cal['images']} simulated images in the look of the "
            f"{cal['styled_after']}: `atomlens find … --model {out} --p-real-min auto` rejects "
            "the candidates below the p_real threshold with the best F1 on them"
        )


@app.command("select")
def select_members(
    frames: Annotated[list[str], typer.Argument(help="Frames: files, folders or globs.")],
    model: Annotated[Path, typer.Option("--model", help="Ensemble directory or bundled name.")],
    pixel_size: Annotated[
        float | None, typer.Option(help="Pixel size [Å/px]; overrides the files' calibration.")
    ] = None,
    n_best: Annotated[int, typer.Option("--n-best", help="Members to choose.")] = 1,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
) -> None:
    """Rank the ensemble's members on unlabeled FRAMES: by how physically plausible their
    atoms are (nearest-neighbour distances and coordination against the trained material),
    ties broken by agreement, confidence and stability."""
    try:
        from atomlens.elit import select
        from atomlens.ensemble import Ensemble
        from atomlens.pipeline import read_frame_list

        ens = Ensemble.load(model)
        images, ps = read_frame_list(frames, model=ens, pixel_size=pixel_size)
        sel = select(ens, images, pixel_size=ps, n_best=n_best, device=device)
    except _USER_ERRORS as exc:
        _fail(exc)
        return
    typer.echo(sel.scores.sort_values("rank").to_string(index=False, float_format="%.4f"))
    typer.echo(f"chosen: {sel.chosen}")


class OnDrift(str, Enum):
    select = "select"
    adapt = "adapt"
    both = "both"
    none = "none"


def _decision_line(d: dict) -> str:
    keep = (
        "ratio",
        "baseline",
        "threshold",
        "members",
        "cause",
        "seconds",
        "launched_at",
        "p_real_min",
    )
    parts = [
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in d.items() if k in keep
    ]
    if "swapped" in d:
        parts.append("swapped in" if d["swapped"] else "every round undone, not swapped in")
    if d["event"] in ("frame_skipped", "adapt_failed", "p_real_off"):
        parts.append(str(d.get("reason") or d.get("error")))
    at = "start" if d["frame"] is None else f"frame {d['frame']}"
    at += ", after the last frame" if d.get("at_end") else ""
    return f"  → {d['event']} ({at}): {', '.join(parts)}"


def _p_real_cut(value: str | None) -> float | str | None:
    """``--p-real-min``: None, "auto" or a number."""
    if value is None or value == "auto":
        return value
    try:
        return float(value)
    except ValueError:
        raise ValueError(
            f"--p-real-min must be a number within [0, 1] or 'auto', got {value!r}."
        ) from None


@app.command("stream")
def stream_frames(
    source: Annotated[
        str, typer.Argument(help="A folder being filled with frames, or a (stack) file.")
    ],
    model: Annotated[Path, typer.Option("--model", help="Ensemble directory or bundled name.")],
    pixel_size: Annotated[
        float | None, typer.Option(help="Pixel size [Å/px]; overrides the files' calibration.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write atoms.csv, frames.csv, decisions.jsonl.")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Write into a non-empty --out.")] = False,
    on_drift: Annotated[
        OnDrift, typer.Option("--on-drift", help="What to do when the conditions drift.")
    ] = OnDrift.select,
    threshold: Annotated[
        float, typer.Option(help="Drift when the OOD score exceeds this × the baseline.")
    ] = 2.0,
    patience: Annotated[int, typer.Option(help="Consecutive frames over the threshold.")] = 3,
    n_best: Annotated[
        int | None, typer.Option("--n-best", help="Members to switch to (default: half).")
    ] = None,
    idle_timeout: Annotated[
        float, typer.Option("--idle-timeout", help="Stop after this long without a new file [s].")
    ] = 60.0,
    p_real_min: Annotated[
        str | None,
        typer.Option(
            "--p-real-min",
            help="Reject atoms whose calibrated p_real is below this (a number or 'auto', as "
            "for `atomlens find`) while the active members are calibrated.",
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
) -> None:
    """Follow SOURCE as frames arrive: atoms, latency and drift score per frame; on drift,
    switch to the best members and/or adapt in the background."""
    try:
        from atomlens.bundled import resolve_model_path
        from atomlens.elit.stream import StreamConfig, stream
        from atomlens.ensemble import Ensemble

        cfg = StreamConfig(
            threshold=threshold,
            patience=patience,
            window=max(6, patience),
            on_drift=on_drift.value,
            n_best=n_best,
            idle_timeout_s=idle_timeout,
            p_real_min=_p_real_cut(p_real_min),
        )
        ens = Ensemble.load(resolve_model_path(str(model)))
        st = stream(
            ens,
            source,
            pixel_size=pixel_size,
            config=cfg,
            out=out,
            overwrite=overwrite,
            device=device,
        )
        # decisions are printed here; the library's log lines would repeat them
        if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
            logging.getLogger("atomlens.elit.stream").setLevel(logging.ERROR)
        shown = 0
        for rec in st:
            new = st.decisions[shown:]
            shown = len(st.decisions)
            for d in new:  # before this frame: the baseline, skipped frames
                if d["frame"] != rec.index:
                    typer.echo(_decision_line(d))
            members = ",".join(str(m) for m in rec.members)
            typer.echo(
                f"{rec.index:5d} {rec.name}: {rec.n_atoms} atoms, {rec.latency_s * 1e3:.0f} ms, "
                f"score {rec.score:.3g} (×{rec.ratio:.2f}), members {members}"
                + (f" gen {rec.generation}" if rec.generation else "")
            )
            for d in new:  # on this frame: drift, switch, adaptation
                if d["frame"] == rec.index:
                    typer.echo(_decision_line(d))
        for d in st.decisions[shown:]:
            typer.echo(_decision_line(d))
    except _USER_ERRORS as exc:
        _fail(exc)
        return


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Output directory.")] = Path("atomlens-demo"),
    seed: Annotated[int, typer.Option(help="Seed of the simulated image.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out.")] = False,
) -> None:
    """Simulate graphene with Si dopants and a vacancy, find its atoms with the bundled
    ensemble, write the report into OUT and print F1 and RMSE against the truth."""
    try:
        from atomlens.demo import run_demo

        r = run_demo(out, seed=seed, overwrite=overwrite, progress=not _state.get("quiet"))
    except _USER_ERRORS as exc:
        _fail(exc)
        return
    typer.echo(
        f"atomlens demo: {r.n_atoms} atoms found in a simulated 512 × 512 px graphene image "
        f"(0.1 Å/px, 1e5 e⁻/Å²); against the truth: F1 {r.f1:.4f}, RMSE {r.rmse_pm:.1f} pm, "
        f"Si dopants found {r.si_found}; {r.seconds:.1f} s. Open {r.out}/report.html"
    )


@app.command()
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


def main() -> None:
    """Entry point of the ``atomlens`` console script."""
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("atomlens: interrupted", err=True)
        sys.exit(130)
