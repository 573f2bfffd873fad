"""Files in, files out: what ``atomlens vae``, ``im2spec`` and ``spec2im`` run."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from atomlens._shared.atomic import atomic_directory, check_output_directory
from atomlens._shared.config import json_default
from atomlens.vae.config import VAEConfig
from atomlens.vae.fit import fit_vae, validate_samples
from atomlens.vae.inputs import load_samples, spectra_at_atoms
from atomlens.vae.model import write_model_files
from atomlens.vae.translate import TranslatorConfig, fit_translator, r2_score

__all__ = ["read_labels", "translate_files", "vae_files"]

logger = logging.getLogger(__name__)


def read_labels(path: str | PathLike[str], n: int, /) -> np.ndarray:
    """Labels from a CSV: columns ``index`` (0-based sample) and ``class`` (integer), or a
    single ``class`` column with one row per sample (empty or -1: unlabelled); ``(n,)`` ints,
    -1 where unlabelled."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p} not found; give a CSV with `index` and `class` columns.")
    t = pd.read_csv(p)
    if "class" not in t:
        raise ValueError(f"{p.name} has no `class` column; write columns index,class.")
    out = np.full(n, -1)
    cls = pd.to_numeric(t["class"], errors="coerce").fillna(-1).to_numpy()
    if "index" in t:
        idx = t["index"].to_numpy()
        if len(idx) and (idx.min() < 0 or idx.max() >= n):
            raise ValueError(
                f"{p.name}: `index` must be 0…{n - 1} (one per sample), got "
                f"{idx.min()}…{idx.max()}."
            )
        out[idx] = cls
    elif len(t) == n:
        out[:] = cls
    else:
        raise ValueError(f"{p.name} has {len(t)} rows for {n} samples; add an `index` column.")
    return out.astype(int)


def vae_files(
    samples: str | PathLike[str],
    /,
    *,
    out: str | PathLike[str],
    config: VAEConfig | None = None,
    image: str | PathLike[str] | None = None,
    pixel_size: float | None = None,
    patch_A: float = 4.0,
    labels: str | PathLike[str] | None = None,
    checkpoint: str | PathLike[str] | None = None,
    overwrite: bool = False,
    progress: bool | Callable[..., Any] = False,
) -> dict[str, Any]:
    """Train a VAE on the samples in a file and write its latents, figures and model.

    Writes into ``out`` (atomically): ``latents.csv`` (one row per sample: ``angle_rad``
    [rad], ``dx_px``, ``dy_px`` [px], ``scale``, ``z1..zK``, ``class``, ``class_prob`` as
    the kind has them, after the atoms table's columns when the samples came from one),
    ``traversal.png``, ``reconstructions.png``, ``latent_map.png`` (with an atoms table and
    its image), ``model/`` (``config.json`` + ``weights.safetensors``) and ``summary.json``.

    Parameters
    ----------
    samples : path
        ``.npy`` (N, h, w) or (N, L), ``descriptors.npz``, or an atoms table with ``image``.
    out : path
        Output directory.
    config : VAEConfig, optional
        Kind and hyperparameters.
    image : path, optional
        The image the atoms of an atoms table were found in.
    pixel_size : float, optional
        [Å/px] of ``image``.
    patch_A : float
        Patch side [Å] cut at each atom.
    labels : path, optional
        ``ssrvae``: a few labels; ``cvae``: every sample's label (:func:`read_labels`).
    checkpoint : path, optional
        Checkpoint directory (resumes from it); default: ``.<out>.checkpoint`` beside
        ``out``, removed when the run ends.
    overwrite : bool
        Replace an existing ``out``.
    progress : bool or callable
        Progress bar over epochs.

    Returns
    -------
    dict
        The summary written to ``summary.json``.
    """
    cfg = config if config is not None else VAEConfig()
    out = Path(out)
    check_output_directory(out, overwrite=overwrite)
    data, atoms = load_samples(samples, image=image, pixel_size=pixel_size, patch_A=patch_A)
    lab = cond = None
    if cfg.kind in ("ssrvae", "cvae"):
        if labels is None:
            raise ValueError(f"`kind={cfg.kind!r}` needs `labels` (a CSV of index,class).")
        lab = read_labels(labels, len(data))
        if cfg.kind == "cvae":
            if (lab < 0).any():
                raise ValueError("`kind='cvae'` needs a label for every sample in `labels`.")
            cond, lab = lab, None
    elif labels is not None:
        raise ValueError(f"`labels` is for kind ssrvae or cvae, not {cfg.kind!r}.")
    ckpt = Path(checkpoint) if checkpoint is not None else out.with_name(f".{out.name}.checkpoint")
    model = fit_vae(
        data, config=cfg, labels=lab, conditions=cond, checkpoint=ckpt, progress=progress
    )
    lat = model.encode(data, conditions=cond)
    # the atoms' own columns keep their names ("class" is the atom's): the VAE's take vae_
    clash = {} if atoms is None else {c: f"vae_{c}" for c in lat.columns if c in atoms.columns}
    if "class" in clash and "class_prob" in lat:  # the two go together
        clash["class_prob"] = "vae_class_prob"
    table = (
        lat
        if atoms is None
        else pd.concat([atoms.reset_index(drop=True), lat.rename(columns=clash)], axis=1)
    )
    # figures are drawn by the report package, which imports matplotlib
    from atomlens.report.vae_figures import save_latent_map_png, save_sample_grid_png

    with atomic_directory(out, overwrite=overwrite) as tmp:
        table.to_csv(tmp / "latents.csv", index=False)
        (tmp / "model").mkdir()
        write_model_files(model, tmp / "model")
        values = np.linspace(-2, 2, 7)
        rows, names = [], []
        for c in range(cfg.classes if cfg.discrete else 1):
            for k in range(1, cfg.latent_dim + 1):
                rows.append(model.traverse(k, values=values, cls=c))
                names.append(f"z{k}" + (f" c{c}" if cfg.discrete else ""))
        save_sample_grid_png(
            tmp / "traversal.png", rows, labels=names, title="latent traversals, z = −2 … 2"
        )
        show = data[:8]
        save_sample_grid_png(
            tmp / "reconstructions.png",
            [show, model.reconstruct(show, conditions=None if cond is None else cond[:8])],
            labels=["data", "model"],
            title="data and reconstructions",
        )
        if atoms is not None and image is not None and {"x_px", "y_px"} <= set(atoms):
            img = np.asarray(_read(image, pixel_size), float)
            key = "class" if cfg.discrete else "z1"
            save_latent_map_png(
                tmp / "latent_map.png", img, atoms, lat[key].to_numpy(), title=f"{cfg.kind}: {key}"
            )
        summary = {
            "samples": len(data),
            "sample_shape": list(data.shape[1:]),
            "config": cfg.to_dict(),
            "final_loss": model.history[-1] if model.history else None,
            "columns": list(lat.columns),
        }
        (tmp / "summary.json").write_text(
            json.dumps(summary, indent=2, default=json_default), encoding="utf-8"
        )
    if checkpoint is None:
        shutil.rmtree(ckpt, ignore_errors=True)
    return summary


