"""Where training batches come from: the simulator, or the user's image/label pairs.

Every source returns the batch of step ``s`` as a pure function of ``(seed, s)``, which is
what lets an interrupted training run resume exactly where it stopped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import pandas as pd
import torch

from atomlens._shared.validate import validate_pixel_size
from atomlens.inference import resample
from atomlens.simulate.dataset import ConditionRanges, SimulatedDataset
from atomlens.simulate.labels import render_masks

__all__ = ["BatchSource", "PairSource", "SimulatedSource"]


class BatchSource(Protocol):
    """Anything that yields training batches by step number."""

    class_names: tuple[str, ...]
    in_channels: int

    def batch(self, step: int, /, *, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw images ``(B, C, H, W)`` and masks ``(B, K + 1, H, W)`` for ``step``."""
        ...

    def describe(self) -> dict:
        """JSON-ready description for the model's provenance."""
        ...


class SimulatedSource:
    """Batches simulated on the fly with exact labels.

    Parameters
    ----------
    ranges : ConditionRanges
        Conditions to draw from (``shape`` is the crop side; ``pixel_size_A`` the sampling
        range, normally the model's sampling ± 10–15 % as scale augmentation).
    seed : int
        Seed of the image stream.
    """

    in_channels = 1

    def __init__(self, ranges: ConditionRanges, *, seed: int = 0) -> None:
        self.ranges = ranges
        self.dataset = SimulatedDataset(ranges, seed=seed)
        self.class_names = tuple(self.dataset.class_names)
        self.seed = seed

    def batch(self, step: int, /, *, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Images ``step · B … step · B + B − 1`` of the stream."""
        items = [
            self.dataset._tensors(self.dataset.sample(step * batch_size + i), i)
            for i in range(batch_size)
        ]
        return torch.stack([it["image"] for it in items]), torch.stack(
            [it["masks"] for it in items]
        )

    def describe(self) -> dict:
        """Materials, ranges and seed."""
        r = self.ranges
        return {
            "source": "simulated",
            "seed": self.seed,
            "materials": list(r.materials),
            "defects": {k: [repr(d) for d in v] for k, v in r.defects.items()},
            "pixel_size_A": list(r.pixel_size_A),
            "dose_e_per_A2": list(r.dose_e_per_A2),
            "probe": r.probe,
            "film_thickness_A": list(r.film_thickness_A),
            "modes": list(r.modes),
            "shape": r.shape,
        }


class PairSource:
    """Random crops of user-supplied images with label masks or atom coordinates.

    Parameters
    ----------
    images : sequence of ndarray of shape (H, W) or (C, H, W)
        Raw images.
    labels : sequence of ndarray or pandas.DataFrame
        Per image: masks ``(K + 1, H, W)`` (background first), or an atoms table with
        ``x_px, y_px, class`` from which disk masks of ``label_radius_A`` are drawn.
    pixel_size : float or sequence of float
        Pixel size of the images [Å/px].
    model_pixel_size : float
        Sampling of the model [Å/px]; images and labels are resampled to it.
    class_names : sequence of str
        The K class names (tables' ``class`` values must be among them).
    crop : int
        Crop side at the model's sampling [px].
    seed : int
        Seed of the crop positions.
    label_radius_A : float
        Disk radius for coordinate labels [Å].
    """

    def __init__(
        self,
        images: Sequence[np.ndarray],
        labels: Sequence[np.ndarray | pd.DataFrame],
        *,
        pixel_size: float | Sequence[float],
        model_pixel_size: float,
        class_names: Sequence[str],
        crop: int = 128,
        seed: int = 0,
        label_radius_A: float = 0.5,
    ) -> None:
        if len(images) == 0 or len(images) != len(labels):
            raise ValueError(
                f"give one label per image; got {len(images)} images and {len(labels)} labels."
            )
        sizes = [pixel_size] * len(images) if np.isscalar(pixel_size) else list(pixel_size)
        mps = validate_pixel_size(model_pixel_size, name="model_pixel_size")
        self.class_names = tuple(class_names)
        k = len(self.class_names)
        self.crop, self.seed = int(crop), int(seed)
        self.images: list[np.ndarray] = []
        self.masks: list[np.ndarray] = []
        for i, (im, lab, ps) in enumerate(zip(images, labels, sizes, strict=True)):
            ps = validate_pixel_size(ps)
            a = np.asarray(im, dtype=np.float32)
            a = a[None] if a.ndim == 2 else a
            factor = ps / mps
            a = resample(a, factor=factor)
            if isinstance(lab, pd.DataFrame):
                unknown = sorted(set(lab["class"].astype(str)) - set(self.class_names))
                if unknown:
                    raise ValueError(f"labels[{i}] has classes {unknown} not in {class_names}.")
                xy = lab[["x_px", "y_px"]].to_numpy(float)
                xy = (xy + 0.5) * factor - 0.5
                idx = np.array([self.class_names.index(c) for c in lab["class"].astype(str)])
                m = render_masks(
                    xy,
                    class_index=idx,
                    n_classes=k,
                    shape=a.shape[-2:],
                    radius_px=label_radius_A / mps,
                )
            else:
                m = np.asarray(lab, dtype=np.float32)
                if m.shape != (k + 1, *np.shape(im)[-2:]):
                    raise ValueError(
                        f"labels[{i}] must be masks of shape {(k + 1, *np.shape(im)[-2:])} "
                        f"(background first), got {m.shape}."
                    )
                m = resample(m, factor=factor)
                m /= np.maximum(m.sum(axis=0, keepdims=True), 1e-6)
            if min(a.shape[-2:]) < self.crop:
                raise ValueError(
                    f"images[{i}] is {a.shape[-2:]} px at the model's sampling, smaller than "
                    f"the crop ({self.crop} px); use a smaller crop."
                )
            self.images.append(a)
            self.masks.append(m.astype(np.float32))
        self.in_channels = self.images[0].shape[0]

    def batch(self, step: int, /, *, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Random crops, fixed by ``(seed, step)``."""
        rng = np.random.default_rng([self.seed, int(step)])
        xs, ms = [], []
        for _ in range(batch_size):
            j = int(rng.integers(len(self.images)))
            a, m = self.images[j], self.masks[j]
            y0 = int(rng.integers(a.shape[-2] - self.crop + 1))
            x0 = int(rng.integers(a.shape[-1] - self.crop + 1))
            xs.append(a[:, y0 : y0 + self.crop, x0 : x0 + self.crop])
            ms.append(m[:, y0 : y0 + self.crop, x0 : x0 + self.crop])
        return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ms))

    def describe(self) -> dict:
        """Number and sizes of the pairs."""
        return {"source": "pairs", "n_images": len(self.images), "seed": self.seed}
