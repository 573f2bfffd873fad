"""Find atoms in files, folders, globs and stacks, and write every output in one place
(:func:`find_files`, what ``atomlens find`` runs), or the results of one image
(:func:`save_find_results`). Outputs are built under a temporary name and moved into place,
so an interrupted run leaves nothing half-written.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from atomlens._shared.atomic import atomic_directory, check_output_directory
from atomlens._shared.device import (
    Precision,
    check_precision,
    inference_precision,
    resolve_device,
)
from atomlens.ensemble import Ensemble, as_ensemble
from atomlens.io import Image, check_frame, expand_inputs
from atomlens.io.csv_text import write_csv
from atomlens.io.tables import TableWriter, limit_heap_growth, read_table, unrefined_phrase
from atomlens.locate.atoms import Positions
from atomlens.pipeline.distributed import find_frames
from atomlens.pipeline.finder import FindResult, decide_contrast, find_frame
from atomlens.pipeline.inputs import read_frames
from atomlens.pipeline.model_choice import default_model_for
from atomlens.pipeline.sanity import suitability
from atomlens.pipeline.settings import FindSettings
from atomlens.report.figures import save_atoms_png, save_uncertainty_png
from atomlens.report.html import write_report

__all__ = ["BatchResult", "find_files", "save_find_results"]

logger = logging.getLogger(__name__)

MAPS_FILE = "maps.h5"


@dataclass
class BatchResult:
    """What :func:`find_files` found and wrote.

    Attributes
    ----------
    out : pathlib.Path
        The output directory.
    frames : int
        Frames processed.
    seconds : float
        Wall time.
    files : list of dict
        Per input: path, frames, pixel size and its source, and ``contrast``: whether its
        atoms were taken as bright or dark and why (e.g. "dark (from the image: intensity
        skewness -0.50)"), and ``warnings``: why the model may not suit it
        (:func:`atomlens.pipeline.sanity.suitability`, also logged), empty when none.
    n_atoms, n_rejected : int
        Rows of ``atoms.csv`` and ``rejected.csv``.
    class_counts : dict
        Atoms per class.
    unrefined_counts : dict
        Atoms per class whose Gaussian fit failed (``refined`` False): their position is
        the network's, their σ from the local signal (:mod:`atomlens.locate.sigma`).
    atoms : pandas.DataFrame
        All atoms, with ``file`` and ``frame`` first: read from ``out/atoms.parquet``
        (or ``atoms.csv``) when first asked for, so that a long stack never has to fit in
        memory.
    rejected : pandas.DataFrame
        All candidates below ``p_min`` (same columns), read likewise.
    """

    out: Path
    frames: int
    seconds: float
    files: list[dict[str, Any]] = field(default_factory=list)
    n_atoms: int = 0
    n_rejected: int = 0
    class_counts: dict[str, int] = field(default_factory=dict)
    unrefined_counts: dict[str, int] = field(default_factory=dict)

    def unrefined_summary(self) -> str:
        """One phrase: the share of atoms per class whose fit failed, e.g. ``"fit failed
        for Dy 33.6 %, O 2.0 %"``; ``"every fit converged"`` when none failed."""
        return unrefined_phrase(self.class_counts, self.unrefined_counts)

    @cached_property
    def atoms(self) -> pd.DataFrame:
        return read_table(self.out / "atoms.csv", self.out / "atoms.parquet")

    @cached_property
    def rejected(self) -> pd.DataFrame:
        return read_table(self.out / "rejected.csv", self.out / "rejected.parquet")


def _maps_writer(path: Path) -> Any:
    try:
        import h5py  # optional: the formats extra
    except ImportError:
        logger.warning(
            "%s is not written: it needs h5py (pip install 'atomlens[formats]'); `maps=False` "
            "leaves it out on purpose",
            path.name,
        )
        return None
    return h5py.File(path, "w")


