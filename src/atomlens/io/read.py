"""Read microscope images and stacks with their calibration, and refuse bad ones clearly."""

from __future__ import annotations

import logging
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from atomlens._shared.validate import validate_pixel_size
from atomlens.io.image import Image, PixelSizeSource
from atomlens.io.rsciio_files import (
    RSCIIO_SUFFIXES,
    _choose,
    _plugin,
    read_rsciio,
    signal_to_image_parts,
)
from atomlens.io.units import length_unit_to_A

__all__ = ["SUFFIXES", "Image", "read", "read_image"]

logger = logging.getLogger(__name__)

RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
SUFFIXES = (
    ".npy",
    ".npz",
    ".tif",
    ".tiff",
    *RASTER_SUFFIXES,
    ".h5",
    ".hdf5",
    *RSCIIO_SUFFIXES,
)


# ----------------------------------------------------------------------- per format
def _tiff_pixel_size(tif: Any) -> tuple[float | None, dict[str, Any]]:
    page = tif.pages[0]
    meta: dict[str, Any] = {}
    ij = tif.imagej_metadata or {}
    meta.update({k: v for k, v in ij.items() if isinstance(v, str | int | float)})
    if tif.is_ome and tif.ome_metadata:
        import re

        m = re.search(r'PhysicalSizeX="([0-9.eE+-]+)"', tif.ome_metadata)
        u = re.search(r'PhysicalSizeXUnit="([^"]+)"', tif.ome_metadata)
        if m:
            per = length_unit_to_A(u.group(1) if u else "µm")  # OME's default unit is µm
            if per is not None:
                return float(m.group(1)) * per, meta
    tags = page.tags
    if "XResolution" not in tags:
        return None, meta
    num, den = tags["XResolution"].value
    if not num:
        return None, meta
    px_per_unit = num / den
    per = length_unit_to_A(ij.get("unit", ""))
    if per is not None:
        return per / px_per_unit, meta
    res_unit = int(tags["ResolutionUnit"].value) if "ResolutionUnit" in tags else 1
    if res_unit == 3:  # centimetre
        return 1e8 / px_per_unit, meta
    return None, meta  # inches (a scan/print setting) or no unit: not a physical calibration


def _read_tiff(p: Path) -> tuple[Any, float | None, dict[str, Any]]:
    import tifffile

    with tifffile.TiffFile(p) as tif:
        size, meta = _tiff_pixel_size(tif)
        series = tif.series[0]
        shape, dtype = tuple(series.shape), series.dtype
        rgb = series.keyframe.photometric == tifffile.PHOTOMETRIC.RGB
        if len(shape) == 2 or rgb:
            return tif.asarray(), size, meta
        n_pages = len(series.pages)
    frame_shape = shape[-2:]
    n = int(np.prod(shape[:-2]))
    if n != n_pages:  # frames not one per page (rare): read it whole
        return tifffile.imread(p).reshape(-1, *frame_shape), size, meta
    import dask
    import dask.array as da

    def page(i: int) -> np.ndarray:
        return tifffile.imread(p, key=i)

    frames = [
        da.from_delayed(dask.delayed(page)(i), shape=frame_shape, dtype=dtype) for i in range(n)
    ]
    meta["reader"] = "tifffile (one frame per page, lazily)"
    return da.stack(frames), size, meta


def _read_raster(p: Path) -> tuple[np.ndarray, dict[str, Any]]:
    from PIL import Image as PILImage

    with PILImage.open(p) as im:
        im.load()
        meta: dict[str, Any] = {"mode": im.mode, "reader": "pillow"}
        if im.mode in ("L", "I", "F", "I;16", "I;16B", "I;16L"):
            return np.asarray(im), meta
        rgb = np.asarray(im.convert("RGB"))
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
            return rgb[..., 0], meta
        meta["converted"] = f"{im.mode} colour converted to grey (ITU-R 601 luma)"
        logger.warning(
            "%s is a colour (%s) image; converted to grey. Colour maps do not map back to "
            "intensity: use the detector's raw data where you can.",
            p,
            im.mode,
        )
        return np.asarray(im.convert("L")), meta


