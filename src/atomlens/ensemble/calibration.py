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

__all__ = [
    "CALIBRATION_FILE",
    "EMPTY_SITE_FRACTION",
    "FEATURES",
    "KIND_CLEAR_SNR",
    "KIND_SIGNIFICANCE",
    "Calibration",
    "atom_features",
    "signal_cap",
]

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


#: The least share of its reference kind's signal a column must hold (see
#: :func:`signal_cap`). Real columns of one class that form no kind of their own are
#: rarely that faint: a single light atom beside a pair of sulphur atoms (C on MoS2)
#: scatters about 0.1 of their signal under HAADF, an oxygen column 0.15 of a Ti–O one.
EMPTY_SITE_FRACTION = 0.2

#: How clearly the image must show a kind of column for it to count in :func:`signal_cap`:
#: its median ``signal_snr`` times the square root of its members.
KIND_SIGNIFICANCE = 5.0

#: The least median ``signal_snr`` of the faintest kind that counts for :func:`signal_cap`
#: to bound anything: where a column of every kind stands out of the noise on its own.
#: Below it (graphene under 10⁵ e⁻/Å² on abTEM's scale) a real column's own signal is
#: often no larger than an empty site's, and a bound taken from it cost more real atoms
#: than it removed false ones (with no such floor: F1 of the atoms with p_real ≥ 0.5 on
#: abTEM SrTiO3 at 10³ 0.75 → 0.65, graphene at 10⁴ 0.85 → 0.82, ``haadf-generic``).
KIND_CLEAR_SNR = 5.0


def signal_cap(atoms: pd.DataFrame, /, reference: pd.DataFrame | None = None) -> np.ndarray:
    """The most ``p_real`` each atom's own column signal allows.

    Two bounds, the smaller taken. Φ(``signal_snr``): the probability that the column's
    signal above the background is positive. And where the atom's class has kinds of
    column (:func:`atomlens.locate.sigma.column_kinds`, the table's ``column_kind``) that
    the image shows (median ``signal_snr`` · √members at least :data:`KIND_SIGNIFICANCE`,
    among the atoms with ``p_detect`` ≥ 0.5), and the faintest of those kinds stands out
    on its own (median ``signal_snr`` ``r`` at least :data:`KIND_CLEAR_SNR`),
    Φ(``signal_snr`` − q · r) with ``q`` :data:`EMPTY_SITE_FRACTION`: how likely the
    column holds at least q of that kind's signal.

    A network trained on lattices fills an empty site with the atom its neighbours imply:
    on abTEM graphene at 10⁶ e⁻/Å², ``haadf-generic`` placed one in each vacancy, with
    p_real 0.23–0.78 and no signal (``signal_snr`` −0.7 to 1.8; the carbon columns' 14–21).
    The signal's standard error is taken as the atom's own (``signal_snr`` is all the
    table has), which for an empty site overstates it, so the bound errs towards keeping
    an atom. A faint kind of its own (SrTiO3's O columns) is its own reference, and is not
    judged against the brighter ones.

    Parameters
    ----------
    atoms : pandas.DataFrame
        ``find``'s atoms (or candidates) of one image; without ``signal_snr`` no bound (1).
    reference : pandas.DataFrame, optional
        The table whose kinds set ``r`` (default ``atoms``): the accepted atoms, when
        bounding the rejected candidates of the same image.

    Returns
    -------
    ndarray (N,)
        The bound, 1 where the signal is unknown.
    """
    from scipy.special import ndtr  # deferred: scipy.special only when applied

    n = len(atoms)
    if n == 0 or "signal_snr" not in atoms:
        return np.ones(n)
    snr = atoms["signal_snr"].to_numpy(float)
    known = np.isfinite(snr)
    cap = np.where(known, ndtr(np.where(known, snr, 0.0)), 1.0)
    ref = atoms if reference is None else reference
    if not {"column_kind", "class", "signal_snr", "p_detect"} <= set(ref.columns):
        return cap
    r_snr = ref["signal_snr"].to_numpy(float)
    r_kind = ref["column_kind"].to_numpy()
    r_cls = ref["class"].astype(str).to_numpy()
    solid = (ref["p_detect"].to_numpy(float) >= 0.5) & np.isfinite(r_snr) & (r_kind >= 0)
    cls = atoms["class"].astype(str).to_numpy() if "class" in atoms else np.full(n, "")
    for c in np.unique(r_cls[solid]):
        medians = []
        for k in np.unique(r_kind[solid & (r_cls == c)]):
            v = r_snr[solid & (r_cls == c) & (r_kind == k)]
            med = float(np.median(v))
            if med > 0 and med * np.sqrt(len(v)) >= KIND_SIGNIFICANCE:
                medians.append(med)
        if not medians or min(medians) < KIND_CLEAR_SNR:
            continue
        sel = (cls == c) & known
        cap[sel] = np.minimum(cap[sel], ndtr(snr[sel] - EMPTY_SITE_FRACTION * min(medians)))
    return cap


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
            self.apply(rejected, p_real=pr[len(atoms) :], reference=atoms),
        )
        return a, r

    def apply(
        self,
        atoms: pd.DataFrame,
        /,
        *,
        p_real: np.ndarray | None = None,
        reference: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """Add ``p_real``; returns a new table. σ is made with :attr:`sigma` while the atoms
        are located (:func:`atomlens.pipeline.find` passes it on).

        ``p_real`` is at most what the column's own signal allows (:func:`signal_cap`):
        the probability that its signal is positive, Φ(``signal_snr``), so a detection
        with no signal above the background gets ``p_real`` ≤ 0.5 whatever the network
        says; and where its class has a kind of column the image shows clearly, the
        probability that it holds at least a fifth of the faintest such kind's signal
        (an empty lattice site, which a network may fill, holds none). ``reference``:
        the table whose kinds of column set that (default ``atoms``)."""
        out = atoms.copy()
        if len(out) == 0:
            out["p_real"] = pd.Series(dtype=float)
            return out
        pr = self.p_real_of(out) if p_real is None else np.asarray(p_real, float)
        out["p_real"] = np.minimum(pr, signal_cap(out, reference))
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
