"""Prediction on images of any size: overlapping tiles, blended without seams."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "AUTO_TILE",
    "PIXELS_PER_PASS",
    "auto_tile",
    "blend_window",
    "predict_tiled",
    "tile_starts",
]

Progress = bool | Callable[..., object]

#: Largest tile side [px] ``tile=None`` chooses. On a CPU a network's time per pixel grows
#: with the tile beyond about 512² px (its activations leave the caches: 1.34, 1.39, 1.79
#: and 3.1 µs/px at 256, 512, 1024 and 2048 px for the default U-Net on one core), while
#: smaller tiles repeat more of their overlap; ``benchmarks/speed.py`` measures both.
AUTO_TILE = 512

#: Pixels per forward pass: tiles are batched up to this (and ``batch_size``).
PIXELS_PER_PASS = 512 * 512


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of side ``tile`` covering ``length`` px with ≥ ``overlap`` px.

    Examples
    --------
    >>> tile_starts(500, 256, 64)
    [0, 122, 244]
    >>> tile_starts(100, 256, 64)
    [0]
    """
    if length <= tile:
        return [0]
    n = math.ceil((length - overlap) / (tile - overlap))
    return [round(i * (length - tile) / (n - 1)) for i in range(n)] if n > 1 else [0]


def auto_tile(length: int, /, *, overlap: int, multiple: int = 8, largest: int = AUTO_TILE) -> int:
    """Tile side [px] covering ``length`` px with the fewest tiles of at most ``largest`` px.

    The whole length (rounded up to ``multiple``) when it fits in one tile; otherwise the
    smallest side with which that many tiles, overlapping by ``overlap`` px, cover it, so
    that no tile repeats more of its neighbours than the overlap needs.

    Parameters
    ----------
    length : int
        Image side [px].
    overlap : int
        Overlap between neighbouring tiles [px].
    multiple : int
        The network needs sides that are multiples of this [px].
    largest : int
        Largest tile side [px].

    Returns
    -------
    int
        The tile side [px], a multiple of ``multiple``.

    Examples
    --------
    >>> auto_tile(500, overlap=64), auto_tile(2048, overlap=64)
    (504, 464)
    >>> tile_starts(2048, 464, 64)
    [0, 396, 792, 1188, 1584]
    """
    largest = max(int(math.ceil(largest / multiple) * multiple), 2 * multiple)
    if length <= largest:
        return int(math.ceil(length / multiple) * multiple)
    overlap = min(overlap, largest // 2)
    n = math.ceil((length - overlap) / (largest - overlap))
    return int(math.ceil((length + (n - 1) * overlap) / n / multiple) * multiple)


def _ramp(n: int, overlap: int, *, start: bool = True, end: bool = True) -> np.ndarray:
    # The outer half of the overlap is (almost) discarded: there the network saw the
    # tile's zero padding within its receptive field. The inner half ramps up smoothly.
    # Sides on the image border keep weight 1 (no other tile covers them).
    r = np.ones(n)
    if overlap > 0:
        dead = overlap // 2
        live = overlap - dead
        x = (np.arange(live) + 0.5) / live
        up = np.concatenate([np.zeros(dead), 0.5 - 0.5 * np.cos(np.pi * x)])
        if start:
            r[:overlap] = np.minimum(r[:overlap], up)
        if end:
            r[-overlap:] = np.minimum(r[-overlap:], up[::-1])
    return np.maximum(r, 1e-6)


def blend_window(
    height: int,
    width: int,
    overlap: int,
    *,
    sides: tuple[bool, bool, bool, bool] = (True, True, True, True),
) -> np.ndarray:
    """Separable weight ``(height, width)`` for blending overlapping tiles.

    1 in the middle; over the outer ``overlap`` px of each side in ``sides`` (top, bottom,
    left, right), ≈ 0 in the outer half (predictions there saw the tile's padding) and a
    raised-cosine ramp in the inner half. Never below 1e-6.

    Examples
    --------
    >>> w = blend_window(16, 16, 4)
    >>> float(w[8, 8]), bool(w[0, 0] < w[3, 3] < 1)
    (1.0, True)
    """
    top, bottom, left, right = sides
    return np.outer(
        _ramp(height, overlap, start=top, end=bottom), _ramp(width, overlap, start=left, end=right)
    ).astype(np.float32)


def _pad_to(t: torch.Tensor, h: int, w: int) -> torch.Tensor:
    ph, pw = h - t.shape[-2], w - t.shape[-1]
    if ph == 0 and pw == 0:
        return t
    mode = "reflect" if ph < t.shape[-2] and pw < t.shape[-1] else "replicate"
    return F.pad(t, (0, pw, 0, ph), mode=mode)


@torch.no_grad()
def predict_tiled(
    image: np.ndarray,
    /,
    *,
    predict_batch: Callable[[torch.Tensor], torch.Tensor],
    n_out: int,
    multiple: int = 8,
    tile: int | None = 256,
    overlap: int = 64,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    progress: Progress = False,
) -> np.ndarray:
    """Apply a network to a whole image through overlapping, blended tiles.

    Parameters
    ----------
    image : ndarray of shape (C, H, W), float32
        The normalised image.
    predict_batch : callable
        Maps a tensor ``(B, C, T, T)`` on ``device`` to per-pixel outputs ``(B, n_out, T, T)``
        (probabilities, not logits: they are averaged across overlaps).
    n_out : int
        Output channels.
    multiple : int
        The network needs sides that are multiples of this [px].
    tile : int or None
        Tile side [px]; rounded up to a multiple of ``multiple``. Images smaller than a tile
        are padded (reflected) to the next multiple and predicted in one pass. None: per
        side, the whole side up to :data:`AUTO_TILE` px, else the fewest tiles of at most
        that which overlap by no more than ``overlap`` (:func:`auto_tile`).
    overlap : int
        Overlap between neighbouring tiles [px]; predictions are blended across it with a
        window that ignores the outer half of each overlap, so tiled and whole-image
        predictions agree exactly when the overlap is at least the network's receptive
        field (less is usually fine: the field's outer part carries little weight).
    batch_size : int
        Tiles per forward pass, at most :data:`PIXELS_PER_PASS` px of them.
    device : str or torch.device
        Where to run.
    progress : bool or callable
        Show a progress bar (``True``: tqdm) or wrap the tile batches with this tqdm-like
        callable.

    Returns
    -------
    ndarray of shape (n_out, H, W), float32
    """
    a = np.asarray(image, dtype=np.float32)
    if a.ndim != 3:
        raise ValueError(f"image must be (C, H, W), got shape {a.shape}.")
    _c, h, w = a.shape
    if tile is None:
        overlap = max(int(overlap), 0)
        th = auto_tile(h, overlap=overlap, multiple=multiple)
        tw = auto_tile(w, overlap=overlap, multiple=multiple)
        overlap = int(min(overlap, min(th, tw) // 2))
    else:
        tile = int(math.ceil(tile / multiple) * multiple)
        overlap = int(min(max(overlap, 0), tile // 2))
        th = tile if h > tile else int(math.ceil(h / multiple) * multiple)
        tw = tile if w > tile else int(math.ceil(w / multiple) * multiple)
    batch_size = max(1, min(int(batch_size), PIXELS_PER_PASS // (th * tw)))
    t = _pad_to(torch.from_numpy(a)[None], max(h, th), max(w, tw))[0]
    ys, xs = tile_starts(h, th, overlap), tile_starts(w, tw, overlap)
    corners = [(y, x) for y in ys for x in xs]
    single = len(corners) == 1
    acc = torch.zeros((n_out, t.shape[-2], t.shape[-1]))
    wsum = torch.zeros((t.shape[-2], t.shape[-1]))
    batches = [corners[i : i + batch_size] for i in range(0, len(corners), batch_size)]
    it = batches
    if progress:
        bar = progress if callable(progress) else _tqdm()
        it = bar(batches, desc="tiles", unit="batch", leave=False)
    for batch in it:
        x = torch.stack([t[:, y : y + th, xx : xx + tw] for y, xx in batch]).to(device)
        out = predict_batch(x).float().cpu()
        if out.shape != (len(batch), n_out, th, tw):
            raise RuntimeError(
                f"predict_batch returned shape {tuple(out.shape)}, expected "
                f"{(len(batch), n_out, th, tw)}."
            )
        for k, (y, xx) in enumerate(batch):
            sides = (y > 0, y + th < h, xx > 0, xx + tw < w)
            win = torch.from_numpy(blend_window(th, tw, 0 if single else overlap, sides=sides))
            acc[:, y : y + th, xx : xx + tw] += out[k] * win
            wsum[y : y + th, xx : xx + tw] += win
    return (acc / wsum)[:, :h, :w].numpy()


def _tqdm():
    from tqdm.auto import tqdm

    return tqdm