def find_files(
    inputs: str | PathLike[str] | Sequence[str | PathLike[str]],
    /,
    *,
    model: Ensemble | str | PathLike[str] | None = None,
    out: str | PathLike[str],
    pixel_size: float | Mapping[str, float] | None = None,
    signal: str | int | None = None,
    settings: FindSettings | None = None,
    device: str = "auto",
    precision: Precision = "auto",
    threshold: float = 0.5,
    min_separation_A: float | None = None,
    p_min: float = 0.5,
    p_real_min: float | str | None = None,
    positions: Positions = "auto",
    contrast: str = "auto",
    regions: str = "off",
    overwrite: bool = False,
    maps: bool = True,
    report: bool = True,
    progress: bool | Callable[..., Any] = False,
    client: Any = None,
    chunk: int = 4,
) -> BatchResult:
    """Find atoms in images and stacks; write tables, maps, figures and an HTML report.

    This is what ``atomlens find`` runs. Frames are read one at a time from lazy stacks, so
    memory does not grow with the number of frames; the outputs are written into a
    temporary directory next to ``out`` and moved into place at the end, so an interrupted
    run leaves nothing half-written. Written into ``out``:

    - ``atoms.csv`` and ``atoms.parquet``: one row per atom, ``file`` and ``frame`` first;
      ``rejected.csv``: candidates below ``p_min`` (or ``p_real_min``);
    - ``maps.h5`` (with h5py): per file, ``foreground`` probability, ``epistemic`` and
      ``entropy`` maps of shape (frames, H, W), float16, written frame by frame;
    - for the first frame of each file: ``<name>.overlay.png``, ``<name>.uncertainty.png``
      and ``<name>.report.html`` (one self-contained page: atoms by class and confidence,
      the uncertainty map, counts, nearest-neighbour histogram in Å, settings, model
      provenance, atomlens version). With a single input the names drop the ``<name>.``
      prefix.

    Parameters
    ----------
    inputs : path, str or sequence of them
        Files, folders or glob patterns (:func:`atomlens.pipeline.read_frames`).
    model : Ensemble, Model or path, optional
        The model or ensemble, its directory or a bundled name; by default the bundled
        one :func:`atomlens.pipeline.default_model_for` picks for ``inputs`` and
        ``contrast`` (``haadf-generic``, or ``abf-any`` for bright-field files), logged.
    out : path
        Output directory (refused if it exists and is not empty, unless ``overwrite``).
    pixel_size : float or mapping of str to float, optional
        [Å/px]; a number overrides every file's calibration, a mapping gives files their
        own (file name or stem → Å/px, ``"*"`` for the rest; see
        :func:`atomlens.pipeline.read_frames`). A file without one gets a pixel size
        estimated from its lattice.
    signal : str or int, optional
        Which image of multi-signal files (:func:`atomlens.io.read`).
    settings : FindSettings, optional
        The locate settings at once; then leave ``threshold`` … ``positions`` at their
        defaults.
    device, precision, threshold, min_separation_A, p_min, p_real_min, positions, contrast, regions
        As in :func:`atomlens.pipeline.find`; ``contrast="auto"`` is decided once per file
        (from its signal type, or else its first frame) and recorded in ``files`` and the
        report.
    overwrite : bool
        Replace an existing ``out``.
    maps, report : bool
        Write ``maps.h5`` / the PNGs and HTML report.
    progress : bool or callable
        Progress bar over frames (frames/s).
    client : dask.distributed.Client, optional
        Map chunks of ``chunk`` frames to the cluster's workers
        (:func:`atomlens.pipeline.find_frames`; ``model`` must then be a directory the
        workers can read). The first frame of each file is also processed here for its
        figures and report; ``maps.h5`` and ``rejected.csv`` are written in-process only.
    chunk : int
        Frames per Dask task.

    Returns
    -------
    BatchResult
    """
    t0 = time.perf_counter()
    cfg = FindSettings.resolve(
        settings,
        threshold=threshold,
        min_separation_A=min_separation_A,
        p_min=p_min,
        p_real_min=p_real_min,
        positions=positions,
        contrast=contrast,
        regions=regions,
    )
    check_precision(precision)
    check_output_directory(out, overwrite=overwrite)
    if model is None:
        choice = default_model_for(inputs, contrast=cfg.contrast, signal=signal)
        logger.warning("no model given: %s", choice.reason)
        model = choice.path
    if client is not None and not isinstance(model, str | PathLike):
        raise TypeError("with a Dask client, pass the model as a directory the workers can read.")
    files = expand_inputs([inputs] if isinstance(inputs, str | PathLike) else inputs)
    ens = as_ensemble(model)
    dev = resolve_device(device)
    images = read_frames(files, model=ens, pixel_size=pixel_size, signal=signal)
    total = sum(im.n_frames for im in images)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        make = progress if callable(progress) else tqdm
        bar = make(total=total, desc="frames", unit="frame")
    single = len(images) == 1
    stems = _unique_stems(files)
    info: list[dict[str, Any]] = []
    report_settings = {
        "threshold": cfg.threshold,
        "min_separation_A": cfg.min_separation_A
        if cfg.min_separation_A is not None
        else ens.config.min_separation_A,
        "p_min": cfg.p_min,
        "p_real_min": cfg.p_real_min,
        "positions": cfg.positions,
        "members": len(ens),
        "device": str(dev),
        # with a cluster, "auto" is decided on each worker's own CPU
        "precision": "auto (each worker's)"
        if client is not None and precision == "auto"
        else inference_precision(precision, dev),
    }
    if total > 1:
        limit_heap_growth()
    with atomic_directory(Path(out), overwrite=overwrite) as tmp:
        w = _Writers(tmp, maps=maps and client is None, bar=bar)
        try:
            for im, stem in zip(images, stems, strict=True):
                dec = decide_contrast(
                    im.frame(0),
                    ens,
                    cfg,
                    pixel_size=im.pixel_size,
                    signal_type=im.signal_type,
                    name=str(im.path),
                )
                fcfg = replace(cfg, contrast=dec.atoms)  # one polarity for all its frames
                if client is not None:
                    w.atoms.write(_on_cluster(im, model, client, chunk, dev, fcfg, precision))
                    w.advance(im.n_frames)
                frames = im.n_frames if client is None else int(report)
                prefix = "" if single else f"{stem}."
                warnings: list[str] = []
                for i in range(frames):
                    res, frame = _find_frame_of(im, i, ens, fcfg, dev, precision)
                    if client is None:
                        w.write(im, i, stem, res)
                    if i == 0:  # one look per file: a stack is one sample
                        warnings = suitability(
                            frame,
                            res.atoms,
                            model_name=_model_name(ens),
                            name=str(im.path),
                            pixel_size=im.pixel_size,
                        )
                        for text in warnings:
                            logger.warning("%s", text)
                    if i == 0 and report:
                        _write_figures(
                            tmp,
                            prefix,
                            frame,
                            res,
                            im,
                            ens,
                            {**report_settings, "contrast": str(dec)},
                        )
                    w.advance(1)
                info.append(
                    {
                        "file": str(im.path),
                        "frames": im.n_frames,
                        "pixel_size_A": im.pixel_size,
                        "pixel_size_source": im.pixel_size_source,
                        "contrast": str(dec),
                        "warnings": warnings,
                        **im.metadata,
                    }
                )
        finally:
            w.close()
    seconds = time.perf_counter() - t0
    logger.debug("%d frames in %.1f s (%.2f frames/s)", total, seconds, total / max(seconds, 1e-9))
    return BatchResult(
        Path(out),
        total,
        seconds,
        info,
        n_atoms=w.atoms.rows,
        n_rejected=w.rejected.rows,
        class_counts=dict(w.atoms.classes.most_common()),
        unrefined_counts=dict(w.atoms.unrefined),
    )