def _read(image: str | PathLike[str], pixel_size: float | None) -> np.ndarray:
    # the image readers (tifffile, RosettaSciIO) load only when a map is drawn
    from atomlens.io import read_image

    return read_image(image, pixel_size=pixel_size).data


def translate_files(
    *,
    images: str | PathLike[str],
    spectra: str | PathLike[str],
    out: str | PathLike[str],
    direction: str = "im2spec",
    atoms: str | PathLike[str] | None = None,
    pixel_size: float | None = None,
    patch_A: float = 4.0,
    config: TranslatorConfig | None = None,
    holdout: float = 0.2,
    overwrite: bool = False,
    progress: bool | Callable[..., Any] = False,
) -> dict[str, Any]:
    """Train im2spec or spec2im on pairs from files; write the model, held-out R² and
    predictions.

    ``images``: ``.npy`` (N, h, w) patches, or (with ``atoms``) the image the atoms were
    found in; ``spectra``: ``.npy`` (N, L), or an (H, W, L) spectrum image on the image's
    pixel grid (with ``atoms``). Writes ``model/``, ``predictions.npy`` (of the held-out
    samples), ``holdout.csv`` (their indices) and ``summary.json`` (``r2_holdout``).
    """
    cfg = config if config is not None else TranslatorConfig()
    if cfg.direction != direction:
        cfg = TranslatorConfig.from_dict({**cfg.to_dict(), "direction": direction})
    if not 0 < holdout < 1:
        raise ValueError(f"`holdout` must be a fraction between 0 and 1, got {holdout}.")
    out = Path(out)
    check_output_directory(out, overwrite=overwrite)
    for p in (images, spectra):
        if not Path(p).is_file():
            raise FileNotFoundError(f"{p} not found.")
    spec = np.load(spectra, allow_pickle=False)
    if atoms is not None:
        table = pd.read_csv(atoms)
        patches, _ = load_samples(atoms, image=images, pixel_size=pixel_size, patch_A=patch_A)
        spec = spectra_at_atoms(spec, table) if spec.ndim == 3 else spec
    else:
        patches = np.load(images, allow_pickle=False)
        if spec.ndim == 3 and patches.ndim == 3 and spec.shape[0] != patches.shape[0]:
            raise ValueError(
                f"{Path(spectra).name} looks like an (H, W, L) spectrum image; give `atoms` "
                "(the atoms table) and the image to cut patches at the atoms."
            )
    patches = validate_samples(patches, name="images")
    spec = validate_samples(spec, name="spectra")
    if len(patches) != len(spec):
        raise ValueError(
            f"`images` gives {len(patches)} patches but `spectra` has {len(spec)} spectra; "
            "give one spectrum per patch (or an atoms table with a spectrum image)."
        )
    g = np.random.default_rng(cfg.seed)
    order = g.permutation(len(patches))
    n_test = max(1, int(round(holdout * len(order))))
    te, tr = np.sort(order[:n_test]), order[n_test:]
    model = fit_translator(patches[tr], spec[tr], config=cfg, progress=progress)
    src, tgt = (patches, spec) if direction == "im2spec" else (spec, patches)
    pred = model.predict(src[te])
    r2 = r2_score(pred, tgt[te])
    with atomic_directory(out, overwrite=overwrite) as tmp:
        model.save(tmp / "model")
        np.save(tmp / "predictions.npy", pred.astype(np.float32))
        pd.DataFrame({"index": te}).to_csv(tmp / "holdout.csv", index=False)
        summary = {
            "direction": direction,
            "pairs": len(patches),
            "holdout": int(n_test),
            "r2_holdout": r2,
            "config": cfg.to_dict(),
        }
        (tmp / "summary.json").write_text(
            json.dumps(summary, indent=2, default=json_default), encoding="utf-8"
        )
    logger.info("%s: held-out R² %.3f on %d pairs", direction, r2, n_test)
    return summary
