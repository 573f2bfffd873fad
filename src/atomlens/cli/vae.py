"""``atomlens vae``, ``im2spec`` and ``spec2im``: invariant VAEs of patches or spectra, and
encoder–decoders between them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from atomlens.cli.app import STATE, USER_ERRORS, fail


def vae(
    samples: Annotated[
        Path,
        typer.Argument(
            help="Samples: .npy (N,h,w) patches or (N,L) spectra, descriptors.npz, or an "
            "atoms.csv with --image."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Output directory.")],
    kind: Annotated[str, typer.Option(help="vae, rvae, jrvae, ssrvae, cvae or shiftvae.")] = "rvae",
    latent_dim: Annotated[int, typer.Option(help="Content latents z1..zK.")] = 2,
    classes: Annotated[int, typer.Option(help="Classes (jrvae, ssrvae, cvae).")] = 2,
    labels: Annotated[
        Path | None, typer.Option(help="CSV index,class: a few labels (ssrvae) or all (cvae).")
    ] = None,
    image: Annotated[
        Path | None, typer.Option(help="The image the atoms of an atoms.csv were found in.")
    ] = None,
    pixel_size: Annotated[
        float | None, typer.Option(help="Pixel size of --image [Å/px] (default: the table's).")
    ] = None,
    patch: Annotated[float, typer.Option(help="Patch side cut at each atom [Å].")] = 4.0,
    epochs: Annotated[int, typer.Option(help="Passes over the data.")] = 100,
    angle_prior: Annotated[
        float, typer.Option(help="Prior standard deviation of the rotation [rad].")
    ] = 1.5707963267948966,
    shift_prior: Annotated[
        float, typer.Option(help="Prior standard deviation of the shifts [px].")
    ] = 1.0,
    scale: Annotated[bool, typer.Option(help="Learn a scale factor too (rvae kinds).")] = False,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same model).")] = 0,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            help="Checkpoint directory, resumed from (default: .OUT.checkpoint, "
            "removed at the end)."
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out.")] = False,
) -> None:
    """Learn latents of patches or spectra in which rotation [rad], shift [px] and scale are
    separated from content; write OUT/latents.csv, figures and the model."""
    try:
        from atomlens.vae import VAEConfig
        from atomlens.vae.files import vae_files

        STATE["flags"].update(
            {
                "angle_prior_rad": "--angle-prior",
                "shift_prior_px": "--shift-prior",
                "patch_A": "--patch",
            }
        )
        cfg = VAEConfig(
            kind=kind,
            latent_dim=latent_dim,
            classes=classes,
            epochs=epochs,
            seed=seed,
            angle_prior_rad=angle_prior,
            shift_prior_px=shift_prior,
            scale=scale,
        )
        summary = vae_files(
            samples,
            out=out,
            config=cfg,
            image=image,
            pixel_size=pixel_size,
            patch_A=patch,
            labels=labels,
            checkpoint=checkpoint,
            overwrite=overwrite,
            progress=not STATE["quiet"],
        )
    except USER_ERRORS as exc:
        fail(exc)
    if not STATE["quiet"]:
        typer.echo(
            f"wrote {out}/: latents of {summary['samples']} samples "
            f"({', '.join(summary['columns'])}), figures and model/"
        )


def _translate(
    direction: str,
    images: Path,
    spectra: Path,
    out: Path,
    atoms: Path | None,
    pixel_size: float | None,
    epochs: int,
    latent_dim: int,
    seed: int,
    overwrite: bool,
) -> None:
    try:
        from atomlens.vae import TranslatorConfig
        from atomlens.vae.files import translate_files

        cfg = TranslatorConfig(direction=direction, epochs=epochs, latent_dim=latent_dim, seed=seed)
        summary = translate_files(
            images=images,
            spectra=spectra,
            out=out,
            direction=direction,
            atoms=atoms,
            pixel_size=pixel_size,
            config=cfg,
            overwrite=overwrite,
            progress=not STATE["quiet"],
        )
    except USER_ERRORS as exc:
        fail(exc)
    if not STATE["quiet"]:
        typer.echo(
            f"wrote {out}/: {direction} on {summary['pairs']} pairs, held-out R² "
            f"{summary['r2_holdout']:.3f} ({summary['holdout']} pairs)"
        )


_IMAGES = typer.Option(help=".npy (N,h,w) patches, or with --atoms the image they lie in.")
_SPECTRA = typer.Option(help=".npy (N,L) spectra, or with --atoms an (H,W,L) spectrum image.")


def im2spec(
    images: Annotated[Path, _IMAGES],
    spectra: Annotated[Path, _SPECTRA],
    out: Annotated[Path, typer.Option("--out", help="Output directory.")],
    atoms: Annotated[Path | None, typer.Option(help="atoms.csv: cut patches at its atoms.")] = None,
    pixel_size: Annotated[float | None, typer.Option(help="Pixel size [Å/px].")] = None,
    epochs: Annotated[int, typer.Option(help="Passes over the data.")] = 200,
    latent_dim: Annotated[int, typer.Option(help="Bottleneck width.")] = 4,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out.")] = False,
) -> None:
    """Learn to predict each patch's spectrum; report the held-out R² (20 % of pairs)."""
    _translate(
        "im2spec", images, spectra, out, atoms, pixel_size, epochs, latent_dim, seed, overwrite
    )


def spec2im(
    images: Annotated[Path, _IMAGES],
    spectra: Annotated[Path, _SPECTRA],
    out: Annotated[Path, typer.Option("--out", help="Output directory.")],
    atoms: Annotated[Path | None, typer.Option(help="atoms.csv: cut patches at its atoms.")] = None,
    pixel_size: Annotated[float | None, typer.Option(help="Pixel size [Å/px].")] = None,
    epochs: Annotated[int, typer.Option(help="Passes over the data.")] = 200,
    latent_dim: Annotated[int, typer.Option(help="Bottleneck width.")] = 4,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out.")] = False,
) -> None:
    """Learn to predict each spectrum's patch; report the held-out R² (20 % of pairs)."""
    _translate(
        "spec2im", images, spectra, out, atoms, pixel_size, epochs, latent_dim, seed, overwrite
    )
