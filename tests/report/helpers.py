"""Reading PNGs and the pixels of rendered figures, for the report tests."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_png(png: bytes | Path, *, size: tuple[int, int] | None = None) -> np.ndarray:
    """The RGB pixels (H, W, 3) uint8 of a PNG, after checking it is one (and of ``size``,
    (width, height) in px, when given)."""
    from PIL import Image

    data = png.read_bytes() if isinstance(png, Path) else png
    assert data[:8] == PNG_SIGNATURE, "not a PNG file"
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "PNG"
        if size is not None:
            assert im.size == size, f"PNG of {im.size} px, expected {size}"
        return np.asarray(im.convert("RGB"))


def canvas_rgb(fig: Any) -> np.ndarray:
    """Draw ``fig`` (Agg) and return its pixels (H, W, 3) uint8."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def pixel_of(ax: Any, x: float, y: float, height_px: int) -> tuple[int, int]:
    """(row, column) of data point (x, y) of ``ax`` in the rendered figure, after a draw."""
    dx, dy = ax.transData.transform((x, y))
    return int(round(height_px - dy - 0.5)), int(round(dx - 0.5))


def colour_near(
    rgb: np.ndarray, row: int, col: int, colour: Any, *, radius: int = 4, cos: float = 0.995
) -> bool:
    """Whether some pixel within ``radius`` px of (row, col) has the hue of ``colour``
    (an RGB(A) tuple in 0–1): the same RGB direction, so that antialiasing against a black
    background (a scaling of the colour) still counts, at ≥ 25 % of its brightness."""
    c = np.asarray(colour, float)[:3] * 255
    win = rgb[
        max(row - radius, 0) : row + radius + 1, max(col - radius, 0) : col + radius + 1
    ].reshape(-1, 3)
    win = win.astype(float)
    norm = np.linalg.norm(win, axis=1)
    ok = norm >= 0.25 * np.linalg.norm(c)
    sim = (win[ok] @ c) / (norm[ok] * np.linalg.norm(c))
    return bool((sim >= cos).any())


def square_lattice(n: int, *, spacing_px: float, pixel_size: float, origin_px: float = 4.0):
    """An atoms table of an n × n square lattice (``x_px, y_px, x_A, y_A``)."""
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="xy")
    x = origin_px + spacing_px * i.ravel()
    y = origin_px + spacing_px * j.ravel()
    return pd.DataFrame({"x_px": x, "y_px": y, "x_A": x * pixel_size, "y_A": y * pixel_size})