def _read_hdf5(p: Path, signal: str | int | None) -> dict[str, Any]:
    try:
        import h5py
    except ImportError:
        raise ImportError(
            f"{p}: reading HDF5 needs h5py; pip install 'atomlens[formats]'."
        ) from None
    f = h5py.File(p, "r")
    if "Experiments" in f:  # a HyperSpy file with another extension
        f.close()

        sigs = _plugin("hspy", p).file_reader(str(p), lazy=True)
        return signal_to_image_parts(_choose(list(sigs), p, signal), p)
    found: list[tuple[str, Any]] = []
    f.visititems(
        lambda name, obj: (
            found.append((name, obj))
            if isinstance(obj, h5py.Dataset) and obj.ndim in (2, 3)
            else None
        )
    )
    names = [n for n, _ in found]
    if isinstance(signal, str):
        found = [(n, d) for n, d in found if n == signal or n.endswith("/" + signal)]
    if len(found) != 1:
        f.close()
        raise ValueError(
            f"{p} holds {len(names)} 2-D/3-D datasets {names}; name the one to read "
            "(signal='path/in/file')."
        )
    name, ds = found[0]
    meta: dict[str, Any] = {"reader": "h5py", "dataset": name}
    size = None
    for key in ("pixel_size_A", "pixel_size"):
        if key in ds.attrs:
            unit = ds.attrs.get("pixel_size_unit", "Å" if key.endswith("_A") else None)
            per = length_unit_to_A(unit.decode() if isinstance(unit, bytes) else unit)
            if per is not None:
                size = float(ds.attrs[key]) * per
            break
    if ds.ndim == 2:
        data = np.asarray(ds[()])
        f.close()
    else:
        import dask.array as da

        data = da.from_array(ds, chunks=(1, *ds.shape[1:]))  # keeps the file open
    return {"data": data, "pixel_size": size, "metadata": meta}


_MAGIC = [
    (b"\x89PNG", ".png"),
    (b"\xff\xd8\xff", ".jpg"),
    (b"II*\x00", ".tif"),
    (b"MM\x00*", ".tif"),
    (b"II+\x00", ".tif"),
    (b"\x89HDF", ".h5/.hspy/.emd"),
    (b"\x93NUMPY", ".npy"),
    (b"PK\x03\x04", ".npz"),
    (b"BM", ".bmp"),
]


def _looks_like(p: Path) -> str:
    """' It looks like a PNG file: rename it.' when the content says another format."""
    with open(p, "rb") as f:
        head = f.read(8)
    for magic, ext in _MAGIC:
        if head.startswith(magic) and p.suffix.lower() not in ext.split("/"):
            return f" Its content is a {ext} file: rename it to that extension."
    return ""


# ------------------------------------------------------------------------ checks
def _check_frame(a: np.ndarray, p: Path, what: str = "the image") -> None:
    if a.size == 0:
        raise ValueError(f"{p}: {what} has no pixels (shape {a.shape}); the file is empty.")
    bad = ~np.isfinite(a)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ValueError(
            f"{p}: {what} has {int(bad.sum())} NaN/inf pixels (first at row {r}, column "
            f"{c}); fix the export, or replace them (numpy.nan_to_num) or crop them away."
        )
    lo, hi = float(a.min()), float(a.max())
    if lo == hi:
        raise ValueError(
            f"{p}: every pixel of {what} is {lo:g}; it holds no signal (blank frame, beam "
            "blanked, or the wrong detector channel)."
        )


def check_frame(a: np.ndarray, path: str | PathLike[str], what: str = "the image") -> None:
    """Raise a clear ``ValueError`` if a frame is empty, constant or has NaN/inf pixels.

    Parameters
    ----------
    a : ndarray
        The frame.
    path : path
        Its file (for the message).
    what : str
        How the message names the frame (e.g. ``"frame 7"``).
    """
    _check_frame(np.asarray(a), Path(path), what)


def _as_image_array(a: Any, p: Path, suffix: str) -> Any:
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        if a.dtype == bool:
            a = a.astype(np.uint8)
        else:
            raise ValueError(f"{p} has pixels of type {a.dtype}; expected real numbers.")
    shape = tuple(a.shape)
    if len(shape) > 2:
        squeezed = tuple(s for s in shape if s != 1)
        if len(squeezed) == 2:
            a = a.reshape(squeezed)
            shape = squeezed
    if len(shape) == 3 and shape[-1] in (3, 4) and min(shape[:2]) > 4:
        arr = np.asarray(a)
        if np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2]):
            return arr[..., 0].astype(np.float32)
        raise ValueError(
            f"{p} is a {shape[-1]}-channel colour image of shape {shape}; atomlens needs the "
            "single-channel intensity. Export the detector's raw data (DM/Velox/TIFF "
            "32-bit), or save it as PNG/JPEG, which atomlens converts to grey."
        )
    if len(shape) not in (2, 3):
        raise ValueError(
            f"{p} holds an array of shape {shape}; atomlens needs one 2-D image or a stack "
            "of them (N, H, W)."
        )
    if len(shape) == 2:
        return np.asarray(a, dtype=np.float32)
    import dask.array as da

    d = a if isinstance(a, da.Array) else da.from_array(a, chunks=(1, *shape[1:]))
    return d.astype(np.float32)


