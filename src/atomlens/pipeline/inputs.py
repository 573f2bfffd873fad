"""The one input reader of the pipeline: files, folders, glob patterns and stacks become
:class:`atomlens.io.Image` objects with a pixel size (estimated from the lattice where the
file has none and the model allows), read lazily frame by frame.

:func:`atomlens.pipeline.find`, :func:`atomlens.pipeline.find_files`, the ELIT commands and
the stream loop all read their inputs here, so that a file without calibration is treated
the same everywhere.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from os import PathLike
from pathlib import Path

import numpy as np

from atomlens.ensemble import Ensemble
from atomlens.fourier import estimate_for_model
from atomlens.inference import check_resampling
from atomlens.io import Image, expand_inputs, read

__all__ = [
    "MIN_SIDE_MODEL_PX",
    "check_field_of_view",
    "check_resampling",
    "per_file_pixel_sizes",
    "read_frame_list",
    "read_frames",
    "with_estimated_pixel_size",
]

logger = logging.getLogger(__name__)

MIN_SIDE_MODEL_PX = 16


def check_field_of_view(shape: tuple[int, ...], pixel_size: float, model_pixel_size: float) -> None:
    """Refuse an image too small for a model to see atoms in.

    The image must span at least ``MIN_SIDE_MODEL_PX`` (16) pixels of the model's sampling
    on each side (3.2 Å at 0.2 Å/px: a couple of atom spacings). Smaller images are almost
    always a wrong pixel size or a thumbnail.

    Parameters
    ----------
    shape : tuple of int
        Image shape (…, H, W) [px].
    pixel_size : float
        The image's pixel size [Å/px].
    model_pixel_size : float
        The model's sampling [Å/px].

    Raises
    ------
    ValueError
        The image is too small; the message gives both sizes in Å.
    """
    h, w = int(shape[-2]), int(shape[-1])
    need_A = MIN_SIDE_MODEL_PX * model_pixel_size
    if min(h, w) * pixel_size < need_A:
        raise ValueError(
            f"the image is {w}×{h} px = {w * pixel_size:.3g}×{h * pixel_size:.3g} Å at "
            f"{pixel_size:g} Å/px, smaller than the model can look at (at least "
            f"{need_A:.3g} Å across, {MIN_SIDE_MODEL_PX} px at its {model_pixel_size:g} Å/px); "
            "check the pixel size, or use a larger field of view."
        )


def with_estimated_pixel_size(image: Image, ensemble: Ensemble, /) -> Image:
    """``image`` with a pixel size estimated from its lattice against the ensemble's
    training material (:func:`atomlens.fourier.estimate_for_model`), logged as a warning.

    Raises
    ------
    ValueError
        It cannot be estimated (no lattice, or a model of several materials); the message
        says to give the pixel size.
    """
    try:
        est = estimate_for_model(image.frame(0), ensemble.config)
    except ValueError as exc:
        raise ValueError(
            f"{image.path} does not say its pixel size and it could not be estimated ({exc}); "
            "pass `pixel_size` in Å/px (e.g. `pixel_size=0.1`)."
        ) from None
    logger.warning(
        "%s does not say its pixel size; estimated %.4g Å/px from its lattice "
        "(`pixel_size` overrides)",
        image.path,
        est.pixel_size,
    )
    meta = {
        **image.metadata,
        "pixel_size_assumption": f"estimated from the lattice against a simulated "
        f"{ensemble.config.provenance.get('materials', ['?'])[0]} reference "
        f"(contrast {est.contrast:.2f})",
    }
    return replace(image, pixel_size=est.pixel_size, pixel_size_source="estimated", metadata=meta)


def read_frames(
    inputs: str | PathLike[str] | Sequence[str | PathLike[str]],
    /,
    *,
    model: Ensemble,
    pixel_size: float | Mapping[str, float] | None = None,
    signal: str | int | None = None,
    check_size: bool = True,
) -> list[Image]:
    """Read every image and stack that ``inputs`` names, with a pixel size each.

    Only the headers are read here (stacks stay lazy, see :func:`atomlens.io.read`), so a
    bad file, or a pixel size the model cannot use (:func:`check_resampling`), fails before
    any work is done.

    Parameters
    ----------
    inputs : path, str or sequence of them
        Files, folders (their image files, sorted) and glob patterns.
    model : Ensemble
        The ensemble the frames are for: a file without calibration gets a pixel size
        estimated from its lattice against the ensemble's training material.
    pixel_size : float or mapping of str to float, optional
        [Å/px]; a number overrides every file's calibration. A mapping gives files their
        own: keys are file names (``"scan1.png"``), stems (``"scan1"``) or paths as given,
        and ``"*"`` the value for the files it does not name (the others keep their
        calibration). A key that names no file is an error.
    signal : str or int, optional
        Which image of multi-signal files (:func:`atomlens.io.read`).
    check_size : bool
        Refuse an image smaller than the model can look at (:func:`check_field_of_view`).

    Returns
    -------
    list of Image
        One per file, each with ``pixel_size`` set.

    Raises
    ------
    FileNotFoundError, ValueError
        A missing or unreadable file, or one without a pixel size that cannot be estimated;
        a pixel size the model cannot use; the message names the file and the fix.
    """
    items = [inputs] if isinstance(inputs, str | PathLike) else list(inputs)
    files = expand_inputs(items)
    sizes = per_file_pixel_sizes(files, pixel_size)
    images = []
    for f, size in zip(files, sizes, strict=True):
        im = read(f, pixel_size=size, signal=signal)
        if im.pixel_size is None:
            im = with_estimated_pixel_size(im, model)
        try:
            if check_size:
                check_field_of_view(im.shape, im.pixel_size, model.config.pixel_size_A)
            check_resampling(
                im.shape, im.pixel_size, model.config.pixel_size_A, n_maps=model.n_maps
            )
        except ValueError as exc:
            raise ValueError(f"{f}: {exc}") from None
        images.append(im)
    return images


def per_file_pixel_sizes(
    files: Sequence[Path], pixel_size: float | Mapping[str, float] | None, /
) -> list[float | None]:
    """The pixel size [Å/px] given for each file (None: its own calibration), from one number
    for all or a mapping as :func:`read_frames` takes.

    Raises
    ------
    ValueError
        A key of the mapping names none of the files; the message lists them.

    Examples
    --------
    >>> from pathlib import Path
    >>> files = [Path("a/scan1.png"), Path("a/scan2.png"), Path("a/scan3.tif")]
    >>> per_file_pixel_sizes(files, {"scan1.png": 0.08, "scan2": 0.1})
    [0.08, 0.1, None]
    >>> per_file_pixel_sizes(files, {"scan1.png": 0.08, "*": 0.12})
    [0.08, 0.12, 0.12]
    """
    if pixel_size is None or not isinstance(pixel_size, Mapping):
        return [pixel_size] * len(files)
    keys = {str(k): v for k, v in pixel_size.items()}
    default = keys.pop("*", None)
    out: list[float | None] = []
    used = set()
    for f in files:
        hit = [k for k in (str(f), f.name, f.stem) if k in keys]
        if len({keys[k] for k in hit}) > 1:
            given = ", ".join(f"{k}={keys[k]:g}" for k in hit)
            raise ValueError(f"`pixel_size` gives {f.name} two values ({given}); name it once.")
        used.update(hit)
        out.append(keys[hit[0]] if hit else default)
    unused = sorted(set(keys) - used)
    if unused:
        raise ValueError(
            f"`pixel_size` names {', '.join(unused)}, which is none of the input files "
            f"({', '.join(f.name for f in files[:8])}{', …' if len(files) > 8 else ''}); "
            "name a file by its name or stem."
        )
    return out


def read_frame_list(
    inputs: str | PathLike[str] | Sequence[str | PathLike[str]],
    /,
    *,
    model: Ensemble,
    pixel_size: float | None = None,
) -> tuple[list[np.ndarray], float]:
    """Every frame of ``inputs`` in memory, for methods that need them all at once
    (:func:`atomlens.elit.adapt`, :func:`atomlens.elit.select`): stacks give all their
    frames.

    Parameters
    ----------
    inputs, model, pixel_size
        As in :func:`read_frames`.

    Returns
    -------
    list of ndarray of shape (H, W)
        The frames.
    float
        Their one pixel size [Å/px].

    Raises
    ------
    ValueError
        The files have different pixel sizes.
    """
    frames, sizes = [], set()
    for im in read_frames(inputs, model=model, pixel_size=pixel_size, check_size=False):
        sizes.add(round(im.pixel_size, 6))
        frames += [im.frame(i) for i in range(im.n_frames)]
    if len(sizes) > 1:
        raise ValueError(
            f"the frames have different pixel sizes {sorted(sizes)}; give frames of one "
            "sampling, or pass `pixel_size`."
        )
    return frames, sizes.pop()
