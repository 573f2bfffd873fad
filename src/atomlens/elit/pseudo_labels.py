"""Pseudo-labels for :func:`atomlens.elit.adapt.adapt`: the atoms every member found become
label disks, and what the ensemble is unsure about is left out of the loss.

Only where a label can be right: outside the frame's crystal regions (amorphous
contamination, vacuum, a saturated detector; :func:`atomlens.fourier.regions.region_map`)
nothing is known, so those pixels are left out of the loss ("unknown", not "no atom") and
no candidate there becomes a label; and an atom whose nearest neighbour is at a distance
the material does not have is no label either (its disk is left out).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from atomlens.elit.config import AdaptConfig
from atomlens.simulate.labels import render_masks

__all__ = ["HUMAN_KINDS", "apply_human_labels", "pseudo_labels"]

#: What a person can say about an atom: it is ``"false"`` (not an atom) or ``"missed"``.
HUMAN_KINDS = ("false", "missed")


def pseudo_labels(
    result: Any,
    /,
    *,
    n_classes: int,
    class_names: tuple[str, ...],
    config: AdaptConfig,
    label_radius_A: float = 0.5,
    crystal: np.ndarray | None = None,
    ref_nn: np.ndarray | None = None,
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
    crystal : ndarray of bool (H, W), optional
        Where labels may be drawn (the frame's crystal region); every other pixel is left
        out of the loss and no candidate outside it is a pseudo-label. None: everywhere.
    ref_nn : ndarray, optional
        The material's nearest-neighbour distances [Å]
        (:func:`atomlens.elit.guards.material_nn_distances`): a sure atom whose nearest
        sure neighbour is not within ``config.nn_tolerance`` of one of them is no label
        (its disk is left out). None or empty: no such check.

    Returns
    -------
    masks : ndarray (K + 1, H, W)
        Label masks, all zero where ignored.
    counts : dict
        ``pseudo`` (atoms labelled), ``ignored`` (share of pixels left out),
        ``outside_crystal`` (sure candidates outside the crystal region) and
        ``implausible`` (sure atoms dropped for their nearest-neighbour distance).
    """

    ps = result.pixel_size
    cand = pd.concat([result.atoms, result.rejected], ignore_index=True)
    shape = result.prediction.mean.shape[-2:]
    keep = cand["p_detect"].to_numpy(float) >= config.p_keep - 1e-9
    xy_all = cand[["x_px", "y_px"]].to_numpy(float)
    outside = np.zeros(len(cand), bool)
    if crystal is not None:
        h, w = crystal.shape
        ix = np.clip(np.round(xy_all[:, 0]).astype(int), 0, w - 1)
        iy = np.clip(np.round(xy_all[:, 1]).astype(int), 0, h - 1)
        outside = ~crystal[iy, ix]
    implausible = np.zeros(len(cand), bool)
    if ref_nn is not None and len(ref_nn) and keep.sum() > 1:
        sure_xy = cand[keep][["x_A", "y_A"]].to_numpy(float)
        d = cKDTree(sure_xy).query(sure_xy, k=2)[0][:, 1]
        modes = np.unique(np.round(np.asarray(ref_nn, float), 2))
        rel = np.min(np.abs(d[:, None] / modes[None, :] - 1.0), axis=1)
        implausible[np.flatnonzero(keep)[rel > config.nn_tolerance]] = True
    dropped = keep & (outside | implausible)
    keep = keep & ~dropped
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
    if crystal is not None:
        ignore |= ~crystal
    disputed = cand[~keep & ~outside][["x_px", "y_px"]].to_numpy(float)
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
    return masks, {
        "pseudo": int(keep.sum()),
        "ignored": float(ignore.mean()),
        "outside_crystal": int((dropped & outside).sum()),
        "implausible": int((dropped & implausible & ~outside).sum()),
    }


def apply_human_labels(
    masks: np.ndarray,
    labels: Any,
    /,
    *,
    class_names: tuple[str, ...],
    pixel_size: float,
    label_radius_A: float = 0.5,
    ignore_radius_A: float = 0.8,
) -> tuple[np.ndarray, int]:
    """Put a person's labels over one frame's pseudo-label masks.

    An atom marked **false** becomes background over a disk of the larger of the two
    radii (so that its pseudo-label disk and any ignored ring around it are replaced); a
    **missed** atom becomes a label disk of its class (the rest of that disk, a pseudo-label
    or ignored pixels, is replaced). A person's label wins over the ensemble's wherever
    they overlap; how much the frame counts in training: ``AdaptConfig.human_weight``.

    Parameters
    ----------
    masks : ndarray of shape (K + 1, H, W)
        :func:`pseudo_labels`' masks (background first; all zero where ignored); not
        modified.
    labels : sequence of dict
        ``{"kind": "false" | "missed", "x_px": float, "y_px": float, "class": str}``
        (``class`` for a missed atom; the first class if omitted), in the frame's pixels
        (x = column, y = row).
    class_names : tuple of str
        The model's classes.
    pixel_size : float
        The frame's [Å/px].
    label_radius_A, ignore_radius_A : float
        Label disk and ignore radius [Å].

    Returns
    -------
    masks : ndarray of shape (K + 1, H, W)
    applied : int
        Labels that fell inside the frame.

    Raises
    ------
    ValueError
        An unknown ``kind`` or class.

    Examples
    --------
    >>> m = np.zeros((2, 9, 9), np.float32); m[1, 3:6, 3:6] = 1
    >>> out, n = apply_human_labels(m, [{"kind": "false", "x_px": 4, "y_px": 4}],
    ...                             class_names=("C",), pixel_size=0.25)
    >>> n, float(out[1].sum()), float(out[0, 4, 4])
    (1, 0.0, 1.0)
    """
    out = np.array(masks, dtype=np.float32, copy=True)
    h, w = out.shape[-2:]
    yy, xx = np.indices((h, w))
    applied = 0
    for lab in labels:
        kind = lab.get("kind")
        if kind not in HUMAN_KINDS:
            raise ValueError(f"a human label's `kind` must be false or missed, got {kind!r}.")
        x, y = float(lab["x_px"]), float(lab["y_px"])
        if not (-0.5 <= x < w - 0.5 and -0.5 <= y < h - 0.5):
            continue
        r2 = (xx - x) ** 2 + (yy - y) ** 2
        if kind == "false":
            disk = r2 <= (max(label_radius_A, ignore_radius_A) / pixel_size) ** 2
            out[:, disk] = 0.0
            out[0, disk] = 1.0
        else:
            name = str(lab.get("class") or class_names[0])
            if name not in class_names:
                raise ValueError(f"a human label's class {name!r} is not one of {class_names}.")
            disk = r2 <= (label_radius_A / pixel_size) ** 2
            out[:, disk] = 0.0
            out[1 + class_names.index(name), disk] = 1.0
        applied += 1
    return out, applied
