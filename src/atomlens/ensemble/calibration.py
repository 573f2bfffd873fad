"""Calibration of an ensemble's per-atom confidence and σ on simulated validation images.

``p_detect`` is a vote share: "3 of 4 members found it" need not mean "real 75 % of the
time". :func:`fit_calibration` measures, on images with known atoms, how often candidates
with a given ``p_detect`` are real (a reliability table) and how the reported σ compares
with the actual error, and stores both in the model directory's ``calibration.json``.
:func:`atomlens.finder.find` then adds ``p_real`` (the measured share of real atoms at that
``p_detect``) and scales σ so that it matches the error seen in validation.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["CALIBRATION_FILE", "Calibration", "fit_calibration"]

CALIBRATION_FILE = "calibration.json"


@dataclass(frozen=True)
class Calibration:
    """What validation said about the ensemble's confidence.

    Attributes
    ----------
    p_detect : list of float
        The distinct ``p_detect`` values (k / N).
    p_real : list of float
        Share of candidates at each value that matched a true atom.
    counts : list of int
        Candidates at each value.
    sigma_scale : float
        RMS actual error / RMS reported σ over matched true atoms (multiply σ by it).
    ece_raw : float
        Expected calibration error of ``p_detect`` as a probability, before calibration.
    n_images : int
        Validation images.
    """

    p_detect: list[float]
    p_real: list[float]
    counts: list[int]
    sigma_scale: float
    ece_raw: float
    n_images: int

    def apply(self, atoms: pd.DataFrame, /) -> pd.DataFrame:
        """Add ``p_real`` and scale ``sigma_x_A``/``sigma_y_A`` (raw values kept in
        ``sigma_raw_x_A``/``sigma_raw_y_A``); returns a new table."""
        out = atoms.copy()
        if len(out) == 0:
            out["p_real"] = pd.Series(dtype=float)
            return out
        p = out["p_detect"].to_numpy(float)
        out["p_real"] = np.interp(p, self.p_detect, self.p_real)
        for ax in ("x", "y"):
            out[f"sigma_raw_{ax}_A"] = out[f"sigma_{ax}_A"]
            out[f"sigma_{ax}_A"] = out[f"sigma_{ax}_A"] * self.sigma_scale
        return out

    def save(self, directory: str | PathLike[str], /) -> None:
        """Write ``calibration.json`` into a model directory (atomically)."""
        path = Path(directory) / CALIBRATION_FILE
        tmp = path.with_suffix(".json.partial")
        tmp.write_text(json.dumps(asdict(self), indent=1) + "\n", encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, directory: str | PathLike[str], /) -> Calibration | None:
        """Read ``calibration.json`` if the directory has one."""
        path = Path(directory) / CALIBRATION_FILE
        if not path.is_file():
            return None
        from atomlens.model import ModelFileError

        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            return cls(**d)
        except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as exc:
            raise ModelFileError(f"{path} is not a valid calibration file: {exc}.") from None


def fit_calibration(
    ensemble: Any,
    images: list[np.ndarray],
    truths: list[pd.DataFrame],
    pixel_sizes: list[float],
    /,
    *,
    radius_A: float = 0.5,
    margin_A: float = 1.0,
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

    Returns
    -------
    Calibration
    """
    from atomlens.finder import find
    from atomlens.metrics import match_points

    ps_all, real_all, sig_all, err_all = [], [], [], []
    for im, truth, ps in zip(images, truths, pixel_sizes, strict=True):
        res = find(im, model=ensemble, pixel_size=ps, p_min=1e-6, calibrated=False)
        cand = res.atoms
        h, w = np.shape(im)[-2:]
        m = margin_A / ps
        c_xy = cand[["x_px", "y_px"]].to_numpy(float)
        t_xy = truth[["x_px", "y_px"]].to_numpy(float)
        keep = (
            (c_xy[:, 0] >= m)
            & (c_xy[:, 1] >= m)
            & (c_xy[:, 0] <= w - 1 - m)
            & (c_xy[:, 1] <= h - 1 - m)
        )
        mt = match_points(c_xy, t_xy, radius=radius_A / ps)
        real = np.zeros(len(cand), bool)
        real[mt.pred_index] = True
        ps_all.append(cand["p_detect"].to_numpy(float)[keep])
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
    return Calibration(
        p_detect=[float(v) for v in values],
        p_real=p_real,
        counts=counts,
        sigma_scale=scale if np.isfinite(scale) and scale > 0 else 1.0,
        ece_raw=ece_raw,
        n_images=len(images),
    )
