"""Fitting an ensemble's calibration on simulated validation images with known atoms.

:func:`fit_calibration` measures how often candidates with a given ``p_detect`` are real (a
reliability table), how the reported σ compares with the actual error, and, when
validation shows false candidates, a logistic ``p_real`` on per-atom evidence; the result is
an :class:`atomlens.ensemble.Calibration` (``calibration.json``), which
:func:`atomlens.pipeline.find` applies.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from atomlens.ensemble.calibration import FEATURES, Calibration, atom_features
from atomlens.metrics import inside_margin, match_points
from atomlens.pipeline.finder import find

__all__ = ["fit_calibration"]

logger = logging.getLogger(__name__)


def fit_calibration(
    ensemble: Any,
    images: list[np.ndarray],
    truths: list[pd.DataFrame],
    pixel_sizes: list[float],
    /,
    *,
    radius_A: float = 0.5,
    margin_A: float = 1.0,
    min_false: int = 8,
) -> Calibration:
    """Measure the reliability of ``p_detect`` and the scale of σ on images with known atoms.

    Parameters
    ----------
    ensemble : Ensemble
        The ensemble.
    images, truths, pixel_sizes : lists
        Validation images, their true atoms tables and pixel sizes [Å/px] (simulated
        images never used in training).
    radius_A : float
        Match radius [Å].
    margin_A : float
        Atoms this close to the border are not counted [Å].
    min_false : int
        Fit the logistic ``p_real`` only when validation has at least this many false and
        this many real candidates.

    Returns
    -------
    Calibration
    """

    ps_all, real_all, sig_all, err_all, feat_all = [], [], [], [], []
    scenes: list[tuple[pd.DataFrame, np.ndarray, np.ndarray, float]] = []
    min_sep = float(ensemble.config.min_separation_A)
    for im, truth, ps in zip(images, truths, pixel_sizes, strict=True):
        res = find(im, model=ensemble, pixel_size=ps, p_min=1e-6, calibrated=False)
        cand = res.atoms
        m = margin_A / ps
        c_xy = cand[["x_px", "y_px"]].to_numpy(float)
        t_xy = truth[["x_px", "y_px"]].to_numpy(float)
        keep = inside_margin(c_xy, np.shape(im), m)
        mt = match_points(c_xy, t_xy, radius=radius_A / ps)
        t_in = inside_margin(t_xy, np.shape(im), m)
        scenes.append((cand, t_xy[t_in], keep, radius_A / ps))
        real = np.zeros(len(cand), bool)
        real[mt.pred_index] = True
        ps_all.append(cand["p_detect"].to_numpy(float)[keep])
        feat_all.append(atom_features(cand, min_separation_A=min_sep)[keep])
        real_all.append(real[keep])
        sel = keep[mt.pred_index]
        d = (c_xy[mt.pred_index] - t_xy[mt.true_index])[sel] * ps
        sig = cand[["sigma_x_A", "sigma_y_A"]].to_numpy(float)[mt.pred_index][sel]
        sig_all.append(sig.ravel())
        err_all.append(d.ravel())
    p = np.concatenate(ps_all)
    real = np.concatenate(real_all)
    sig = np.concatenate(sig_all)
    err = np.concatenate(err_all)
    values = np.unique(np.round(p, 6))
    p_real, counts = [], []
    for v in values:
        sel = np.isclose(p, v, atol=1e-6)
        counts.append(int(sel.sum()))
        p_real.append(float(real[sel].mean()))
    ece_raw = float(
        sum(c * abs(r - v) for v, r, c in zip(values, p_real, counts, strict=True))
        / max(sum(counts), 1)
    )
    good = np.isfinite(sig)
    scale = float(np.sqrt(np.mean(err[good] ** 2)) / np.sqrt(np.mean(sig[good] ** 2)))
    logistic: dict[str, Any] = {}
    if min(int((~real).sum()), int(real.sum())) >= min_false:
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold, cross_val_score

        x = np.concatenate(feat_all)
        mean, sd = x.mean(axis=0), x.std(axis=0)
        sd = np.where(sd > 1e-9, sd, 1.0)
        z = (x - mean) / sd
        # the L2 strength by 4-fold cross-validated log-loss on the validation candidates
        folds = StratifiedKFold(n_splits=4, shuffle=True, random_state=0)
        scores = {
            c: cross_val_score(
                LogisticRegression(C=c, max_iter=5000), z, real, cv=folds, scoring="neg_log_loss"
            ).mean()
            for c in (0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
        }
        best_c = max(scores, key=scores.__getitem__)
        lr = LogisticRegression(C=best_c, max_iter=5000).fit(z, real)
        logger.info("logistic p_real: C = %g (cross-validated)", best_c)
        logistic = {
            "features": list(FEATURES),
            "feature_mean": [float(v) for v in mean],
            "feature_scale": [float(v) for v in sd],
            "coef": [float(v) for v in lr.coef_[0]],
            "intercept": float(lr.intercept_[0]),
            "min_separation_A": min_sep,
        }
    cal = Calibration(
        p_detect=[float(v) for v in values],
        p_real=p_real,
        counts=counts,
        sigma_scale=scale if np.isfinite(scale) and scale > 0 else 1.0,
        ece_raw=ece_raw,
        n_images=len(images),
        **logistic,
    )
    thresholds = [round(0.1 * k, 1) for k in range(10)]
    f1 = _f1_by_p_real(cal, scenes, thresholds)
    return replace(cal, p_real_thresholds=thresholds, f1=f1)


def _f1_by_p_real(
    cal: Calibration,
    scenes: list[tuple[pd.DataFrame, np.ndarray, np.ndarray, float]],
    thresholds: list[float],
) -> list[float]:
    """Mean F1 over the validation images (inside the margin) of the candidates with
    ``p_detect`` ≥ 0.5 and ``p_real`` at least each threshold."""

    f1 = np.zeros(len(thresholds))
    for cand, truth, inside, radius in scenes:
        # p_real from the features of all candidates (as find computes it), then those
        # inside the margin
        pr = cal.p_real_of(cand)[inside]
        xy = cand[["x_px", "y_px"]].to_numpy(float)[inside]
        solid = cand["p_detect"].to_numpy(float)[inside] >= 0.5
        for j, t in enumerate(thresholds):
            kept = xy[solid & (pr >= t)]
            m = match_points(kept, truth, radius=radius)
            f1[j] += 2 * len(m.pred_index) / max(len(kept) + len(truth), 1)
    return [round(float(v / max(len(scenes), 1)), 5) for v in f1]
