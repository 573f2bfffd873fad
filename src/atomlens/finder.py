"""Image in, atoms out: :func:`find_atoms`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from atomlens._validate import validate_pixel_size
from atomlens.locate import locate_atoms
from atomlens.locate.atoms import Positions, check_positions
from atomlens.model import Model

if TYPE_CHECKING:
    from atomlens.ensemble import Ensemble, Prediction

__all__ = [
    "FindResult",
    "check_field_of_view",
    "find",
    "find_atoms",
    "find_frames",
    "save_find_results",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FindResult:
    """What :func:`find` returns.

    Attributes
    ----------
    atoms : pandas.DataFrame
        Atoms found by at least ``p_min`` of the members, with ``p_detect``, ``sigma_x_A``,
        ``sigma_y_A`` and ``epistemic`` besides the columns of
        :func:`atomlens.locate.locate_atoms`.
    rejected : pandas.DataFrame
        Candidates fewer members found (same columns); not dropped silently.
    prediction : Prediction
        Mean probabilities and uncertainty maps on the image grid.
    pixel_size : float
        [Å/px].
    """

    atoms: pd.DataFrame
    rejected: pd.DataFrame
    prediction: Prediction
    pixel_size: float


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


def _as_ensemble(model: Model | Ensemble | str | PathLike[str]) -> Ensemble:
    from atomlens.ensemble import Ensemble

    if isinstance(model, Ensemble):
        return model
    if isinstance(model, Model):
        return Ensemble([model.network], model.config, [model.config.provenance])
    return Ensemble.load(model)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)


def _p_real_threshold(
    ens: Any, p_real_min: float | str | None, /, *, calibrated: bool = True
) -> float | None:
    """The ``p_real`` threshold ``find`` applies with ``ens``: None, the number given, or
    for ``"auto"`` the calibration's F1-best one. A ValueError names the fix when the value
    is out of range or ``ens`` lacks the calibration it needs."""
    if p_real_min is None:
        return None
    if not (p_real_min == "auto" or (_is_number(p_real_min) and 0 <= p_real_min <= 1)):
        raise ValueError(f"p_real_min must be within [0, 1] or 'auto', got {p_real_min!r}.")
    if not (calibrated and ens.calibration is not None):
        raise ValueError(
            "p_real_min (--p-real-min) needs a calibrated ensemble, and this one has no "
            "calibration.json"
            + ("" if calibrated else " in use (calibrated=False)")
            + ": calibrate it (train_ensemble's n_calibration, or "
            "atomlens.elit.recalibrate for new frames) or leave p_real_min out."
        )
    if p_real_min != "auto":
        return float(p_real_min)
    best = ens.calibration.best_p_real_min
    if best is None:
        raise ValueError(
            "p_real_min='auto' needs the F1 of each p_real threshold on the "
            "calibration's validation images, which this calibration.json predates: "
            "give a number (e.g. 0.5) or recalibrate (atomlens.elit.recalibrate)."
        )
    return float(best)


def find(
    image: np.ndarray,
    /,
    *,
    model: Model | Ensemble | str | PathLike[str],
    pixel_size: float,
    device: str | torch.device = "cpu",
    threshold: float = 0.5,
    min_separation_A: float | None = None,
    p_min: float = 0.5,
    p_real_min: float | str | None = None,
    refine: bool = True,
    positions: Positions = "network",
    keep_members: bool = False,
    calibrated: bool = True,
    mode: str = "auto",
    tile: int = 256,
    batch_size: int = 8,
    progress: bool | Callable[..., object] = False,
) -> FindResult:
    """Find atoms with an ensemble (or a single model, as an ensemble of one).

    Every member predicts the image; their detections are matched to each other and each
    atom gets the share of members that found it (``p_detect``), a position (by default
    the mean of the members', see ``positions``), a Gaussian fit on the raw image (σ,
    intensity, width), an uncertainty that adds the fit's σ and the members' spread, and
    the ensemble's epistemic uncertainty around it. See
    :func:`atomlens.ensemble.consensus_atoms`.

    Parameters
    ----------
    image : ndarray of shape (H, W) or (C, H, W)
        The raw image.
    model : Model, Ensemble or path
        The model or ensemble, or its directory.
    pixel_size : float
        [Å/px].
    p_min : float
        Share of members that must find an atom for it to count; the others go to
        ``rejected``.
    p_real_min : float or "auto", optional
        Candidates whose calibrated ``p_real`` is below this go to ``rejected`` as well
        (0.5: those more likely false than real where the calibration was measured;
        ``"auto"``: the threshold that gave the best F1 on the calibration's validation
        images, :attr:`Calibration.best_p_real_min`). Needs a calibration; for an ensemble
        adapted with :func:`atomlens.elit.adapt` it is measured in the new frames' look.
        ``None`` (default): ``p_real`` only reported.
    keep_members : bool
        Keep the members' maps in the returned prediction.
    calibrated : bool
        Apply the ensemble's ``calibration.json`` when it has one: adds ``p_real`` (the
        probability that the atom is real, from the per-atom evidence or, failing that,
        the share of real atoms at that ``p_detect`` in validation) and scales σ to the error
        seen there (raw σ kept as ``sigma_raw_x_A``/``sigma_raw_y_A``).
    mode : {"auto", "vectorized", "sequential"}
        How members are evaluated (:meth:`atomlens.ensemble.Ensemble.predict_members`).
    device, threshold, min_separation_A, refine, positions, tile, batch_size, progress
        As in :func:`find_atoms` (the network's position of an atom is the mean of its
        members').

    Returns
    -------
    FindResult
    """
    from atomlens.ensemble import consensus_atoms, decompose

    ps = validate_pixel_size(pixel_size)
    check_positions(positions)
    ens = _as_ensemble(model)
    p_real_min = _p_real_threshold(ens, p_real_min, calibrated=calibrated)
    check_field_of_view(np.shape(image), ps, ens.config.pixel_size_A)
    maps = ens.predict_members(
        image,
        pixel_size=ps,
        device=device,
        mode=mode,
        tile=tile,
        batch_size=batch_size,
        progress=progress,
    )
    pred = decompose(maps, class_names=ens.config.class_names, keep_members=keep_members)
    raw = np.asarray(image, dtype=np.float64)
    raw = raw if raw.ndim == 2 else raw[0]
    c = ens.config
    atoms, rejected = consensus_atoms(
        pred,
        maps,
        raw,
        pixel_size=ps,
        min_separation_A=min_separation_A if min_separation_A is not None else c.min_separation_A,
        threshold=threshold,
        label_radius_A=c.label_radius_A,
        p_min=p_min,
        refine=refine,
        contrast="bright" if c.contrast == "haadf" else "dark",
        positions=positions,
    )
    if calibrated and ens.calibration is not None:
        atoms, rejected = ens.calibration.apply_both(atoms, rejected)
    if p_real_min is not None:
        low = atoms["p_real"].to_numpy(float) < p_real_min
        if low.any():
            rejected = pd.concat([rejected, atoms[low]], ignore_index=True)
            atoms = atoms[~low].reset_index(drop=True)
            logger.info("%d candidates below p_real %.2f rejected", int(low.sum()), p_real_min)
    logger.info("found %d atoms (%d more below p_detect %.2f)", len(atoms), len(rejected), p_min)
    return FindResult(atoms, rejected, pred, ps)


def find_atoms(
    image: np.ndarray,
    /,
    *,
    model: Model | str | PathLike[str],
    pixel_size: float,
    device: str | torch.device = "cpu",
    threshold: float = 0.5,
    min_separation_A: float | None = None,
    refine: bool = True,
    positions: Positions = "network",
    tile: int = 256,
    batch_size: int = 8,
    progress: bool | Callable[..., object] = False,
) -> pd.DataFrame:
    """Find the atoms in an image with a trained model.

    Parameters
    ----------
    image : ndarray of shape (H, W) or (C, H, W)
        The raw image (any linear intensity unit).
    model : Model, Ensemble or path
        A :class:`atomlens.model.Model`, an :class:`atomlens.ensemble.Ensemble` (then the
        atoms of :func:`find` are returned) or a model directory.
    pixel_size : float
        Pixel size of the image [Å/px]; the image is resampled to the model's sampling
        for the network and the atoms are placed and fitted on the original pixels.
    device : str or torch.device
        ``"cpu"``, ``"cuda"`` or ``"auto"``.
    threshold : float
        Minimum foreground probability of an atom.
    min_separation_A : float, optional
        Minimum distance between atoms [Å]; the model's default if omitted.
    refine : bool
        Sub-pixel Gaussian refinement on the raw image.
    positions : {"network", "fit", "mean"}
        The position reported for a refined atom: the network's (default), the Gaussian
        fit's on the raw image, or their mean. A column the border cuts takes, with
        "network", the mean of the fit's centre and its cut disk's
        (:func:`atomlens.locate.locate_atoms`; ``benchmarks/refine_positions.py``).
    tile, batch_size : int
        Tile side [px at the model's sampling] and tiles per forward pass.
    progress : bool or callable
        Progress bar over tiles.

    Returns
    -------
    pandas.DataFrame
        The atoms table of :func:`atomlens.locate.locate_atoms`.
    """
    ps = validate_pixel_size(pixel_size)
    if not isinstance(model, Model):
        from atomlens.ensemble import Ensemble

        ens = model if isinstance(model, Ensemble) else Ensemble.load(model)
        if len(ens) > 1:
            return find(
                image,
                model=ens,
                pixel_size=ps,
                device=device,
                threshold=threshold,
                min_separation_A=min_separation_A,
                refine=refine,
                positions=positions,
                tile=tile,
                batch_size=batch_size,
                progress=progress,
            ).atoms
        model = ens.member(0)
    mdl = model
    check_field_of_view(np.shape(image), ps, mdl.config.pixel_size_A)
    probs = mdl.predict(
        image, pixel_size=ps, device=device, tile=tile, batch_size=batch_size, progress=progress
    )
    raw = np.asarray(image, dtype=np.float64)
    raw = raw if raw.ndim == 2 else raw[0]
    c = mdl.config
    atoms = locate_atoms(
        probs,
        raw,
        pixel_size=ps,
        class_names=c.class_names,
        min_separation_A=min_separation_A if min_separation_A is not None else c.min_separation_A,
        threshold=threshold,
        label_radius_A=c.label_radius_A,
        refine=refine,
        contrast="bright" if c.contrast == "haadf" else "dark",
        positions=positions,
    )
    logger.info("found %d atoms", len(atoms))
    return atoms


def find_table(
    image: np.ndarray | str | PathLike[str],
    /,
    *,
    model: Model | Ensemble | str | PathLike[str] | None = None,
    pixel_size: float | None = None,
    **kwargs: Any,
) -> pd.DataFrame:
    """Atoms of an image, a stack or an image file, as one table (``atomlens.find``).

    Parameters
    ----------
    image : ndarray or path
        An image ``(H, W)``, a stack ``(N, H, W)``, or a file :func:`atomlens.io.read` reads
        (its calibration is used).
    model : Model, Ensemble or path, optional
        The model or ensemble; by default the bundled ``haadf-generic``.
    pixel_size : float, optional
        [Å/px]; required for arrays, overrides a file's calibration.
    **kwargs
        Passed to :func:`find` (``threshold``, ``p_min``, ``device``, …).

    Returns
    -------
    pandas.DataFrame
        The atoms (with ``frame`` first for a stack), calibrated ``p_real`` and σ when the
        ensemble has a calibration.
    """
    if model is None:
        from atomlens.bundled import default_model

        model = default_model()
    ens = _as_ensemble(model)
    if isinstance(image, str | PathLike):
        from atomlens.io import check_frame, read

        im = read(image, pixel_size=pixel_size)
        if im.pixel_size is None:
            raise ValueError(f"{im.path} does not say its pixel size; pass pixel_size (Å/px).")
        ps = im.pixel_size
        frames = [im.frame(i) for i in range(im.n_frames)] if im.is_stack else [im.frame(0)]
        for i, f in enumerate(frames if im.is_stack else []):
            check_frame(f, im.path, f"frame {i}")
        stack = im.is_stack
    else:
        if pixel_size is None:
            raise ValueError("pixel_size (Å/px) is required for an array.")
        ps = validate_pixel_size(pixel_size)
        arr = np.asarray(image)
        stack = arr.ndim == 3 and arr.shape[0] > 1
        frames = list(arr) if stack else [arr if arr.ndim == 2 else arr[0]]
    tables = []
    for i, f in enumerate(frames):
        t = find(f, model=ens, pixel_size=ps, **kwargs).atoms
        if stack:
            t.insert(0, "frame", i)
        tables.append(t)
    return pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]


def save_find_results(
    out: str | PathLike[str],
    /,
    image: np.ndarray,
    result: FindResult | pd.DataFrame,
    *,
    pixel_size: float,
    title: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the results of :func:`find` (or an atoms table) into ``out``, atomically.

    Files: ``atoms.csv``, ``overlay.png`` (atoms coloured by class) and, for a
    :class:`FindResult`, ``rejected.csv`` (candidates below ``p_min``) and
    ``uncertainty.png`` (the epistemic map with both).

    Parameters
    ----------
    out : path
        Output directory; refused if it exists and is not empty, unless ``overwrite``.
    image : ndarray of shape (H, W)
        The image the atoms were found in.
    result : FindResult or pandas.DataFrame
        What :func:`find` or :func:`find_atoms` returned.
    pixel_size : float
        Pixel size [Å/px] (for the scale bar).
    title : str, optional
        Title of the overlay.
    overwrite : bool
        Replace an existing directory.

    Returns
    -------
    pathlib.Path
        ``out``.
    """
    from atomlens._atomic import atomic_directory
    from atomlens.report.figures import save_atoms_png, save_uncertainty_png

    final = Path(out)
    atoms = result.atoms if isinstance(result, FindResult) else result
    img = np.asarray(image)
    img = img if img.ndim == 2 else img[0]
    with atomic_directory(final, overwrite=overwrite) as tmp:
        atoms.to_csv(tmp / "atoms.csv", index=False, float_format="%.6g")
        save_atoms_png(tmp / "overlay.png", img, atoms=atoms, title=title, pixel_size=pixel_size)
        if isinstance(result, FindResult):
            result.rejected.to_csv(tmp / "rejected.csv", index=False, float_format="%.6g")
            n = result.prediction.n_members
            save_uncertainty_png(
                tmp / "uncertainty.png",
                result.prediction.mutual_information,
                atoms=result.atoms,
                rejected=result.rejected,
                title=f"epistemic uncertainty, {n} member{'s' if n > 1 else ''}",
            )
    return final


_WORKER_MODELS: dict[str, Ensemble] = {}


def _find_chunk(frames: np.ndarray, first: int, model_dir: str, kwargs: dict) -> pd.DataFrame:
    """Find atoms in a chunk of frames (a Dask task; the model is loaded once per worker)."""
    from atomlens.ensemble import Ensemble

    ens = _WORKER_MODELS.get(model_dir)
    if ens is None:
        ens = _WORKER_MODELS[model_dir] = Ensemble.load(model_dir)
    tables = []
    for k, frame in enumerate(frames):
        atoms = find(frame, model=ens, **kwargs).atoms
        atoms.insert(0, "frame", first + k)
        tables.append(atoms)
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def find_frames(
    frames: np.ndarray,
    /,
    *,
    model: str | PathLike[str],
    pixel_size: float,
    client: Any = None,
    chunk: int = 4,
    progress: bool | Callable[..., object] = False,
    **kwargs: Any,
) -> pd.DataFrame:
    """Find atoms in every frame of a stack; one table with a ``frame`` column.

    Parameters
    ----------
    frames : ndarray of shape (F, H, W)
        The frames (a NumPy or Dask array; chunks are read one at a time).
    model : path
        Model or ensemble directory (loaded once per worker).
    pixel_size : float
        [Å/px].
    client : dask.distributed.Client, optional
        Map chunks of frames to the cluster's workers (Dask schedules them); in-process
        otherwise.
    chunk : int
        Frames per task.
    progress : bool or callable
        Progress bar over chunks (in-process only).
    **kwargs
        Passed to :func:`find` (``device``, ``threshold``, ``p_min``, …).

    Returns
    -------
    pandas.DataFrame
        The atoms of all frames, ``frame`` first.
    """
    allowed = {
        "device",
        "threshold",
        "min_separation_A",
        "p_min",
        "p_real_min",
        "refine",
        "positions",
        "mode",
        "tile",
        "batch_size",
    }
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise TypeError(f"unknown options {unknown}; allowed: {sorted(allowed)}.")
    if np.ndim(frames) != 3:
        raise ValueError(f"frames must be (F, H, W), got shape {np.shape(frames)}.")
    ps = validate_pixel_size(pixel_size)
    n = len(frames)
    starts = list(range(0, n, max(1, int(chunk))))
    opts = {"pixel_size": ps, **kwargs}
    model_dir = str(Path(model))
    if client is None:
        it = starts
        if progress:
            from tqdm.auto import tqdm

            bar = progress if callable(progress) else tqdm
            it = bar(starts, desc="frames", unit="chunk")
        parts = [_find_chunk(np.asarray(frames[s : s + chunk]), s, model_dir, opts) for s in it]
    else:
        futures = [
            client.submit(
                _find_chunk, np.asarray(frames[s : s + chunk]), s, model_dir, opts, pure=False
            )
            for s in starts
        ]
        parts = client.gather(futures)
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
