"""Images to and from HyperSpy signals (optional: ``pip install hyperspy``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from atomlens._shared.validate import validate_pixel_size
from atomlens.io.image import Image
from atomlens.io.units import axis_pixel_size

logger = logging.getLogger(__name__)

__all__ = ["from_hyperspy", "to_hyperspy"]


def _hs() -> Any:
    try:
        import hyperspy.api as hs
    except ImportError:
        raise ImportError("to_hyperspy/from_hyperspy need HyperSpy: pip install hyperspy") from None
    return hs


def to_hyperspy(image: Image, /) -> Any:
    """The image (or stack) as a HyperSpy ``Signal2D`` with its calibration in nm.

    Parameters
    ----------
    image : Image
        From :func:`atomlens.io.read`.

    Returns
    -------
    hyperspy.signals.Signal2D
        Lazy for a stack; signal axes ``y, x`` with scale ``pixel_size / 10`` nm (or
        uncalibrated when the pixel size is unknown); ``metadata.Signal.signal_type`` and
        the title from the file.
    """
    hs = _hs()
    if image.is_stack:
        sig = hs.signals.Signal2D(image.data).as_lazy()
    else:
        sig = hs.signals.Signal2D(np.asarray(image.data))
    for ax in sig.axes_manager.signal_axes:
        if image.pixel_size is not None:
            ax.scale = image.pixel_size / 10.0
            ax.units = "nm"
    sig.axes_manager.signal_axes[0].name = "x"
    sig.axes_manager.signal_axes[1].name = "y"
    if image.is_stack:
        sig.axes_manager.navigation_axes[0].name = "frame"
    sig.metadata.General.title = str(image.metadata.get("title") or image.path.name)
    if image.signal_type:
        sig.metadata.Signal.signal_type = str(image.signal_type)
    return sig


def from_hyperspy(signal: Any, /, *, pixel_size: float | None = None) -> Image:
    """An :class:`Image` from a HyperSpy ``Signal2D`` (navigation dimensions become frames).

    Parameters
    ----------
    signal : hyperspy.signals.Signal2D
        The signal; its x axis gives the pixel size when its unit is a length.
    pixel_size : float, optional
        Overrides the calibration [Å/px].

    Returns
    -------
    Image
    """

    ax = signal.axes_manager.signal_axes
    if len(ax) != 2:
        raise ValueError(f"the signal has {len(ax)} signal axes; an image has 2 (Signal2D).")
    size, assumption = axis_pixel_size(float(ax[0].scale), ax[0].units)
    source = "metadata" if size is not None else "unknown"
    meta = {"title": str(signal.metadata.get_item("General.title", "")), "reader": "hyperspy"}
    if assumption is not None and pixel_size is None:
        meta["pixel_size_assumption"] = assumption
        logger.warning("%s: %s", meta["title"] or "the signal", assumption)
    if pixel_size is not None:
        size, source = validate_pixel_size(pixel_size), "user"
    data = signal.data
    h, w = data.shape[-2:]
    if data.ndim > 2:
        import dask.array as da

        data = da.asarray(data).reshape((-1, h, w)).astype(np.float32).rechunk((1, h, w))
    else:
        data = np.asarray(data, dtype=np.float32)
    title = str(signal.metadata.get_item("General.title", ""))
    st = signal.metadata.get_item("Signal.signal_type", "") or None
    return Image(
        data,
        size,
        source,  # type: ignore[arg-type]
        Path(title or "hyperspy-signal"),
        meta,
        st,
        {},
    )
