"""Microscope formats through RosettaSciIO: Digital Micrograph, EMD, SER, MRC, HyperSpy.

RosettaSciIO (the I/O library of HyperSpy) is an optional extra
(``pip install 'atomlens[formats]'``). Its readers return "signal dictionaries" (data,
axes with scale and units, metadata); this module turns one of them into an
:class:`~atomlens.io.image.Image`, lazily: a stack stays a dask array.
"""

from __future__ import annotations

import importlib
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from atomlens.io.units import axis_pixel_size

__all__ = ["RSCIIO_SUFFIXES", "read_rsciio", "signal_to_image_parts"]

logger = logging.getLogger(__name__)

RSCIIO_SUFFIXES = {
    ".dm3": "digitalmicrograph",
    ".dm4": "digitalmicrograph",
    ".emd": "emd",
    ".ser": "tia",
    ".mrc": "mrc",
    ".hspy": "hspy",
}

LAZY_ABOVE_BYTES = 256 * 2**20

# the order in which the image signals of a multi-detector file are preferred
_PREFERRED = ("HAADF", "ADF", "DF", "BF", "ABF")


def _plugin(name: str, path: Path) -> Any:
    try:
        return importlib.import_module(f"rsciio.{name}")
    except ImportError as exc:
        raise ImportError(
            f"{path}: reading {path.suffix} files needs RosettaSciIO; install it with "
            f"pip install 'atomlens[formats]' (missing: {exc.name or exc})."
        ) from None


def _title(sig: dict) -> str:
    general = sig.get("metadata", {}).get("General", {})
    return str(general.get("title", "") or "")


def _signal_type(sig: dict) -> str | None:
    st = sig.get("metadata", {}).get("Signal", {}).get("signal_type", "")
    title = _title(sig)
    for key in _PREFERRED:
        if key.lower() in title.lower().replace("-", " ").split() or title.upper() == key:
            return key
    return str(st) if st else (title or None)


def _is_image(sig: dict) -> bool:
    axes = sig.get("axes", [])
    return sum(1 for a in axes if not a.get("navigate", False)) == 2 and len(axes) == np.ndim(
        sig["data"]
    )


def _choose(signals: list[dict], path: Path, signal: str | int | None) -> dict:
    images = [s for s in signals if _is_image(s)]
    titles = [_title(s) or f"#{i}" for i, s in enumerate(images)]
    if not images:
        raise ValueError(
            f"{path} holds no image (only spectra or other signals); atomlens needs a 2-D "
            "image or a stack of them."
        )
    if isinstance(signal, int):
        if not 0 <= signal < len(images):
            raise ValueError(
                f"{path} holds {len(images)} images {titles}; signal {signal} does not exist."
            )
        return images[signal]
    if isinstance(signal, str):
        hits = [s for s, t in zip(images, titles, strict=True) if signal.lower() in t.lower()]
        if not hits:
            raise ValueError(f"{path} holds no image titled {signal!r}; it holds {titles}.")
        return hits[0]
    for key in _PREFERRED:
        for s in images:
            if _signal_type(s) == key:
                if len(images) > 1:
                    logger.info("%s holds %s; reading %s", path, titles, _title(s) or key)
                return s
    if len(images) > 1:
        logger.info("%s holds %s; reading the first (choose with signal=)", path, titles)
    return images[0]


def signal_to_image_parts(sig: dict, path: Path) -> dict[str, Any]:
    """Data, pixel size and metadata of one RosettaSciIO signal dictionary.

    Parameters
    ----------
    sig : dict
        A signal dictionary (``data``, ``axes``, ``metadata``, ``original_metadata``).
    path : pathlib.Path
        The file (for messages).

    Returns
    -------
    dict
        ``data`` (2-D numpy, or a lazy ``(N, H, W)`` dask array), ``pixel_size`` [Å/px] or
        None, ``signal_type``, ``metadata``, ``original_metadata``.
    """
    import dask.array as da

    data = sig["data"]
    axes = sig["axes"]
    sig_axes = [a for a in axes if not a.get("navigate", False)]
    meta: dict[str, Any] = {"reader": "rosettasciio", "title": _title(sig)}
    y_ax, x_ax = sig_axes[-2], sig_axes[-1]
    scale_x, scale_y = float(x_ax.get("scale", 1.0)), float(y_ax.get("scale", 1.0))
    unit = x_ax.get("units")
    if unit is not None and not isinstance(unit, str):
        unit = str(unit)
    meta["axes_scale"] = [scale_y, scale_x]
    meta["axes_units"] = [y_ax.get("units"), unit]
    pixel_size, assumption = axis_pixel_size(scale_x, unit)
    if assumption is not None:
        meta["pixel_size_assumption"] = assumption
        logger.warning("%s: %s", path, assumption)
    if pixel_size is not None and abs(scale_y - scale_x) > 0.01 * abs(scale_x):
        meta["non_square_pixels"] = True
        logger.warning(
            "%s: pixels are not square (x %g, y %g); using the x scale", path, scale_x, scale_y
        )
    nav_shape = tuple(data.shape[:-2])
    if nav_shape and int(np.prod(nav_shape)) > 1:
        arr = da.asarray(data).reshape((-1, *data.shape[-2:])).astype(np.float32)
        arr = arr.rechunk((1, -1, -1))
        meta["navigation_shape"] = list(nav_shape)
    else:
        arr = np.asarray(
            data.compute() if hasattr(data, "compute") else data, dtype=np.float32
        ).reshape(data.shape[-2:])
    return {
        "data": arr,
        "pixel_size": pixel_size,
        "signal_type": _signal_type(sig),
        "metadata": meta,
        "original_metadata": sig.get("original_metadata", {}) or {},
    }


def read_rsciio(path: Path, *, signal: str | int | None = None) -> dict[str, Any]:
    """Read a file with its RosettaSciIO plugin (lazily); see :func:`signal_to_image_parts`.

    Parameters
    ----------
    path : pathlib.Path
        A ``.dm3``, ``.dm4``, ``.emd``, ``.ser``, ``.mrc`` or ``.hspy`` file.
    signal : str or int, optional
        Which image of a multi-signal file (title substring, or index among the images);
        by default HAADF, then other dark-field, then bright-field, then the first.
    """
    plugin = _plugin(RSCIIO_SUFFIXES[path.suffix.lower()], path)
    # small files are read at once (no file handle left open); large ones lazily
    lazy = path.stat().st_size > LAZY_ABOVE_BYTES
    with warnings.catch_warnings():
        # rsciio's MRC reader (0.15) leaves its header file handle for the GC to close
        warnings.simplefilter("ignore", ResourceWarning)
        signals = plugin.file_reader(str(path), lazy=lazy)
    if isinstance(signals, dict):
        signals = [signals]
    return signal_to_image_parts(_choose(list(signals), path, signal), path)
