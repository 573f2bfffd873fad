"""Where a stream's frames come from: arrays in memory, a file (a stack read one frame at a
time) or a directory being filled (:func:`atomlens.elit.stream.watcher.watch`).

Files are read with :func:`atomlens.io.read`, as :func:`atomlens.pipeline.read_frames`
reads them, and a file without calibration gets its pixel size from the pipeline's
:func:`atomlens.pipeline.with_estimated_pixel_size`. ``read_frames`` itself is not called:
the stream estimates the pixel size once and keeps it for every later file without one
(so that the baseline stays valid), and it checks the field of view frame by frame and
skips a frame instead of refusing the whole file. A file or frame that cannot be read
becomes an :class:`Item` with an ``error`` rather than an exception.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from atomlens.elit.stream.config import StreamConfig
from atomlens.elit.stream.watcher import signature, watch
from atomlens.ensemble import Ensemble
from atomlens.io import Image, check_frame, read
from atomlens.pipeline import check_field_of_view, check_resampling, with_estimated_pixel_size

__all__ = ["FrameSource", "Item", "checked_frame"]

logger = logging.getLogger(__name__)


@dataclass
class Item:
    """One frame of the source, or why it could not be read (``frame`` None, ``error``)."""

    index: int
    name: str
    frame: np.ndarray | None
    pixel_size: float | None
    error: str | None = None


def checked_frame(item: Item, /, *, model_pixel_size: float, n_maps: int = 1) -> np.ndarray:
    """The item's frame as a float32 (H, W) image that the model can look at.

    Raises
    ------
    ValueError
        Not one 2-D real image, NaN/inf pixels, a field of view too small at the
        model's sampling ``model_pixel_size`` [Å/px], or a resampling the model cannot use
        (``n_maps`` maps per frame, :func:`atomlens.pipeline.check_resampling`); the message
        names the frame.
    """
    a = np.asarray(item.frame)
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2:
        raise ValueError(f"{item.name} has shape {a.shape}; a frame must be 2-D (H, W).")
    if not (np.issubdtype(a.dtype, np.number) and not np.iscomplexobj(a)):
        raise ValueError(f"{item.name} has pixels of type {a.dtype}; expected real numbers.")
    a = a.astype(np.float32, copy=False)
    check_frame(a, item.name, "the frame")
    check_field_of_view(a.shape, float(item.pixel_size), model_pixel_size)
    check_resampling(a.shape, float(item.pixel_size), model_pixel_size, n_maps=n_maps)
    return a


class FrameSource:
    """The frames of a stream's ``source``, as :class:`Item` objects; iterate it once.

    Parameters
    ----------
    source : iterable of ndarray (H, W), ndarray (N, H, W) or (H, W), or path
        See :func:`atomlens.elit.stream.stream`.
    pixel_size : float, optional
        [Å/px], already validated; required for arrays, overrides the files' calibration.
    config : StreamConfig
        Its ``poll_s``, ``settle_s`` and ``idle_timeout_s`` for a directory.
    model : callable
        Returns the active ensemble, to estimate a pixel size against when a file has none.

    Raises
    ------
    FileNotFoundError
        A path that is neither a file nor a directory.
    ValueError, TypeError
        Arrays without ``pixel_size``, an array that is not one frame or a stack, or a
        source of another type.
    """

    def __init__(
        self,
        source: Any,
        /,
        *,
        pixel_size: float | None,
        config: StreamConfig,
        model: Callable[[], Ensemble],
    ) -> None:
        self.pixel_size = pixel_size
        self.config = config
        self._model = model
        self._estimated_ps: float | None = None
        self._items = self._open(source)

    def __iter__(self) -> Iterator[Item]:
        return self._items()

    def _open(self, source: Any) -> Callable[[], Iterator[Item]]:
        if isinstance(source, str | PathLike):
            p = Path(source)
            if p.is_dir():
                return lambda: self._directory_items(p)
            if p.is_file():
                return lambda: self._image_items(p, 0)
            raise FileNotFoundError(f"{p}: no such file or directory; check the path.")
        if self.pixel_size is None:
            raise ValueError("pixel_size (Å/px) is required when the frames are arrays.")
        if isinstance(source, np.ndarray):
            if source.ndim not in (2, 3):
                raise ValueError(
                    f"an array source must be one frame (H, W) or frames (N, H, W), got shape "
                    f"{source.shape}."
                )
            frames: Iterable[Any] = [source] if source.ndim == 2 else source
        elif isinstance(source, Iterable):
            frames = source
        else:
            raise TypeError(
                "source must be frames (an iterable of 2-D arrays), a directory or a file, "
                f"got {type(source).__name__}."
            )

        def items() -> Iterator[Item]:
            for i, f in enumerate(frames):
                yield Item(i, f"frame {i}", f, self.pixel_size)

        return items

    def _file_pixel_size(self, im: Image) -> float:
        if im.pixel_size is not None:
            return float(im.pixel_size)
        if self._estimated_ps is None:
            self._estimated_ps = float(with_estimated_pixel_size(im, self._model()).pixel_size)
        else:
            logger.info("%s: using the estimated %.4g Å/px", im.path, self._estimated_ps)
        return self._estimated_ps

    def _image_items(self, p: Path, start: int) -> Iterator[Item]:
        im = read(p, pixel_size=self.pixel_size)
        ps = self._file_pixel_size(im)
        if not im.is_stack:
            yield Item(start, p.name, im.frame(0), ps)
            return
        for i in range(im.n_frames):
            try:
                frame = im.frame(i)
            except Exception as exc:  # a truncated stack fails on the frames it lacks
                yield Item(start + i, f"{p.name}[{i}]", None, ps, f"unreadable: {exc}")
                continue
            yield Item(start + i, f"{p.name}[{i}]", frame, ps)

    def _directory_items(self, d: Path) -> Iterator[Item]:
        index = 0
        cfg = self.config
        watcher = watch(
            d, poll_s=cfg.poll_s, settle_s=cfg.settle_s, idle_timeout_s=cfg.idle_timeout_s
        )
        try:
            got = next(watcher)
            while True:
                f, sig = got
                items, err = [], None
                try:
                    items = list(self._image_items(f, index))
                except (ValueError, OSError) as exc:
                    err = str(exc)
                if err is not None and signature(f) != sig:
                    logger.debug("%s changed while it was read; looking at it again", f)
                    got = watcher.send(True)
                    continue
                if err is not None:
                    # reported once; looked at again only if the file is rewritten
                    items = [Item(index, f.name, None, None, err)]
                yield from items
                index += len(items)
                got = watcher.send(err is not None)
        except StopIteration:
            return