class _Writers:
    """What :func:`find_files` writes as it goes: the two tables, ``maps.h5`` (when asked
    for and h5py is there) and the progress bar."""

    def __init__(self, tmp: Path, *, maps: bool, bar: Any) -> None:
        self.h5 = _maps_writer(tmp / MAPS_FILE) if maps else None
        self.atoms = TableWriter(tmp, "atoms")
        self.rejected = TableWriter(tmp, "rejected", parquet=False)
        self.bar = bar

    def write(self, im: Image, i: int, stem: str, res: FindResult) -> None:
        """Frame ``i`` of ``im``: its rows of both tables (``file`` and ``frame`` first) and
        its maps."""
        for table, writer in ((res.atoms, self.atoms), (res.rejected, self.rejected)):
            t = table.copy()
            t.insert(0, "frame", i)
            t.insert(0, "file", str(im.path))
            writer.write(t)
        if self.h5 is not None:
            group = self.h5[stem] if stem in self.h5 else self.h5.create_group(stem)
            _write_maps(group, res, i, im.n_frames, im.pixel_size)

    def advance(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.h5 is not None:
            self.h5.close()
        if self.bar is not None:
            self.bar.close()
        self.atoms.close()
        self.rejected.close()


def _model_name(ens: Ensemble) -> str:
    """The model as a warning names it: what it was trained on."""
    mats = (ens.config.provenance or {}).get("materials") or []
    return f"trained on {', '.join(map(str, mats))}" if mats else "of unknown training"


def _find_frame_of(
    im: Image, i: int, ens: Ensemble, cfg: FindSettings, dev: Any, precision: Precision
) -> tuple[FindResult, np.ndarray]:
    """The result of frame ``i`` of ``im`` and the frame; errors name the file."""
    frame = im.frame(i)
    if im.is_stack:
        check_frame(frame, im.path, f"frame {i}")
    try:
        res = find_frame(
            frame, ens, settings=cfg, pixel_size=im.pixel_size, device=dev, precision=precision
        )
        return res, frame
    except ValueError as exc:
        if str(exc).startswith(str(im.path)):
            raise
        raise ValueError(f"{im.path}: {exc}") from None


def _on_cluster(
    im: Image,
    model: Any,
    client: Any,
    chunk: int,
    dev: Any,
    cfg: FindSettings,
    precision: Precision,
) -> pd.DataFrame:
    frames = im.data if im.is_stack else np.asarray(im.data)[None]
    t = find_frames(
        frames,
        model=model,
        pixel_size=im.pixel_size,
        settings=cfg,
        client=client,
        chunk=chunk,
        device=str(dev),
        precision=precision,
    )
    if len(t) == 0:
        return t
    t.insert(0, "file", str(im.path))
    return t


def _unique_stems(files: list[Path]) -> list[str]:
    stems: list[str] = []
    for f in files:
        s = f.name
        k = 2
        while s in stems:
            s = f"{f.name}-{k}"
            k += 1
        stems.append(s)
    return stems


def _write_maps(group: Any, res: Any, i: int, n: int, pixel_size: float) -> None:
    pred = res.prediction
    fields = {
        "foreground": 1.0 - pred.mean[0],
        "epistemic": pred.mutual_information,
        "entropy": pred.predictive_entropy,
    }
    for name, arr in fields.items():
        if name not in group:
            ds = group.create_dataset(
                name,
                shape=(n, *arr.shape),
                dtype="float16",
                chunks=(1, *arr.shape),
                compression="gzip",
                compression_opts=4,
            )
            ds.attrs["pixel_size_A"] = pixel_size
            ds.attrs["unit"] = "probability" if name == "foreground" else "nats"
        group[name][i] = arr.astype(np.float16)


def _write_figures(
    tmp: Path, prefix: str, frame: np.ndarray, res: Any, im: Any, ens: Any, settings: dict
) -> None:
    name = im.path.name + (" (frame 0)" if im.is_stack else "")
    save_atoms_png(
        tmp / f"{prefix}overlay.png",
        frame,
        atoms=res.atoms,
        title=f"{name}: {len(res.atoms)} atoms",
        pixel_size=im.pixel_size,
    )
    n = res.prediction.n_members
    save_uncertainty_png(
        tmp / f"{prefix}uncertainty.png",
        res.prediction.mutual_information,
        atoms=res.atoms,
        rejected=res.rejected,
        title=f"epistemic uncertainty, {n} member{'s' if n > 1 else ''}",
        pixel_size=im.pixel_size,
    )
    src = im.pixel_size_source
    if "pixel_size_assumption" in im.metadata:
        src += f" ({im.metadata['pixel_size_assumption']})"
    write_report(
        tmp / f"{prefix}report.html",
        frame,
        res.atoms,
        pixel_size=im.pixel_size,
        rejected=res.rejected,
        epistemic=res.prediction.mutual_information,
        title=f"atomlens: {name}",
        settings={
            "file": str(im.path),
            "frames in file": im.n_frames,
            "pixel size source": src,
            "signal": im.signal_type or "—",
            **settings,
        },
        sigma_validation=getattr(getattr(ens, "calibration", None), "sigma_validation", None),
        p_real_validation=getattr(getattr(ens, "calibration", None), "p_real_validation", None),
        regions=getattr(res, "regions", None),
        provenance={
            "model": ens.config.to_dict() if hasattr(ens.config, "to_dict") else {},
            "members": getattr(ens, "member_provenance", None),
            "calibration": getattr(ens, "calibration", None).__dict__
            if getattr(ens, "calibration", None) is not None
            else None,
        },
    )


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
    :class:`FindResult`, ``rejected.csv`` (candidates below ``p_min``) and, for one image,
    ``uncertainty.png`` (the epistemic map with both). For the result of a stack or of
    several files, ``image`` is the first frame and the overlay shows its atoms.

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
    final = Path(out)
    atoms = result.atoms if isinstance(result, FindResult) else result
    img = np.asarray(image)
    img = img if img.ndim == 2 else img[0]
    with atomic_directory(final, overwrite=overwrite) as tmp:
        write_csv(atoms, tmp / "atoms.csv")
        shown = atoms  # of a stack or several files, the first image's atoms are drawn
        for key in ("file", "frame"):
            if key in shown and len(shown):
                shown = shown[shown[key] == shown[key].iloc[0]]
        save_atoms_png(tmp / "overlay.png", img, atoms=shown, title=title, pixel_size=pixel_size)
        if isinstance(result, FindResult):
            write_csv(result.rejected, tmp / "rejected.csv")
        if isinstance(result, FindResult) and result.prediction is not None:
            n = result.prediction.n_members
            save_uncertainty_png(
                tmp / "uncertainty.png",
                result.prediction.mutual_information,
                atoms=result.atoms,
                rejected=result.rejected,
                title=f"epistemic uncertainty, {n} member{'s' if n > 1 else ''}",
            )
    return final