# -------------------------------------------------------------------------- read
def read(
    path: str | PathLike[str],
    /,
    *,
    pixel_size: float | None = None,
    signal: str | int | None = None,
) -> Image:
    """Read an image or a stack of frames, with its pixel size and metadata.

    Formats: ``.dm3``/``.dm4`` (Digital Micrograph), ``.emd`` (Velox and Berkeley),
    ``.ser`` (TIA), ``.mrc``, ``.hspy`` (HyperSpy) through RosettaSciIO
    (``pip install 'atomlens[formats]'``); ``.h5``/``.hdf5`` (HyperSpy, or a plain HDF5 file
    with one 2-D/3-D dataset, via h5py); ``.tif``/``.tiff`` (ImageJ and OME pixel size, a
    resolution in cm); ``.png``/``.jpg``/``.bmp`` (8/16-bit; colour converted to grey);
    ``.npy``/``.npz``.

    A stack (movie, series, navigation axes) comes back as a lazy ``(N, H, W)``
    :mod:`dask.array` with one chunk per frame and is never loaded whole; a single image as
    numpy. Both float32.

    Parameters
    ----------
    path : str or path-like
        The file.
    pixel_size : float, optional
        Pixel size [Å/px]; always overrides the file's calibration.
    signal : str or int, optional
        Which image of a file that holds several (e.g. ``"HAADF"`` in a Velox EMD, or a
        dataset path in HDF5); by default HAADF, then other dark field, then the first.

    Returns
    -------
    Image

    Raises
    ------
    FileNotFoundError
        No such file.
    ImportError
        The format needs the ``formats`` extra.
    ValueError
        Unknown extension, empty, truncated or corrupt file, colour data, NaN/inf pixels,
        a constant image, or a calibration outside 0.001–50 Å/px. Every message names the
        file and what to do.
    """

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file; check the path.")
    if p.is_dir():
        raise IsADirectoryError(f"{p} is a directory; pass an image file.")
    suffix = p.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(
            f"{p}: unsupported file type {suffix or '(none)'}; atomlens reads "
            f"{', '.join(SUFFIXES)}. Convert the image (e.g. save as TIFF from Fiji)."
        )
    if p.stat().st_size == 0:
        raise ValueError(f"{p} is empty (0 bytes): the export or copy did not finish; redo it.")
    if pixel_size is not None:
        pixel_size = validate_pixel_size(pixel_size, name="`pixel_size`")
    size: float | None = None
    meta: dict[str, Any] = {}
    original: dict[str, Any] = {}
    signal_type: str | None = None
    try:
        if suffix == ".npy":
            data = np.load(p, mmap_mode="r", allow_pickle=False)
        elif suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                keys = list(z.keys())
                if len(keys) != 1:
                    raise ValueError(f"{p} holds {len(keys)} arrays {keys}; save one image.")
                data = z[keys[0]]
        elif suffix in (".tif", ".tiff"):
            data, size, meta = _read_tiff(p)
        elif suffix in RASTER_SUFFIXES:
            data, meta = _read_raster(p)
        else:
            parts = (
                _read_hdf5(p, signal)
                if suffix in (".h5", ".hdf5")
                else read_rsciio(p, signal=signal)
            )
            data, size = parts["data"], parts["pixel_size"]
            meta, signal_type = parts["metadata"], parts.get("signal_type")
            original = parts.get("original_metadata", {})
    except (ImportError, ValueError) as exc:
        if str(exc).startswith(str(p)):
            raise
        hint = _looks_like(p) or " Is the file complete?"
        raise ValueError(f"{p} could not be read as {suffix}: {exc}.{hint}") from None
    except Exception as exc:  # truncated or corrupt files raise many kinds of errors
        raise ValueError(
            f"{p} could not be read as {suffix} ({type(exc).__name__}: {exc}); "
            "the file may be truncated, corrupt, or not really a "
            f"{suffix} file.{_looks_like(p)}"
        ) from None
    a = _as_image_array(data, p, suffix)
    if a.ndim == 2:
        _check_frame(a, p)
    source: PixelSizeSource = "unknown"
    if size is not None:
        try:
            size = validate_pixel_size(size)
        except ValueError:
            if pixel_size is None:
                raise ValueError(
                    f"{p}: its metadata gives a pixel size of {size:g} Å/px, which is not an "
                    "atomic-resolution sampling; pass the right one with `pixel_size` (Å/px)."
                ) from None
        source = "metadata"
    if pixel_size is not None:
        size, source = pixel_size, "user"
    meta.setdefault("format", suffix)
    return Image(a, size, source, p, meta, signal_type, original)


def read_image(
    path: str | PathLike[str],
    /,
    *,
    pixel_size: float | None = None,
    signal: str | int | None = None,
) -> Image:
    """Read one 2-D image (:func:`read` for a file that must not be a stack).

    Raises
    ------
    ValueError
        For a stack, naming how many frames it holds.
    """
    im = read(path, pixel_size=pixel_size, signal=signal)
    if im.is_stack:
        raise ValueError(
            f"{im.path} holds a stack of {im.n_frames} frames; pass one image, or use "
            "atomlens.io.read for stacks."
        )
    return im
