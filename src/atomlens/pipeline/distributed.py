"""Fan the frames of a stack out to a Dask cluster (or run them in-process, chunk by chunk)."""

from __future__ import annotations

from collections.abc import Callable
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from atomlens._shared.device import check_precision
from atomlens._shared.validate import validate_pixel_size
from atomlens.ensemble import Ensemble
from atomlens.pipeline.finder import find_frame
from atomlens.pipeline.settings import FindSettings

__all__ = ["find_frames"]

_WORKER_MODELS: dict[str, Ensemble] = {}

#: What :func:`find_frames` passes on to each frame's :func:`atomlens.pipeline.find`.
FRAME_OPTIONS = {"device", "precision", "mode", "tile", "batch_size"}


def _find_chunk(
    frames: np.ndarray, first: int, model_dir: str, settings: dict, opts: dict
) -> pd.DataFrame:
    """Find atoms in a chunk of frames (a Dask task; the model is loaded once per worker)."""
    ens = _WORKER_MODELS.get(model_dir)
    if ens is None:
        ens = _WORKER_MODELS[model_dir] = Ensemble.load(model_dir)
    cfg = FindSettings.from_dict(settings)
    tables = []
    for k, frame in enumerate(frames):
        atoms = find_frame(frame, ens, settings=cfg, **opts).atoms
        atoms.insert(0, "frame", first + k)
        tables.append(atoms)
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def find_frames(
    frames: np.ndarray,
    /,
    *,
    model: str | PathLike[str],
    pixel_size: float,
    settings: FindSettings | None = None,
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
    settings : FindSettings, optional
        The locate settings (default: :class:`FindSettings`'s defaults); the separate
        keywords ``threshold`` … ``positions`` are accepted as well.
    client : dask.distributed.Client, optional
        Map chunks of frames to the cluster's workers (Dask schedules them); in-process
        otherwise.
    chunk : int
        Frames per task.
    progress : bool or callable
        Progress bar over chunks (in-process only).
    **kwargs
        ``device``, ``precision``, ``mode``, ``tile``, ``batch_size`` (as in
        :func:`atomlens.pipeline.find`), or the settings one by one (``threshold``,
        ``min_separation_A``, ``p_min``, ``p_real_min``, ``refine``, ``positions``).

    Returns
    -------
    pandas.DataFrame
        The atoms of all frames, ``frame`` first.
    """
    setting_names = set(FindSettings.__dataclass_fields__)
    allowed = FRAME_OPTIONS | setting_names
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise TypeError(f"unknown options {unknown}; allowed: {sorted(allowed)}.")
    cfg = FindSettings.resolve(settings, **{k: v for k, v in kwargs.items() if k in setting_names})
    check_precision(kwargs.get("precision", "auto"))  # here, not in the workers
    if np.ndim(frames) != 3:
        raise ValueError(f"frames must be (F, H, W), got shape {np.shape(frames)}.")
    ps = validate_pixel_size(pixel_size)
    n = len(frames)
    starts = list(range(0, n, max(1, int(chunk))))
    opts = {"pixel_size": ps, **{k: v for k, v in kwargs.items() if k in FRAME_OPTIONS}}
    model_dir = str(Path(model))
    task = (model_dir, cfg.to_dict(), opts)
    if client is None:
        it = starts
        if progress:
            from tqdm.auto import tqdm

            bar = progress if callable(progress) else tqdm
            it = bar(starts, desc="frames", unit="chunk")
        parts = [_find_chunk(np.asarray(frames[s : s + chunk]), s, *task) for s in it]
    else:
        futures = [
            client.submit(_find_chunk, np.asarray(frames[s : s + chunk]), s, *task, pure=False)
            for s in starts
        ]
        parts = client.gather(futures)
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
