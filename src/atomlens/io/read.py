"""Read an image file and its pixel size."""

from __future__ import annotations

from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Literal

import numpy as np

__all__ = ["Image", "read_image"]

SUFFIXES = (".npy", ".npz", ".tif", ".tiff")
_UNIT_TO_A = {
    "nm": 10.0,
    "nanometer": 10.0,
    "micron": 1e4,
    "µm": 1e4,
    "um": 1e4,
    "\\u00b5m": 1e4,
    "å": 1.0,
    "a": 1.0,
    "angstrom": 1.0,
    "pm": 0.01,
}


@dataclass(frozen=True)
class Image:
    """An image with its calibration.

    Attributes
    ----------
    data : ndarray of shape (H, W), float32
        Pixel values.
    pixel_size : float or None
        Pixel size [Å/px], or None when the file does not say.
    pixel_size_source : {"metadata", "user", "unknown"}
        Where the pixel size came from.
    path : pathlib.Path
        The file.
    metadata : dict
        What the file said about itself.
    """

    data: np.ndarray
    pixel_size: float | None
    pixel_size_source: Literal["metadata", "user", "unknown"]
    path: Path
    metadata: dict[str, Any] = field(default_factory=dict)


def _tiff_pixel_size(tif: Any) -> tuple[float | None, dict[str, Any]]:
    page = tif.pages[0]
    meta: dict[str, Any] = {}
    ij = tif.imagej_metadata or {}
    meta.update({k: v for k, v in ij.items() if isinstance(v, str | int | float)})
    tags = page.tags
    if "XResolution" not in tags:
        return None, meta
    num, den = tags["XResolution"].value
    if not num:
        return None, meta
    px_per_unit = num / den
    unit = str(ij.get("unit", "")).strip().lower()
    if unit in _UNIT_TO_A:
        return _UNIT_TO_A[unit] / px_per_unit, meta
    res_unit = int(tags["ResolutionUnit"].value) if "ResolutionUnit" in tags else 1
    if res_unit == 3:  # centimetre
        return 1e8 / px_per_unit, meta
    return None, meta  # inches (a scan/print setting) or no unit: not a physical calibration


def read_image(path: str | PathLike[str], /, *, pixel_size: float | None = None) -> Image:
    """Read a 2-D image and its pixel size.

    Parameters
    ----------
    path : str or path-like
        ``.npy``, ``.npz`` (one array) or ``.tif``/``.tiff`` (ImageJ calibration in nm, µm
        or Å is read; a TIFF resolution in centimetres too).
    pixel_size : float, optional
        Overrides the file's calibration [Å/px].

    Returns
    -------
    Image

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Unknown extension, unreadable file, or not a single 2-D real image.
    """
    from atomlens._validate import validate_pixel_size

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file; check the path.")
    if p.is_dir():
        raise IsADirectoryError(f"{p} is a directory; pass an image file.")
    suffix = p.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(
            f"{p}: unsupported file type {suffix or '(none)'}; atomlens reads "
            f"{', '.join(SUFFIXES)} here. Convert the image (e.g. save as TIFF from Fiji)."
        )
    size: float | None = None
    meta: dict[str, Any] = {}
    try:
        if suffix == ".npy":
            data = np.load(p, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                keys = list(z.keys())
                if len(keys) != 1:
                    raise ValueError(f"{p} holds {len(keys)} arrays {keys}; save one image.")
                data = z[keys[0]]
        else:
            import tifffile

            with tifffile.TiffFile(p) as tif:
                data = tif.asarray()
                size, meta = _tiff_pixel_size(tif)
    except ValueError as exc:
        if str(exc).startswith(str(p)):
            raise
        raise ValueError(
            f"{p} could not be read as {suffix}: {exc}. Is the file complete?"
        ) from None
    except Exception as exc:  # truncated or corrupt files raise many kinds of errors
        raise ValueError(
            f"{p} could not be read as {suffix} ({type(exc).__name__}: {exc}); "
            "the file may be truncated or corrupt."
        ) from None
    a = np.asarray(data)
    a = np.squeeze(a) if a.ndim > 2 else a
    if a.ndim != 2:
        raise ValueError(
            f"{p} holds an array of shape {np.shape(data)}; atomlens needs one 2-D image "
            "(for RGB, save one channel; for stacks, one frame per file for now)."
        )
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise ValueError(f"{p} has pixels of type {a.dtype}; expected real numbers.")
    source: Literal["metadata", "user", "unknown"] = "metadata" if size else "unknown"
    if pixel_size is not None:
        size, source = validate_pixel_size(pixel_size), "user"
    return Image(a.astype(np.float32), size, source, p, meta)
