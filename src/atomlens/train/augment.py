"""Batched augmentation on tensors: geometry on images and masks together, then intensity.

All draws come from one ``torch.Generator``, so a batch's augmentation is fixed by its
seed (training can be resumed exactly).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

__all__ = ["Augmentation", "augment_batch", "normalize_batch"]


@dataclass(frozen=True)
class Augmentation:
    """Ranges of the augmentations (0 switches one off).

    Parameters
    ----------
    flips : bool
        Random horizontal/vertical flips and 90° rotations.
    scale : float
        Zoom drawn in [1 − scale, 1 + scale] (image and masks together).
    scan_jitter_px : float
        Standard deviation of random per-row horizontal shifts [px].
    blur_px : float
        Largest extra Gaussian blur σ [px].
    gamma : float
        Intensity exponent drawn in [1 − gamma, 1 + gamma] (detector non-linearity).
    background : float
        Largest linear background ramp added, as a fraction of the image's mean.
    noise : float
        Largest extra Gaussian noise, as a fraction of the image's standard deviation.
    line_noise : float
        Largest scan-line noise, as a fraction of the image's standard deviation: each row
        (the fast-scan direction) gets its own offset and a gain drawn around 1, as real
        scans show (the streaks of the Si [110] and DyScO3 images). Rows, not columns:
        the flips and rotations that follow turn it to any direction.
    correlated_noise : float
        Largest spatially correlated noise, as a fraction of the image's standard
        deviation: white noise blurred by a Gaussian of σ drawn in
        [0.5, ``correlated_noise_px``] px, added to half of the images. Real scans carry
        such noise (probe-oversampled pixels, drift-corrected or filtered images: the real
        gold grain boundary's noise correlates 0.89 between neighbouring pixels), and a
        model that has only seen white noise reads its blobs as columns.
    correlated_noise_px : float
        Largest correlation σ of that noise [px], within 0.5–8 (the crops must be wider
        than 6 σ).
    """

    flips: bool = True
    scale: float = 0.1
    scan_jitter_px: float = 0.3
    blur_px: float = 0.8
    gamma: float = 0.2
    background: float = 0.3
    noise: float = 0.3
    line_noise: float = 0.0
    correlated_noise: float = 0.0
    correlated_noise_px: float = 2.0

    def __post_init__(self) -> None:
        bad = []
        if not self.correlated_noise >= 0:
            bad.append(f"correlated_noise must be ≥ 0, got {self.correlated_noise!r}")
        if not 0.5 <= self.correlated_noise_px <= 8:
            bad.append(
                f"correlated_noise_px must be within 0.5–8 px, got {self.correlated_noise_px!r}"
            )
        if bad:
            raise ValueError("invalid Augmentation: " + "; ".join(bad) + ".")

    def to_dict(self) -> dict[str, float | bool]:
        """JSON-ready dictionary; the correlated noise only when it is on, so that files of
        models trained without it read (and their checkpoints resume) in older versions."""
        d = asdict(self)
        if self.correlated_noise == 0:
            del d["correlated_noise"], d["correlated_noise_px"]
        return d


def _u(g: torch.Generator, n: int, lo: float, hi: float) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


def _blur(x: torch.Tensor, sig: torch.Tensor, largest: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(B, C, H, W)`` with σ ``sig[b]`` [px] per image."""
    b, c, h, w = x.shape
    r = max(1, math.ceil(3 * largest))
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    k1 = torch.exp(-0.5 * t[None] ** 2 / sig.clamp(min=1e-3)[:, None] ** 2)
    k1 = k1 / k1.sum(dim=1, keepdim=True)
    xb = x.reshape(1, b * c, h, w)
    kx = k1.repeat_interleave(c, 0)[:, None, None, :]
    ky = k1.repeat_interleave(c, 0)[:, None, :, None]
    xb = F.conv2d(F.pad(xb, (r, r, 0, 0), mode="reflect"), kx, groups=b * c)
    xb = F.conv2d(F.pad(xb, (0, 0, r, r), mode="reflect"), ky, groups=b * c)
    return xb.reshape(b, c, h, w)


def normalize_batch(x: torch.Tensor, /, *, low: float = 1.0, high: float = 99.8) -> torch.Tensor:
    """Per-image, per-channel percentile normalisation of ``(B, C, H, W)`` (as at inference)."""
    flat = x.flatten(2)
    q = torch.quantile(flat, torch.tensor([low / 100, high / 100], dtype=x.dtype), dim=2)
    lo, hi = q[0][..., None, None], q[1][..., None, None]
    return (x - lo) / torch.clamp(hi - lo, min=1e-12)


def augment_batch(
    image: torch.Tensor, masks: torch.Tensor, /, *, aug: Augmentation, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment a batch of raw images ``(B, C, H, W)`` and their masks ``(B, K + 1, H, W)``.

    Returns raw (not yet normalised) images and masks whose channels still sum to 1 (or to 0
    where the loss ignores a pixel, see :func:`segmentation_loss`).
    """
    g = generator
    b, _, h, w = image.shape
    x, m = image.float(), masks.float()
    if aug.line_noise > 0:  # before the flips, so that it runs along rows or columns
        x = x - x.amin(dim=(2, 3), keepdim=True)
        std = x.std(dim=(2, 3), keepdim=True)
        level = _u(g, b, 0, aug.line_noise)[:, None, None, None]
        offset = torch.randn(b, 1, h, 1, generator=g) * level * std
        gain = 1 + torch.randn(b, 1, h, 1, generator=g) * level * 0.2
        x = x * gain + offset
    # Geometry: one sampling grid per image for zoom + scan jitter, applied to both.
    if aug.scale > 0 or aug.scan_jitter_px > 0:
        zoom = _u(g, b, 1 - aug.scale, 1 + aug.scale) if aug.scale > 0 else torch.ones(b)
        ys = torch.linspace(-1, 1, h)
        xs = torch.linspace(-1, 1, w)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        grid = torch.stack([gx, gy], dim=-1)[None].repeat(b, 1, 1, 1) / zoom[:, None, None, None]
        if aug.scan_jitter_px > 0:
            shift = torch.randn(b, h, generator=g) * aug.scan_jitter_px * 2 / max(w - 1, 1)
            grid[..., 0] += shift[:, :, None]
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=True)
        m = F.grid_sample(m, grid, mode="bilinear", padding_mode="reflection", align_corners=True)
        m = m / m.sum(dim=1, keepdim=True).clamp(min=1e-6)
    if aug.flips:
        for i in range(b):
            k = int(torch.randint(4, (1,), generator=g))
            flip = bool(torch.randint(2, (1,), generator=g))
            xi, mi = torch.rot90(x[i], k, (1, 2)), torch.rot90(m[i], k, (1, 2))
            if flip:
                xi, mi = xi.flip(-1), mi.flip(-1)
            x[i], m[i] = xi, mi
    # Intensity (raw domain, before normalisation).
    x = x - x.amin(dim=(2, 3), keepdim=True)
    if aug.blur_px > 0:
        x = _blur(x, _u(g, b, 0.0, aug.blur_px), aug.blur_px)
    if aug.gamma > 0:
        gam = _u(g, b, 1 - aug.gamma, 1 + aug.gamma)[:, None, None, None]
        scale = x.amax(dim=(2, 3), keepdim=True).clamp(min=1e-12)
        x = (x / scale).clamp(min=0) ** gam * scale
    if aug.background > 0:
        mean = x.mean(dim=(2, 3), keepdim=True)
        amp = _u(g, b, 0, aug.background)[:, None, None, None] * mean
        ang = _u(g, b, 0, 2 * math.pi)
        yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
        ramp = torch.cos(ang)[:, None, None] * xx + torch.sin(ang)[:, None, None] * yy
        ramp = ramp - ramp.amin(dim=(1, 2), keepdim=True)
        x = x + amp * ramp[:, None]
    if aug.correlated_noise > 0:  # drawn only when on: older recipes keep their draws
        largest = aug.correlated_noise_px
        on = (torch.rand(b, generator=g) < 0.5).to(x.dtype)[:, None, None, None]
        level = _u(g, b, 0, aug.correlated_noise)[:, None, None, None] * on
        n = _blur(torch.randn(x.shape, generator=g), _u(g, b, 0.5, largest), largest)
        n = n / n.std(dim=(2, 3), keepdim=True).clamp(min=1e-12)
        x = x + level * x.std(dim=(2, 3), keepdim=True) * n
    if aug.noise > 0:
        std = x.std(dim=(2, 3), keepdim=True)
        level = _u(g, b, 0, aug.noise)[:, None, None, None] * std
        x = x + level * torch.randn(x.shape, generator=g)
    return x, m
