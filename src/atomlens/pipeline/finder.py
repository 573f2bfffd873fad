"""Image, stack or files in, atoms out: the one :func:`find`.

Every way of finding atoms goes through :func:`find` (``atomlens.find`` is its atoms
table, :func:`atomlens.pipeline.find_files` adds the output files, the stream loop and
ELIT call it per frame); :func:`find_atoms` is the single-network path without consensus.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from os import PathLike
from typing import Any

import numpy as np
import pandas as pd
import torch

from atomlens._shared.device import Precision, check_precision
from atomlens._shared.timing import record_stages, stage
from atomlens._shared.validate import validate_pixel_size
from atomlens.bundled import DEFAULT_MODEL
from atomlens.ensemble import Ensemble, Model, Prediction, as_ensemble, consensus_atoms, decompose
from atomlens.io import check_frame, from_hyperspy
from atomlens.locate import locate_atoms
from atomlens.locate.atoms import Positions
from atomlens.pipeline.contrast import (
    ContrastDecision,
    atom_contrast,
    model_polarity,
    network_input,
)
from atomlens.pipeline.inputs import check_field_of_view, check_resampling, read_frames
from atomlens.pipeline.model_choice import default_model_for
from atomlens.pipeline.settings import FindSettings

__all__ = [
    "FindResult",
    "check_field_of_view",
    "decide_contrast",
    "find",
    "find_atoms",
    "find_frame",
    "find_table",
    "p_real_threshold",
]

logger = logging.getLogger(__name__)

ModelLike = Ensemble | str | PathLike[str]


@dataclass(frozen=True)
class FindResult:
    """What :func:`find` returns.

    Attributes
    ----------
    atoms : pandas.DataFrame
        Atoms found by at least ``p_min`` of the members, with ``p_detect``, ``sigma_x_A``,
        ``sigma_y_A`` and ``epistemic`` besides the columns of
        :func:`atomlens.locate.locate_atoms`. For a stack ``frame`` comes first, for
        several files ``file`` and ``frame``.
    rejected : pandas.DataFrame
        Candidates fewer members found (same columns); not dropped silently.
    prediction : Prediction or None
        Mean probabilities and uncertainty maps on the image grid, for a single image
        (None for stacks and files: :func:`atomlens.pipeline.find_files` writes their maps).
    pixel_size : float
        [Å/px] (of the first frame when there are several).
    contrast : ContrastDecision or None
        Whether the atoms were taken as bright or dark, and why (of the first frame when
        there are several; :func:`atomlens.pipeline.atom_contrast`).
    seconds : dict of str to float
        Time per stage [s], summed over frames: ``read`` (files only), ``normalise``
        (normalisation and resampling to and from the model's sampling), ``network``,
        ``peaks``, ``consensus`` (the members' maps and detections combined, classes,
        checks), ``refinement`` (the Gaussian fits), ``sigma`` (σ, positions and the
        calibration's ``p_real``) and ``write`` (:func:`atomlens.pipeline.find_files`).
    regions : RegionMap or None
        The image's region map (:func:`atomlens.fourier.regions.region_map`) with
        ``FindSettings.regions`` other than "off", for a single image; else None.
    """

    atoms: pd.DataFrame
    rejected: pd.DataFrame
    prediction: Prediction | None
    pixel_size: float
    contrast: ContrastDecision | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    regions: Any = None


#: The highest ``p_real`` an atom outside the crystal keeps with ``regions="flag"``.
OUTSIDE_P_REAL = 0.05


def apply_regions(
    raw: np.ndarray,
    atoms: pd.DataFrame,
    rejected: pd.DataFrame,
    /,
    *,
    rule: str,
    contrast: str = "bright",
) -> tuple[pd.DataFrame, pd.DataFrame, Any]:
    """Each atom's and candidate's ``region`` from the image's region map, and the rule
    (``FindSettings.regions``) applied: "keep" reports it, "flag" caps ``p_real`` at
    :data:`OUTSIDE_P_REAL` outside the crystal (where there is a ``p_real``), "drop"
    moves the atoms outside the crystal to ``rejected``. Frames under 32 px a side have no
    map: their region is "unknown" and nothing is flagged or dropped.

    Parameters
    ----------
    raw : ndarray (H, W)
        The image.
    atoms, rejected : pandas.DataFrame
        What :func:`find_frame` found.
    rule : {"keep", "flag", "drop"}
        What to do with atoms outside the crystal.
    contrast : {"bright", "dark"}
        How the atoms look (the frame is inverted for the map when dark).

    Returns
    -------
    atoms, rejected : pandas.DataFrame
    region_map : RegionMap or None
    """
    # deferred: the region map's module only when regions are asked for
    from atomlens.fourier.regions import region_map

    if min(raw.shape) < 32:
        return atoms.assign(region="unknown"), rejected.assign(region="unknown"), None
    rm = region_map(raw, contrast="dark" if contrast == "dark" else "bright")
    atoms = atoms.assign(region=rm.at(atoms[["x_px", "y_px"]].to_numpy(float)))
    rejected = rejected.assign(region=rm.at(rejected[["x_px", "y_px"]].to_numpy(float)))
    outside = (atoms["region"] != "crystal").to_numpy()
    if rule == "flag":
        for name, t in (("atoms", atoms), ("rejected", rejected)):
            if "p_real" not in t.columns:
                continue
            out = (t["region"] != "crystal").to_numpy()
            p = t["p_real"].to_numpy(float)
            t = t.assign(p_real=np.where(out, np.minimum(p, OUTSIDE_P_REAL), p))
            atoms, rejected = (t, rejected) if name == "atoms" else (atoms, t)
    elif rule == "drop" and outside.any():
        rejected = pd.concat([rejected, atoms[outside]], ignore_index=True)
        atoms = atoms[~outside].reset_index(drop=True)
    return atoms, rejected, rm


def decide_contrast(
    image: np.ndarray,
    ensemble: Ensemble | Model,
    settings: FindSettings,
    /,
    *,
    pixel_size: float,
    signal_type: str | None = None,
    name: str = "the image",
) -> ContrastDecision:
    """:func:`atomlens.pipeline.atom_contrast` for ``ensemble``, with a warning when "auto"
    inverts the image after its file's detector, or when the image looks opposite to the
    model but nothing says so (then it is not inverted: the warning names the fix)."""
    mc = ensemble.config.contrast
    dec = atom_contrast(
        image,
        pixel_size=pixel_size,
        contrast=settings.contrast,
        signal_type=signal_type,
        model_contrast=mc,
    )
    if dec.looks is not None:
        logger.warning(
            "%s looks like an image of %s atoms (intensity skewness %+.2f) but is read as "
            "%s, as the %s model expects, since neither the file nor `contrast` says "
            "otherwise: if it is a %s image, pass `contrast='%s'`",
            name,
            dec.looks,
            dec.skewness,
            dec.atoms,
            mc.upper(),
            "BF/ABF" if dec.looks == "dark" else "HAADF/ADF",
            dec.looks,
        )
    elif settings.contrast == "auto" and dec.atoms != model_polarity(mc):
        logger.warning(
            "%s has %s atoms (%s) but the model was trained on %s atoms (%s): inverting it "
            "for the network; `contrast` overrides",
            name,
            dec.atoms,
            dec.reason,
            model_polarity(mc),
            mc.upper(),
        )
    elif dec.atoms != model_polarity(mc):
        # debug: asked for explicitly, and a file's decision is made (and said) once per
        # file before each frame passes here again
        logger.debug("%s: %s atoms as set; inverting it for the %s model", name, dec.atoms, mc)
    return dec


def p_real_threshold(
    ensemble: Ensemble, p_real_min: float | str | None, /, *, calibrated: bool = True
) -> float | None:
    """The ``p_real`` threshold :func:`find` applies with ``ensemble``.

    Parameters
    ----------
    ensemble : Ensemble
        The ensemble (its calibration).
    p_real_min : float, "auto" or None
        As in :class:`FindSettings`.
    calibrated : bool
        Whether the calibration is applied at all.

    Returns
    -------
    float or None
        None, the number given, or for ``"auto"`` the calibration's F1-best threshold.

    Raises
    ------
    ValueError
        The value is out of range, or the ensemble lacks the calibration it needs; the
        message names the fix.
    """
    if p_real_min is None:
        return None
    FindSettings(p_real_min=p_real_min)  # the range check, with its message
    if not (calibrated and ensemble.calibration is not None):
        raise ValueError(
            "`p_real_min` needs a calibrated ensemble, and this one has no "
            "calibration.json"
            + ("" if calibrated else " in use (calibrated=False)")
            + ": calibrate it (train_ensemble's n_calibration, or "
            "atomlens.elit.recalibrate for new frames) or leave `p_real_min` out."
        )
    if p_real_min != "auto":
        return float(p_real_min)
    best = ensemble.calibration.best_p_real_min
    if best is None:
        raise ValueError(
            "p_real_min='auto' needs the F1 of each p_real threshold on the "
            "calibration's validation images, which this calibration.json predates: "
            "give a number (e.g. 0.5) or recalibrate (atomlens.elit.recalibrate)."
        )
    return float(best)


def find(
    image: np.ndarray | str | PathLike[str] | Sequence[str | PathLike[str]] | Any,
    /,
    *,
    model: ModelLike | None = None,
    pixel_size: float | None = None,
    settings: FindSettings | None = None,
    device: str | torch.device = "cpu",
    precision: Precision = "auto",
    threshold: float = 0.5,
    min_separation_A: float | None = None,
    p_min: float = 0.5,
    p_real_min: float | str | None = None,
    refine: bool = True,
    positions: Positions = "auto",
    contrast: str = "auto",
    regions: str = "off",
    keep_members: bool = False,
    calibrated: bool = True,
    mode: str = "auto",
    tile: int | None = None,
    batch_size: int = 8,
    signal: str | int | None = None,
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
    image : ndarray, path, sequence of paths, or HyperSpy signal
        A HyperSpy ``Signal2D`` (its axes give the pixel size; a stack's navigation axes
        become frames), an image ``(H, W)`` (or ``(C, H, W)`` for a model of C > 1
        channels), a stack ``(N, H, W)`` (or a list of images of one shape), or files,
        folders and glob patterns (read by
        :func:`atomlens.pipeline.read_frames`: a file without calibration gets a pixel size
        estimated from its lattice, as ``atomlens find`` does).
    model : Ensemble, Model, path or str, optional
        The ensemble or model, its directory or a bundled name; by default the bundled
        ``haadf-generic``, or ``abf-any`` for bright-field images (``contrast="dark"`` or
        files whose detector says BF/ABF; :func:`atomlens.pipeline.default_model_for`,
        which logs the choice).
    pixel_size : float, optional
        [Å/px]; required for arrays, overrides a file's calibration.
    settings : FindSettings, optional
        All locate settings at once; then leave ``threshold`` … ``positions`` at their
        defaults.
    device : str or torch.device
        ``"cpu"``, ``"cuda"`` or ``"auto"``.
    precision : {"auto", "float32", "bfloat16"}
        The networks' arithmetic: "auto" is bfloat16 on CUDA and on CPUs with AMX
        bfloat16 units (there the network stage 2–3× faster, atoms within 0.004–0.025 px
        of float32's in 99 % of cases: ``docs/tutorials/speed.md``), float32 elsewhere;
        "float32" keeps the maps float32 on every machine. (The fit also depends on
        torch's thread count, which it runs on: ``torch.set_num_threads(1)`` gives the
        single-threaded numbers.)
    threshold, min_separation_A, p_min, p_real_min, refine, positions, contrast
        The locate settings (:class:`FindSettings`): minimum foreground probability,
        minimum distance between atoms [Å] (the model's default if None), share of members
        that must find an atom (the others go to ``rejected``), the ``p_real`` below which
        candidates go to ``rejected`` (a number, ``"auto"`` for the calibration's F1-best
        one, or None to only report ``p_real``; needs a calibration), Gaussian refinement
        on the raw image, which position is reported ("network", "fit" or "mean"), and
        whether the atoms are "bright" (HAADF), "dark" (BF, ABF) or "auto": per file from
        its signal type, or else the model's, with a warning when the image looks the
        other way; an image whose contrast differs from the model's is inverted for the
        network.
    regions : {"off", "keep", "flag", "drop"}
        Each atom's region (crystal, amorphous, vacuum, saturated) from the image's region
        map, in a ``region`` column, and what to do with atoms outside the crystal:
        nothing ("keep"), ``p_real`` of at most 0.05 ("flag") or to ``rejected`` ("drop");
        "off": no map (:class:`FindSettings`).
    keep_members : bool
        Keep the members' maps in the returned prediction.
    calibrated : bool
        Apply the ensemble's ``calibration.json`` when it has one: adds ``p_real`` (the
        probability that the atom is real, from the per-atom evidence or, failing that,
        the share of real atoms at that ``p_detect`` in validation) and its σ model
        (:class:`atomlens.locate.SigmaModel`, fitted on shifted simulations) for
        ``sigma_x_A``/``sigma_y_A``; without it the uncalibrated default σ model.
    mode : {"auto", "vectorized", "sequential"}
        How members are evaluated (:meth:`atomlens.ensemble.Ensemble.predict_members`).
    tile, batch_size : int
        Tile side [px at the model's sampling] (None: the whole image up to 512 px a side,
        else the fewest tiles of at most that) and tiles per forward pass.
    signal : str or int, optional
        Which image of multi-signal files (:func:`atomlens.io.read`).
    progress : bool or callable
        Progress bar over tiles.

    Returns
    -------
    FindResult
    """
    cfg = FindSettings.resolve(
        settings,
        threshold=threshold,
        min_separation_A=min_separation_A,
        p_min=p_min,
        p_real_min=p_real_min,
        refine=refine,
        positions=positions,
        contrast=contrast,
        regions=regions,
    )
    if model is None:
        choice = default_model_for(image, contrast=cfg.contrast, signal=signal)
        if choice.name != DEFAULT_MODEL:
            logger.warning("no model given: %s", choice.reason)
        model = choice.path
    if hasattr(image, "axes_manager") and hasattr(image, "data"):  # a HyperSpy signal
        signal_image = from_hyperspy(image, pixel_size=pixel_size)
        if signal_image.pixel_size is None:
            raise ValueError(
                "the HyperSpy signal's axes do not say a length per pixel; pass `pixel_size` "
                "in Å/px or set the axes' scale and units."
            )
        image, pixel_size = np.asarray(signal_image.data), signal_image.pixel_size
    is_files = isinstance(image, str | PathLike) or (
        isinstance(image, Sequence)
        and not isinstance(image, np.ndarray)
        and len(image) > 0
        and all(isinstance(p, str | PathLike) for p in image)
    )
    if not is_files:
        if pixel_size is None:
            raise ValueError("pixel_size (Å/px) is required for an array.")
        ps = validate_pixel_size(pixel_size)
    ens = as_ensemble(model)
    check_precision(precision)
    opts = {
        "device": device,
        "precision": precision,
        "keep_members": keep_members,
        "calibrated": calibrated,
        "mode": mode,
        "tile": tile,
        "batch_size": batch_size,
        "progress": progress,
    }
    if is_files:
        return _find_files(image, ens, cfg, pixel_size, signal, opts)  # type: ignore[arg-type]
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[0] > 1 and ens.config.architecture.in_channels == 1:
        return _stacked([(arr_i, {"frame": i}) for i, arr_i in enumerate(arr)], ens, cfg, ps, opts)
    return find_frame(arr, ens, settings=cfg, pixel_size=ps, **opts)


def find_frame(
    image: np.ndarray,
    ensemble: Ensemble,
    /,
    *,
    settings: FindSettings,
    pixel_size: float,
    device: str | torch.device = "cpu",
    precision: Precision = "auto",
    keep_members: bool = False,
    calibrated: bool = True,
    mode: str = "auto",
    tile: int | None = None,
    batch_size: int = 8,
    progress: bool | Callable[..., object] = False,
    signal_type: str | None = None,
) -> FindResult:
    """:func:`find` on one image array with an ensemble and settings already checked (what
    :func:`find` runs for each frame); ``signal_type`` (the file's detector) helps
    ``settings.contrast="auto"`` decide."""
    with record_stages() as seconds, stage("consensus"):
        res = _find_frame(
            image,
            ensemble,
            settings=settings,
            pixel_size=pixel_size,
            device=device,
            precision=precision,
            keep_members=keep_members,
            calibrated=calibrated,
            mode=mode,
            tile=tile,
            batch_size=batch_size,
            progress=progress,
            signal_type=signal_type,
        )
    return replace(res, seconds=seconds)


def _find_frame(
    image: np.ndarray,
    ensemble: Ensemble,
    /,
    *,
    settings: FindSettings,
    pixel_size: float,
    device: str | torch.device,
    precision: Precision,
    keep_members: bool,
    calibrated: bool,
    mode: str,
    tile: int | None,
    batch_size: int,
    progress: bool | Callable[..., object],
    signal_type: str | None,
) -> FindResult:
    ps = validate_pixel_size(pixel_size)
    ens = ensemble
    p_real_min = p_real_threshold(ens, settings.p_real_min, calibrated=calibrated)
    check_field_of_view(np.shape(image), ps, ens.config.pixel_size_A)
    check_resampling(np.shape(image), ps, ens.config.pixel_size_A, n_maps=ens.n_maps)
    dec = decide_contrast(image, ens, settings, pixel_size=ps, signal_type=signal_type)
    maps = ens.predict_members(
        network_input(image, dec.atoms, ens.config.contrast),
        pixel_size=ps,
        device=device,
        precision=precision,
        mode=mode,  # type: ignore[arg-type]
        tile=tile,
        batch_size=batch_size,
        progress=progress,
    )
    pred = decompose(
        maps,
        class_names=ens.config.class_names,
        keep_members=keep_members,
        threads=torch.get_num_threads(),
    )
    raw = np.asarray(image, dtype=np.float64)
    raw = raw if raw.ndim == 2 else raw[0]
    c = ens.config
    sep = settings.min_separation_A
    atoms, rejected = consensus_atoms(
        pred,
        maps,
        raw,
        pixel_size=ps,
        min_separation_A=sep if sep is not None else c.min_separation_A,
        threshold=settings.threshold,
        label_radius_A=c.label_radius_A,
        p_min=settings.p_min,
        refine=settings.refine,
        contrast=dec.atoms,
        positions=settings.positions,
        sigma_model=ens.calibration.sigma if calibrated and ens.calibration else None,
        threads=torch.get_num_threads(),
    )
    if calibrated and ens.calibration is not None:
        with stage("sigma"):
            atoms, rejected = ens.calibration.apply_both(atoms, rejected)
    regions = None
    if settings.regions != "off":
        atoms, rejected, regions = apply_regions(
            raw, atoms, rejected, rule=settings.regions, contrast=dec.atoms
        )
    if p_real_min is not None:
        low = atoms["p_real"].to_numpy(float) < p_real_min
        if low.any():
            rejected = pd.concat([rejected, atoms[low]], ignore_index=True)
            atoms = atoms[~low].reset_index(drop=True)
            logger.debug("%d candidates below p_real %.2f rejected", int(low.sum()), p_real_min)
    # debug: one line per frame between the progress bar's updates; the counts are in the
    # result, and the command line prints them once for the whole run
    logger.debug(
        "found %d atoms (%d more below p_detect %.2f)", len(atoms), len(rejected), settings.p_min
    )
    return FindResult(atoms, rejected, pred, ps, dec, regions=regions)


def _stacked(
    frames: list[tuple[np.ndarray, dict[str, Any]]],
    ens: Ensemble,
    cfg: FindSettings,
    ps: float,
    opts: dict[str, Any],
    signal_type: str | None = None,
) -> FindResult:
    """The results of several frames as one, the columns of ``frames``' dicts first; the
    first frame decides ``contrast="auto"`` for all (one warning, one polarity)."""
    atoms, rejected = [], []
    first: ContrastDecision | None = None
    seconds: dict[str, float] = {}
    for frame, keys in frames:
        res = find_frame(frame, ens, settings=cfg, pixel_size=ps, signal_type=signal_type, **opts)
        _add_seconds(seconds, res.seconds)
        if first is None:
            first = res.contrast
            cfg = replace(cfg, contrast=first.atoms) if first is not None else cfg
        for table, out in ((res.atoms, atoms), (res.rejected, rejected)):
            t = table.copy()
            for pos, (k, v) in enumerate(keys.items()):
                t.insert(pos, k, v)
            out.append(t)
    return FindResult(
        pd.concat(atoms, ignore_index=True),
        pd.concat(rejected, ignore_index=True),
        None,
        ps,
        first,
        seconds,
    )


def _add_seconds(total: dict[str, float], more: dict[str, float]) -> None:
    for k, v in more.items():
        total[k] = total.get(k, 0.0) + v


def _find_files(
    inputs: str | PathLike[str] | Sequence[str | PathLike[str]],
    ens: Ensemble,
    cfg: FindSettings,
    pixel_size: float | None,
    signal: str | int | None,
    opts: dict[str, Any],
) -> FindResult:
    with record_stages() as read:
        with stage("read"):
            images = read_frames(inputs, model=ens, pixel_size=pixel_size, signal=signal)
        several = len(images) > 1
        results = []
        for im in images:
            frames = []
            for i in range(im.n_frames):
                with stage("read"):
                    f = im.frame(i)
                if im.is_stack:
                    check_frame(f, im.path, f"frame {i}")
                keys = {"file": str(im.path)} if several else {}
                if im.is_stack or several:
                    keys["frame"] = i
                frames.append((f, keys))
            try:
                if frames and not frames[0][1]:  # one single image: its own result, maps and all
                    results.append(
                        find_frame(
                            frames[0][0],
                            ens,
                            settings=cfg,
                            pixel_size=im.pixel_size,
                            signal_type=im.signal_type,
                            **opts,
                        )
                    )
                else:
                    results.append(_stacked(frames, ens, cfg, im.pixel_size, opts, im.signal_type))
            except ValueError as exc:
                if str(exc).startswith(str(im.path)):
                    raise
                raise ValueError(f"{im.path}: {exc}") from None
    seconds = dict(read)
    for r in results:
        _add_seconds(seconds, r.seconds)
    if len(results) == 1:
        return replace(results[0], seconds=seconds)
    return FindResult(
        pd.concat([r.atoms for r in results], ignore_index=True),
        pd.concat([r.rejected for r in results], ignore_index=True),
        None,
        results[0].pixel_size,
        results[0].contrast,
        seconds,
    )


def find_table(
    image: np.ndarray | str | PathLike[str] | Sequence[str | PathLike[str]],
    /,
    **kwargs: Any,
) -> pd.DataFrame:
    """The atoms table of :func:`find` (``atomlens.find``): an image, a stack, or files in;
    keywords as in :func:`find`.

    Returns
    -------
    pandas.DataFrame
        The atoms (with ``frame`` first for a stack, ``file`` and ``frame`` for several
        files), calibrated ``p_real`` and σ when the ensemble has a calibration.
    """
    return find(image, **kwargs).atoms


def find_atoms(
    image: np.ndarray,
    /,
    *,
    model: Model | Ensemble | str | PathLike[str],
    pixel_size: float,
    settings: FindSettings | None = None,
    device: str | torch.device = "cpu",
    precision: Precision = "auto",
    threshold: float = 0.5,
    min_separation_A: float | None = None,
    refine: bool = True,
    positions: Positions = "auto",
    contrast: str = "auto",
    tile: int | None = None,
    batch_size: int = 8,
    progress: bool | Callable[..., object] = False,
) -> pd.DataFrame:
    """Find the atoms in an image with one network, without an ensemble's consensus.

    σ (``sigma_x_A``/``sigma_y_A``) comes from the model's calibrated σ model when it has
    one (``calibration.json``, as :func:`find` uses it), else the default one. A single
    network's atoms get no ``p_real`` (an ensemble of several members gets :func:`find`'s
    atoms, with it).

    Parameters
    ----------
    image : ndarray of shape (H, W) or (C, H, W)
        The raw image (any linear intensity unit).
    model : Model, Ensemble or path
        A :class:`atomlens.ensemble.Model`, an :class:`atomlens.ensemble.Ensemble` (of
        several members: then the atoms of :func:`find` are returned) or a model directory.
    pixel_size : float
        Pixel size of the image [Å/px]; the image is resampled to the model's sampling
        for the network and the atoms are placed and fitted on the original pixels.
    settings : FindSettings, optional
        The locate settings at once (``p_min`` and ``p_real_min`` only matter for an
        ensemble of several members).
    device : str or torch.device
        ``"cpu"``, ``"cuda"`` or ``"auto"``.
    precision : {"auto", "float32", "bfloat16"}
        The network's arithmetic, as in :func:`find`.
    threshold, min_separation_A, refine, positions, contrast
        As in :func:`find`. A column the border cuts takes, with "network", the mean of
        the fit's centre and its cut disk's (:func:`atomlens.locate.locate_atoms`;
        ``benchmarks/refine_positions.py``).
    tile, batch_size : int
        Tile side [px at the model's sampling] (None: the whole image up to 512 px a side,
        else the fewest tiles of at most that) and tiles per forward pass.
    progress : bool or callable
        Progress bar over tiles.

    Returns
    -------
    pandas.DataFrame
        The atoms table of :func:`atomlens.locate.locate_atoms`.
    """
    cfg = FindSettings.resolve(
        settings,
        threshold=threshold,
        min_separation_A=min_separation_A,
        refine=refine,
        positions=positions,
        contrast=contrast,
    )
    ps = validate_pixel_size(pixel_size)
    check_precision(precision)
    # the model's σ model (its calibration's) makes σ, and with it positions="auto"'s choice,
    # as in find: without it a calibrated model got the default σ model
    calibration = model.calibration if isinstance(model, Model) else None
    if not isinstance(model, Model):
        ens = as_ensemble(model)
        calibration = ens.calibration
        if len(ens) > 1:
            return find_frame(
                image,
                ens,
                settings=cfg,
                pixel_size=ps,
                device=device,
                precision=precision,
                tile=tile,
                batch_size=batch_size,
                progress=progress,
            ).atoms
        model = ens.member(0)
    mdl = model
    check_field_of_view(np.shape(image), ps, mdl.config.pixel_size_A)
    check_resampling(np.shape(image), ps, mdl.config.pixel_size_A, n_maps=mdl.n_maps)
    dec = decide_contrast(image, mdl, cfg, pixel_size=ps)
    probs = mdl.predict(
        network_input(image, dec.atoms, mdl.config.contrast),
        pixel_size=ps,
        device=device,
        precision=precision,
        tile=tile,
        batch_size=batch_size,
        progress=progress,
    )
    raw = np.asarray(image, dtype=np.float64)
    raw = raw if raw.ndim == 2 else raw[0]
    c = mdl.config
    sep = cfg.min_separation_A
    atoms = locate_atoms(
        probs,
        raw,
        pixel_size=ps,
        class_names=c.class_names,
        min_separation_A=sep if sep is not None else c.min_separation_A,
        threshold=cfg.threshold,
        label_radius_A=c.label_radius_A,
        refine=cfg.refine,
        contrast=dec.atoms,
        positions=cfg.positions,
        sigma_model=calibration.sigma if calibration is not None else None,
        threads=torch.get_num_threads(),
    )
    logger.info("found %d atoms", len(atoms))
    return atoms
