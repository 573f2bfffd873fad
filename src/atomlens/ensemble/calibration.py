"""Calibration of an ensemble's per-atom confidence and σ on simulated validation images.

``p_detect`` is a vote share: "3 of 4 members found it" need not mean "real 75 % of the
time". :func:`atomlens.train.fit_calibration` measures, on images with known atoms, how
often candidates with a given ``p_detect`` are real (a reliability table) and how the
reported σ compares with the actual error, and stores both in the model directory's
``calibration.json``. :func:`atomlens.pipeline.find` then adds ``p_real`` (the measured
share of real atoms at that ``p_detect``) and scales σ so that it matches the error seen in
validation.

``p_detect`` alone cannot tell an atom every member places 0.6 Å off, or a detection all
members make between two blurred columns, from a good one: such errors are shared by the
members. When validation shows false candidates, :func:`atomlens.train.fit_calibration`
therefore also fits a logistic regression of "real" on scale-free per-atom evidence
(:data:`FEATURES`: the vote share, the members' peak probability, the epistemic uncertainty,
the class share, the fit's σ and width and the intensity relative to the image's typical
atom, the distance to the nearest other candidate relative to the minimum separation, and
whether the fit converged); ``p_real`` is then its probability. Measured on held-out
simulated images (``benchmarks/uncertainty.py``), it ranks false detections far better than
``p_detect``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from atomlens._shared.atomic import write_atomic
from atomlens.ensemble.config import ModelFileError
from atomlens.locate.sigma import SigmaModel

logger = logging.getLogger(__name__)

__all__ = ["CALIBRATION_FILE", "FEATURES", "Calibration", "atom_features"]

CALIBRATION_FILE = "calibration.json"

#: The per-atom evidence of the logistic ``p_real`` (see :func:`atom_features`).
FEATURES = (
    "p_detect",
    "score",
    "epistemic",
    "class_p",
    "log_fit_sigma",
    "log_rel_width",
    "log_rel_intensity",
    "nn_over_separation",
    "refined",
)


def atom_features(candidates: pd.DataFrame, /, *, min_separation_A: float) -> np.ndarray:
    """Scale-free evidence on every candidate of one image, ``(n, len(FEATURES))``.

    Widths and intensities are taken relative to the median of the candidates of the same
    class that at least half of the members found, so that dose, detector gain and probe
    size do not enter; the nearest-candidate distance is relative to the minimum
    separation. Missing fit values (rejected fits) take the image's median.

    Parameters
    ----------
    candidates : pandas.DataFrame
        All candidates of one image (accepted and rejected), as :func:`find` gives them.
    min_separation_A : float
        The minimum separation used to find them [Å].
    """
    from scipy.spatial import cKDTree

    n = len(candidates)
    out = np.zeros((n, len(FEATURES)))
    if n == 0:
        return out
    c = candidates
    solid = c["p_detect"].to_numpy(float) >= 0.5
    cls = c["class"].astype(str).to_numpy()

    def relative(col: str) -> np.ndarray:
        v = c[col].to_numpy(float)
        rel = np.full(n, np.nan)
        for k in np.unique(cls):
            sel = cls == k
            ref = v[sel & solid & np.isfinite(v)]
            ref = ref if len(ref) else v[sel & np.isfinite(v)]
            med = float(np.median(ref)) if len(ref) else np.nan
            if np.isfinite(med) and med > 0:
                rel[sel] = v[sel] / med
        return np.log(np.clip(rel, 1e-3, 1e3))

    fit_sigma = np.hypot(c["fit_sigma_x_A"].to_numpy(float), c["fit_sigma_y_A"].to_numpy(float))
    xy = c[["x_A", "y_A"]].to_numpy(float)
    nn = cKDTree(xy).query(xy, k=2)[0][:, 1] if n > 1 else np.full(n, np.inf)
    cols = [
        c["p_detect"].to_numpy(float),
        c["score"].to_numpy(float),
        c["epistemic"].to_numpy(float),
        c["class_p"].to_numpy(float),
        np.log(np.clip(fit_sigma, 1e-4, 10.0)),
        relative("width_A"),
        relative("intensity"),
        np.minimum(nn / float(min_separation_A), 3.0),
        c["refined"].to_numpy(float),
    ]
    for j, v in enumerate(cols):
        v = np.where(np.isfinite(v), v, np.nan)
        fill = np.nanmedian(v) if np.isfinite(v).any() else 0.0
        out[:, j] = np.where(np.isfinite(v), v, fill)
    return out


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
    features : list of str or None
        Names of the logistic model's inputs (:data:`FEATURES`), or None when validation
        showed too few false candidates to fit it (then ``p_real`` comes from the table).
    feature_mean, feature_scale, coef : list of float or None
        Standardisation and coefficients of the logistic model.
    intercept : float or None
        Its intercept.
    min_separation_A : float or None
        The minimum separation the features were computed with [Å].
    p_real_thresholds, f1 : list of float or None
        Mean F1 on the validation images of the atoms ``find`` accepts (``p_detect`` ≥ 0.5)
        with those below each ``p_real`` threshold rejected (0 rejects none). None in
        calibrations made before it was measured.
    sigma_model, sigma_validation : dict or None
        The σ model (:class:`atomlens.locate.SigmaModel` coefficients) and its
        leave-one-condition-out validation (:func:`atomlens.train.fit_sigma_model`).
    p_real_validation : dict or None
        Where the logistic model was fitted on simulated images under shifted conditions
        (:func:`atomlens.train.fit_p_real_model`): per condition left out (and ``"all"``),
        the AUROC of ``p_real`` for telling the false candidates ``find`` keeps from the
        real ones, and their counts. None where it was fitted on the validation images.
    """

    p_detect: list[float]
    p_real: list[float]
    counts: list[int]
    sigma_scale: float
    ece_raw: float
    n_images: int
    features: list[str] | None = None
    feature_mean: list[float] | None = None
    feature_scale: list[float] | None = None
    coef: list[float] | None = None
    intercept: float | None = None
    min_separation_A: float | None = None
    p_real_thresholds: list[float] | None = None
    f1: list[float] | None = None
    sigma_model: dict[str, list[float]] | None = None
    sigma_validation: dict[str, dict[str, float]] | None = None
    p_real_validation: dict[str, dict[str, float | None]] | None = None

    @property
    def sigma(self) -> SigmaModel:
        """The σ model ``find`` uses with this calibration."""
        if self.sigma_model is not None:
            return SigmaModel(dict(self.sigma_model))
        k = float(self.sigma_scale)
        return SigmaModel({"fit": [k, k, 0.0], "network": [1.5 * k, k, 0.01 * k]})

    @property
    def best_p_real_min(self) -> float | None:
        """The ``p_real`` threshold with the best F1 on the validation images (the lowest
        of equals), or None when that was not measured."""
        if not self.f1 or not self.p_real_thresholds:
            return None
        return float(self.p_real_thresholds[int(np.argmax(self.f1))])

    def p_real_of(self, candidates: pd.DataFrame, /) -> np.ndarray:
        """``p_real`` of every candidate of one image (logistic model, else the table).

        Below the lowest ``p_detect`` the table saw, it falls linearly to 0 at
        ``p_detect`` 0 rather than holding that bin's share: validation that had only
        atoms every member found (``haadf-any``'s: 1423 at ``p_detect`` 1, all real) says
        nothing about an atom half the members find, and it should not read as certain."""
        if self.coef is None or len(candidates) == 0:
            return self._p_real_table(candidates["p_detect"].to_numpy(float))
        x = atom_features(candidates, min_separation_A=float(self.min_separation_A or 0.9))
        return self.p_real_of_features(x)

    def p_real_of_features(self, features: np.ndarray, /) -> np.ndarray:
        """``p_real`` from candidates' evidence ``(n, len(FEATURES))``
        (:func:`atom_features`, computed over all candidates of their image): the logistic
        model, else the table of the ``p_detect`` column."""
        x = np.asarray(features, float)
        if self.coef is None:
            return self._p_real_table(x[:, FEATURES.index("p_detect")])
        z = (x - np.asarray(self.feature_mean)) / np.asarray(self.feature_scale)
        logit = z @ np.asarray(self.coef) + float(self.intercept or 0.0)
        return 1.0 / (1.0 + np.exp(-logit))

    def _p_real_table(self, p_detect: np.ndarray) -> np.ndarray:
        xp, fp = np.asarray(self.p_detect, float), np.asarray(self.p_real, float)
        if len(xp) and xp[0] > 0:
            xp, fp = np.r_[0.0, xp], np.r_[0.0, fp]
        return np.interp(p_detect, xp, fp)

    def apply_both(
        self, atoms: pd.DataFrame, rejected: pd.DataFrame, /
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """:meth:`apply` to the accepted atoms and the rejected candidates of one image,
        with the features computed over both (the nearest other candidate may be either)."""
        both = pd.concat([atoms, rejected], ignore_index=True)
        if len(both) == 0:
            return self.apply(atoms), self.apply(rejected)
        pr = self.p_real_of(both)
        a, r = (
            self.apply(atoms, p_real=pr[: len(atoms)]),
            self.apply(rejected, p_real=pr[len(atoms) :]),
        )
        return a, r

    def apply(self, atoms: pd.DataFrame, /, *, p_real: np.ndarray | None = None) -> pd.DataFrame:
        """Add ``p_real``; returns a new table. σ is made with :attr:`sigma` while the atoms
        are located (:func:`atomlens.pipeline.find` passes it on).

        ``p_real`` is at most the probability that the column's signal is positive,
        Φ(``signal_snr``): a detection with no signal above the background (the linear
        height fit at its position is zero) gets ``p_real`` ≤ 0.5, whatever the
        network says."""
        out = atoms.copy()
        if len(out) == 0:
            out["p_real"] = pd.Series(dtype=float)
            return out
        pr = self.p_real_of(out) if p_real is None else np.asarray(p_real, float)
        if "signal_snr" in out.columns:
            from scipy.special import ndtr  # deferred: scipy.special only when applied

            snr = out["signal_snr"].to_numpy(float)
            pr = np.where(np.isfinite(snr), np.minimum(pr, ndtr(snr)), pr)
        out["p_real"] = pr
        return out

    def save(self, directory: str | PathLike[str], /) -> None:
        """Write ``calibration.json`` into a model directory (atomically)."""
        write_atomic(Path(directory) / CALIBRATION_FILE, json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, directory: str | PathLike[str], /) -> Calibration | None:
        """Read ``calibration.json`` if the directory has one."""
        path = Path(directory) / CALIBRATION_FILE
        if not path.is_file():
            return None
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            return cls(**d)
        except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as exc:
            raise ModelFileError(f"{path} is not a valid calibration file: {exc}.") from None
