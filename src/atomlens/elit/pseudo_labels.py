"""Pseudo-labels for :func:`atomlens.elit.adapt.adapt`: the atoms every member found become
label disks, and what the ensemble is unsure about is left out of the loss."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from atomlens.elit.config import AdaptConfig
from atomlens.simulate.labels import render_masks

__all__ = ["pseudo_labels"]


def pseudo_labels(
    result: Any,
    /,
    *,
    n_classes: int,
    class_names: tuple[str, ...],
    config: AdaptConfig,
    label_radius_A: float = 0.5,
) -> tuple[np.ndarray, dict[str, float]]:
    """Label masks ``(K + 1, H, W)`` from one frame's :class:`atomlens.pipeline.FindResult`,
    zero where ignored, and counts.

    Parameters
    ----------
    result : FindResult
        :func:`atomlens.pipeline.finder.find` on the frame with ``p_min`` small (all candidates).
    n_classes : int
        K.
    class_names : tuple of str
        The model's classes.
    config : AdaptConfig
        Thresholds.
    label_radius_A : float
        Radius of the label disks [Å] (the model's ``label_radius_A``).
    """

    ps = result.pixel_size
    cand = pd.concat([result.atoms, result.rejected], ignore_index=True)
    shape = result.prediction.mean.shape[-2:]
    keep = cand["p_detect"].to_numpy(float) >= config.p_keep - 1e-9
    sure = cand[keep]
    idx = np.array([class_names.index(c) for c in sure["class"].astype(str)], dtype=int)
    lab_r = label_radius_A
    masks = render_masks(
        sure[["x_px", "y_px"]].to_numpy(float),
        class_index=idx,
        n_classes=n_classes,
        shape=shape,
        radius_px=lab_r / ps,
    ).astype(np.float32)
    ignore = result.prediction.mutual_information > config.epistemic_max
    disputed = cand[~keep][["x_px", "y_px"]].to_numpy(float)
    if len(disputed):
        yy, xx = np.indices(shape)
        r = config.ignore_radius_A / ps
        pix = np.column_stack([xx.ravel(), yy.ravel()])
        d, _ = cKDTree(disputed).query(pix, distance_upper_bound=r)
        ignore |= np.isfinite(d).reshape(shape)
    if config.background_max is not None:
        fg = 1.0 - result.prediction.mean[0]
        ignore |= (fg > config.background_max) & (masks[1:].sum(axis=0) == 0)
    masks[:, ignore] = 0.0
    return masks, {"pseudo": int(keep.sum()), "ignored": float(ignore.mean())}
