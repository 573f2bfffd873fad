"""``atomlens find``: atoms in image files, written as tables, maps, figures and a report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from atomlens.cli.app import STATE, USER_ERRORS, fail, stop
from atomlens.cli.parse import default_out, p_real_cut, pixel_sizes


def find(
    images: Annotated[
        list[str],
        typer.Argument(
            help="Image files, folders or glob patterns: .dm3/.dm4, .emd, .ser, .mrc, "
            ".hspy, .h5, .tif, .png, .jpg, .npy, .npz; stacks too."
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Output directory (default: named after the input in the current "
            "directory, e.g. scan.dm4 → scan-atoms).",
        ),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(
            "--model",
            help="Model directory from `train` or a bundled name (default: haadf-generic; "
            "abf-any with --contrast dark or files from a BF/ABF detector).",
        ),
    ] = None,
    pixel_size: Annotated[
        list[str] | None,
        typer.Option(
            "--pixel-size",
            help="Pixel size [Å/px]; overrides the files' calibration. Repeat it as "
            "NAME=VALUE for files of their own (a file's name or stem, e.g. --pixel-size "
            "scan1.png=0.08 --pixel-size scan2=0.1); a bare VALUE is for the files not "
            "named.",
        ),
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
            help="Each atom's reported position: auto (the fit's where its model holds: "
            "converged, residual consistent with the noise, plausible width, agreeing with "
            "the network; the network's otherwise; position_source says which), network "
            "(the network's; a column the border cuts: the mean of the fit's and its cut "
            "disk's centre), fit (a Gaussian fit on the raw image, which a thin amorphous "
            "film or aberration tails pull off) or mean (of the two).",
        ),
    ] = "auto",
    contrast: Annotated[
        str,
        typer.Option(
            help="Are the atoms bright (HAADF, ADF) or dark (BF, ABF)? auto: from the "
            "file's detector when it says, else the model's, with a warning when the image "
            "looks the other way (the skewness of its intensities). An image whose "
            "contrast differs from the model's is inverted for the network. bright or "
            "dark: as given.",
        ),
    ] = "auto",
    regions: Annotated[
        str,
        typer.Option(
            help="Read each image's regions (crystal, amorphous contamination, vacuum, "
            "saturated) from its local lattice and add a region column: keep (report only), "
            "flag (atoms outside the crystal get p_real ≤ 0.05) or drop (they go to "
            "rejected.csv); off: no region map.",
        ),
    ] = "off",
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    precision: Annotated[
        str,
        typer.Option(
            help="The networks' arithmetic: auto (bfloat16 on CUDA and on CPUs with AMX "
            "bfloat16 units, float32 elsewhere), float32 (float32 maps on every machine) "
            "or bfloat16.",
        ),
    ] = "auto",
    scheduler: Annotated[
        str | None,
        typer.Option(help="Dask scheduler address: spread the frames over its workers."),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out.")] = False,
) -> None:
    """Find atoms in IMAGES; write OUT/atoms.csv, atoms.parquet, rejected.csv, maps.h5,
    overlay.png, uncertainty.png and report.html."""
    try:
        # paths and options first, before torch is imported (seconds): a typo is reported
        # at once
        from atomlens._shared.atomic import check_output_directory
        from atomlens.bundled import resolve_model_path
        from atomlens.io import expand_inputs

        out = default_out(images, "atoms") if out is None else out
        expand_inputs(images)
        check_output_directory(out, overwrite=overwrite)
        if model is None:
            import logging

            from atomlens.pipeline.contrast import check_contrast
            from atomlens.pipeline.model_choice import default_model_for

            check_contrast(contrast, name="--contrast")
            choice = default_model_for(images, contrast=contrast, signal=signal)
            logging.getLogger("atomlens").warning("no --model given: %s", choice.reason)
            model = choice.path
        model = resolve_model_path(model)

        from atomlens._shared.device import check_device, check_precision
        from atomlens._shared.validate import validate_pixel_size
        from atomlens.locate.atoms import check_positions
        from atomlens.pipeline.contrast import check_contrast
        from atomlens.pipeline.settings import FindSettings

        check_positions(positions, name="--positions")
        check_contrast(contrast, name="--contrast")
        check_device(device, name="--device")
        check_precision(precision, name="--precision")
        p_real_cut_value = p_real_cut(p_real_min)
        FindSettings(
            threshold=threshold,
            min_separation_A=min_separation,
            p_min=p_min,
            p_real_min=p_real_cut_value,
            positions=positions,
            contrast=contrast,
        )
        sizes = pixel_sizes(pixel_size)
        for value in sizes.values() if isinstance(sizes, dict) else [sizes]:
            if value is not None:
                validate_pixel_size(value, name="--pixel-size")

        from atomlens._shared.cluster import dask_client
        from atomlens.ensemble import Ensemble
        from atomlens.pipeline import find_files

        ens = Ensemble.load(model)
        with dask_client(scheduler, name="--scheduler") as client:
            res = find_files(
                images,
                model=ens if client is None else model,
                client=client,
                out=out,
                pixel_size=sizes,
                signal=signal,
                device=device,
                precision=precision,
                threshold=threshold,
                min_separation_A=min_separation,
                p_min=p_min,
                p_real_min=p_real_cut_value,
                positions=positions,
                contrast=contrast,
                regions=regions,
                overwrite=overwrite,
                progress=not STATE["quiet"],
            )
    except USER_ERRORS as exc:
        fail(exc)
    except KeyboardInterrupt as exc:
        stop(exc, f"nothing was written to {out} (it appears only when complete)")
    if not STATE["quiet"]:
        counts = ", ".join(f"{k} {v}" for k, v in res.class_counts.items()) or "none"
        sizes = ", ".join(
            sorted({f"{f['pixel_size_A']:g} Å/px ({f['pixel_size_source']})" for f in res.files})
        )
        typer.echo(
            f"wrote {out}/: {res.n_atoms} atoms ({counts}) in {res.frames} frame"
            f"{'s' if res.frames > 1 else ''} of {len(res.files)} file"
            f"{'s' if len(res.files) > 1 else ''} at {sizes} with {len(ens)} member"
            f"{'s' if len(ens) > 1 else ''} ({res.unrefined_summary()}: those keep the "
            f"network's position); {res.n_rejected} candidates below p_detect "
            f"{p_min:g}{'' if p_real_min is None else f' or p_real {p_real_min}'} in "
            f"rejected.csv; {res.frames / max(res.seconds, 1e-9):.2f} frames/s"
        )
