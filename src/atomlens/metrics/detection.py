"""Score predicted atoms against the truth: detection, localisation and classification.

:func:`score_detections` matches two atoms tables one-to-one within a radius (see
:func:`atomlens.metrics.match_points`) and reports precision, recall and F1, the localisation
error of the matched atoms in pixels and picometres, and per-class scores.
:func:`evaluate_files` does the same for two CSV files.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass, field
from os import PathLike
from typing import Any

import numpy as np
import pandas as pd

from atomlens._shared.validate import validate_positive
from atomlens.io.atoms_table import read_atoms_csv, validate_atoms_table
from atomlens.metrics.matching import (
    LocalisationErrors,
    Matching,
    localisation_errors,
    match_points,
)

logger = logging.getLogger(__name__)

__all__ = ["DetectionReport", "evaluate_files", "reliability_table", "score_detections"]

#: Matching radius [Å] of ``atomlens evaluate`` without ``--radius-A``/``--radius-px``, and
#: of the score ``atomlens demo`` prints (the same scorer, so the two agree).
DEFAULT_RADIUS_A: float = 0.5

#: Columns of :attr:`DetectionReport.per_class`, in this order.
PER_CLASS_COLUMNS: tuple[str, ...] = (
    "tp",
    "fp",
    "fn",
    "precision",
    "recall",
    "f1",
    "n_true",
    "n_pred",
)

_PX_COLS = ["x_px", "y_px"]
_A_COLS = ["x_A", "y_A"]
_PM_PER_A = 100.0


@dataclass(frozen=True, eq=False)
class DetectionReport:
    """Scores of predicted atoms against the truth, from :func:`score_detections`.

    Attributes
    ----------
    tp, fp, fn : int
        Matched atoms, unmatched predictions and missed true atoms (class ignored).
    precision, recall, f1 : float
        ``tp / n_pred``, ``tp / n_true`` and their harmonic mean; 1.0 when both tables are
        empty, 0.0 where a ratio is undefined otherwise.
    radius : float
        Matching radius, in ``radius_unit``.
    radius_unit : str
        ``"Å"`` (matched on ``x_A, y_A``) or ``"px"`` (matched on ``x_px, y_px``).
    errors_px : LocalisationErrors or None
        Errors (prediction − truth) of the matched atoms [px]; None without pixel coordinates.
    errors_pm : LocalisationErrors or None
        The same [pm]; None without ångström coordinates (or a pixel size to derive them).
    per_class : pandas.DataFrame or None
        Index ``class``; columns ``tp, fp, fn, precision, recall, f1, n_true, n_pred`` from
        matching each class separately. None unless both tables have a ``class`` column and
        ``by_class`` was true.
    class_accuracy : float or None
        Fraction of the matched pairs whose predicted class equals the true class (NaN with
        no pairs); None when ``per_class`` is None.
    confusion : pandas.DataFrame or None
        Counts of matched pairs, rows = true class (index ``truth``), columns = predicted
        class (``predicted``); unmatched atoms are not counted. None when ``per_class`` is.
    pixel_size : float or None
        Pixel size inferred from the tables as ``x_A / x_px`` [Å/px], None if unknown.
    matching : Matching or None
        The overall matching; its indices are row positions in ``pred`` and ``truth``.
    uncertainty : dict or None
        When the prediction has ``sigma_x_A``/``sigma_y_A`` (and errors in Å): how σ
        describes the errors of the matched atoms, per axis with z = error / σ:
        ``sigma_share`` (matched atoms with a σ), ``z_rms`` (ideal 1), ``within_1sigma``
        (ideal 68 %), ``within_2sigma`` (ideal 95 %), ``n``; and, when it has ``p_real``
        and both true and false detections, ``auroc_p_real`` (how well ``p_real`` ranks
        the true detections above the false ones) and ``ece_p_real`` (the expected
        calibration error of ``p_real``: the count-weighted mean gap between
        ``mean_p_real`` and ``share_real`` over the bins of :attr:`reliability`). None
        otherwise.
    z : ndarray or None
        The per-axis z of the matched atoms with σ, (n, 2), for a histogram.
    reliability : pandas.DataFrame or None
        When the prediction has ``p_real``: its reliability table over
        :data:`RELIABILITY_BINS` equal-width bins of ``p_real`` (empty bins left out), with
        columns ``p_lo, p_hi`` (the bin), ``n`` (predicted atoms in it), ``mean_p_real``
        and ``share_real`` (the share of them matched to a true atom). None otherwise.
    """

    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float
    radius: float
    radius_unit: str
    errors_px: LocalisationErrors | None
    errors_pm: LocalisationErrors | None
    per_class: pd.DataFrame | None
    class_accuracy: float | None
    confusion: pd.DataFrame | None
    pixel_size: float | None = None
    matching: Matching | None = field(default=None, repr=False)
    uncertainty: dict[str, float] | None = None
    z: np.ndarray | None = field(default=None, repr=False)
    reliability: pd.DataFrame | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as plain Python types, ready for :func:`json.dumps`.

        Returns
        -------
        dict
            All attributes except ``matching`` and ``z``; NaN becomes None, error statistics
            become dicts, ``reliability`` a list of its rows as dicts, ``per_class``
            becomes ``{class: {column: value}}`` and ``confusion``
            becomes ``{true_class: {predicted_class: count}}``.
        """
        per_class = None
        if self.per_class is not None:
            columns = {col: self.per_class[col].tolist() for col in self.per_class.columns}
            per_class = {
                str(cls): {col: _plain(values[k]) for col, values in columns.items()}
                for k, cls in enumerate(self.per_class.index)
            }
        confusion = None
        if self.confusion is not None:
            confusion = {
                str(t): {str(p): int(self.confusion.loc[t, p]) for p in self.confusion.columns}
                for t in self.confusion.index
            }
        return {
            "tp": int(self.tp),
            "fp": int(self.fp),
            "fn": int(self.fn),
            "precision": _plain(self.precision),
            "recall": _plain(self.recall),
            "f1": _plain(self.f1),
            "radius": _plain(self.radius),
            "radius_unit": self.radius_unit,
            "errors_px": _errors_dict(self.errors_px),
            "errors_pm": _errors_dict(self.errors_pm),
            "per_class": per_class,
            "class_accuracy": _plain(self.class_accuracy),
            "confusion": confusion,
            "pixel_size": _plain(self.pixel_size),
            "uncertainty": (
                {k: _plain(v) for k, v in self.uncertainty.items()}
                if self.uncertainty is not None
                else None
            ),
            "reliability": (
                [
                    {k: _plain(v) for k, v in row.items()}
                    for row in self.reliability.to_dict(orient="records")
                ]
                if self.reliability is not None
                else None
            ),
        }

    def format(self) -> str:
        """Return a plain-text summary of the report, several lines long.

        Returns
        -------
        str
            Detection scores, localisation errors and, when available, the per-class table.
        """
        lines = [
            f"F1 {self.f1:.3f}  precision {self.precision:.3f}  recall {self.recall:.3f}  "
            f"(TP {self.tp}, FP {self.fp}, FN {self.fn}) within {_radius_text(self.radius)} "
            f"{self.radius_unit}"
        ]
        main, unit = (
            (self.errors_pm, "pm") if self.errors_pm is not None else (self.errors_px, "px")
        )
        if main is None:
            lines.append("localisation errors: n/a (no coordinates in a common unit)")
        elif main.n == 0:
            lines.append("localisation errors: n/a (no matched pairs)")
        else:
            line = (
                f"RMSE {_num(main.rmse)} {unit}  median {_num(main.median)} {unit}  "
                f"p95 {_num(main.p95)} {unit}"
            )
            if unit == "pm" and self.errors_px is not None:
                line += f"  ({_num(self.errors_px.rmse)} px)"
            lines.append(line)
            lines.append(
                f"  radial RMSE over {main.n} pairs; per axis x {_num(main.rmse_x)}, "
                f"y {_num(main.rmse_y)} {unit}; bias dx {main.mean_dx:+.3g}, "
                f"dy {main.mean_dy:+.3g} {unit}"
            )
        u = self.uncertainty
        if u is not None:
            line = (
                f"σ: {u['sigma_share']:.1%} of matched atoms have one; z = error/σ per axis: "
                f"RMS {_num(u['z_rms'])} (ideal 1), within 1σ {u['within_1sigma']:.1%} "
                f"(ideal 68.3 %), within 2σ {u['within_2sigma']:.1%} (ideal 95.4 %)"
            )
            if u.get("auroc_p_real") is not None and not _is_nan(u["auroc_p_real"]):
                line += f"; AUROC of p_real {u['auroc_p_real']:.3f}"
            if u.get("ece_p_real") is not None and not _is_nan(u["ece_p_real"]):
                line += f"; ECE of p_real {u['ece_p_real']:.3f}"
            lines.append(line)
        if self.per_class is not None:
            acc = "n/a" if _is_nan(self.class_accuracy) else f"{self.class_accuracy:.3f}"
            lines.append(f"class accuracy {acc} over {self.tp} matched pairs")
            lines.append(self.class_summary())
            lines.append(self.per_class.to_string(float_format=lambda v: f"{v:.3f}"))
        if self.confusion is not None:
            lines.append("confusion matrix of the matched pairs (rows truth, columns predicted):")
            lines.append(self.confusion.to_string())
        return "\n".join(lines)

    def class_summary(self) -> str:
        """One line: per class, true atoms found with their class, then the misclassified.

        Returns
        -------
        str
            E.g. ``"by class: C 993/997, Si 3/3 found; misclassified: 3 C called Si"``
            (per class ``tp/n_true`` of :attr:`per_class`; misclassified from the off-diagonal
            of :attr:`confusion`); ``""`` without classes.
        """
        if self.per_class is None or self.confusion is None:
            return ""
        found = ", ".join(
            f"{cls} {int(row.tp)}/{int(row.n_true)}"
            for cls, row in self.per_class.iterrows()
            if row.n_true
        )
        wrong = [
            f"{int(self.confusion.loc[t, p])} {t} called {p}"
            for t in self.confusion.index
            for p in self.confusion.columns
            if t != p and self.confusion.loc[t, p]
        ]
        return f"by class: {found} found; misclassified: {', '.join(wrong) or 'none'}"

    def __str__(self) -> str:
        return self.format()


def _plain(value: Any) -> Any:
    """Convert numpy scalars to Python ones and NaN to None."""
    if value is None:
        return None
    if isinstance(value, np.integer | int) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, np.floating | float):
        v = float(value)
        return None if math.isnan(v) else v
    return value


def _is_nan(value: float | None) -> bool:
    return value is None or math.isnan(value)


def _errors_dict(errors: LocalisationErrors | None) -> dict[str, Any] | None:
    if errors is None:
        return None
    return {key: _plain(value) for key, value in errors._asdict().items()}


def _num(value: float) -> str:
    return f"{value:.3g}"


def _radius_text(radius: float) -> str:
    return f"{radius:.2f}" if radius >= 0.1 else f"{radius:.3g}"


def _resolve_radius(radius_A: float | None, radius_px: float | None) -> tuple[float, str]:
    """Return ``(radius, unit)`` from exactly one of the two radius arguments."""
    if radius_A is None and radius_px is None:
        raise ValueError(
            "Give the matching radius: radius_A=... [Å] to match on x_A, y_A or "
            "radius_px=... [px] to match on x_px, y_px; got neither."
        )
    if radius_A is not None and radius_px is not None:
        raise ValueError(
            f"Give only one matching radius, got radius_A={radius_A!r} and "
            f"radius_px={radius_px!r}. Drop one of them."
        )
    if radius_A is not None:
        return validate_positive(radius_A, name="radius_A", unit="Å"), "Å"
    return validate_positive(radius_px, name="radius_px", unit="px"), "px"


def _has(table: pd.DataFrame, cols: list[str]) -> bool:
    return set(cols) <= set(table.columns)


def _infer_pixel_size(table: pd.DataFrame) -> float | None:
    """Least-squares ``x_A / x_px`` over both axes [Å/px]; None if it cannot be inferred."""
    if not (_has(table, _PX_COLS) and _has(table, _A_COLS)):
        return None
    px = table[_PX_COLS].to_numpy(dtype=float).ravel()
    ang = table[_A_COLS].to_numpy(dtype=float).ravel()
    denominator = float(px @ px)
    if denominator == 0.0:
        return None
    value = float(px @ ang) / denominator
    return value if value > 0 else None


def _coords(table: pd.DataFrame, unit: str, pixel_size: float | None) -> np.ndarray | None:
    """Coordinates in ``unit`` ("px" or "Å"), converted with ``pixel_size`` if needed."""
    own, other = (_PX_COLS, _A_COLS) if unit == "px" else (_A_COLS, _PX_COLS)
    if _has(table, own):
        return table[own].to_numpy(dtype=float)
    if _has(table, other) and pixel_size is not None:
        factor = 1.0 / pixel_size if unit == "px" else pixel_size
        return table[other].to_numpy(dtype=float) * factor
    return None


def _class_labels(table: pd.DataFrame, name: str) -> np.ndarray | None:
    """The ``class`` column as an object array of str, or None if the table has none."""
    if "class" not in table.columns:
        return None
    labels = table["class"]
    if labels.isna().any():
        raise ValueError(
            f"{name} has {int(labels.isna().sum())} missing value(s) in column 'class'; "
            "fill them (e.g. table['class'] = table['class'].fillna('atom')) or drop the column."
        )
    return labels.astype(str).to_numpy(dtype=object)


def _score(
    pred: pd.DataFrame,
    truth: pd.DataFrame,
    *,
    radius_A: float | None,
    radius_px: float | None,
    by_class: bool,
    names: tuple[str, str],
) -> DetectionReport:
    """Shared implementation of :func:`score_detections` and :func:`evaluate_files`."""
    radius, unit = _resolve_radius(radius_A, radius_px)
    if not isinstance(by_class, bool | np.bool_):
        raise TypeError(f"by_class must be True or False, got {by_class!r}.")
    pred_name, truth_name = names
    pred = validate_atoms_table(pred, name=pred_name)
    truth = validate_atoms_table(truth, name=truth_name)

    match_cols = _A_COLS if unit == "Å" else _PX_COLS
    for table, name in ((pred, pred_name), (truth, truth_name)):
        if not _has(table, match_cols):
            if unit == "Å":
                fix = (
                    "pass radius_px=... to match in pixels instead, or add x_A = x_px * "
                    "pixel_size and y_A = y_px * pixel_size"
                )
            else:
                fix = (
                    "pass radius_A=... to match in ångström instead, or add x_px = x_A / "
                    "pixel_size and y_px = y_A / pixel_size"
                )
            raise ValueError(
                f"{name} has no {match_cols[0]}, {match_cols[1]} columns to match within "
                f"radius_{'A' if unit == 'Å' else 'px'}={radius}; found {list(table.columns)}. "
                f"Either {fix}."
            )

    ps_pred, ps_truth = _infer_pixel_size(pred), _infer_pixel_size(truth)
    if (
        ps_pred is not None
        and ps_truth is not None
        and not math.isclose(ps_pred, ps_truth, rel_tol=1e-3)
    ):
        warnings.warn(
            f"{pred_name} and {truth_name} have different pixel sizes (x_A / x_px = "
            f"{ps_pred:.6g} and {ps_truth:.6g} Å/px), so their pixel coordinates refer to "
            "different grids and errors_px compares them as they are. Rescale one table or "
            "match in ångström only.",
            UserWarning,
            stacklevel=3,
        )
    pixel_size = ps_truth if ps_truth is not None else ps_pred

    p_xy = pred[match_cols].to_numpy(dtype=float)
    t_xy = truth[match_cols].to_numpy(dtype=float)
    m = match_points(p_xy, t_xy, radius=radius)

    errors: dict[str, LocalisationErrors | None] = {"px": None, "Å": None}
    for err_unit in errors:
        p_c = _coords(pred, err_unit, pixel_size)
        t_c = _coords(truth, err_unit, pixel_size)
        if p_c is not None and t_c is not None:
            errors[err_unit] = localisation_errors(p_c[m.pred_index] - t_c[m.true_index])
    errors_pm = errors["Å"].scaled(_PM_PER_A) if errors["Å"] is not None else None

    per_class = class_accuracy = confusion = None
    p_cls, t_cls = _class_labels(pred, pred_name), _class_labels(truth, truth_name)
    if by_class and p_cls is not None and t_cls is not None:
        classes = sorted(set(p_cls) | set(t_cls))
        rows = []
        for cls in classes:
            in_p, in_t = p_cls == cls, t_cls == cls
            mc = match_points(p_xy[in_p], t_xy[in_t], radius=radius)
            rows.append((mc.tp, mc.fp, mc.fn, mc.precision, mc.recall, mc.f1, mc.n_true, mc.n_pred))
        per_class = pd.DataFrame(
            rows, index=pd.Index(classes, name="class"), columns=list(PER_CLASS_COLUMNS)
        )
        t_codes = pd.Categorical(t_cls[m.true_index], categories=classes).codes
        p_codes = pd.Categorical(p_cls[m.pred_index], categories=classes).codes
        counts = np.zeros((len(classes), len(classes)), dtype=np.int64)
        np.add.at(counts, (t_codes, p_codes), 1)
        confusion = pd.DataFrame(
            counts,
            index=pd.Index(classes, name="truth"),
            columns=pd.Index(classes, name="predicted"),
        )
        class_accuracy = float(np.trace(counts)) / m.tp if m.tp else float("nan")

    uncertainty, z, reliability = _uncertainty(pred, truth, m, pixel_size)
    report = DetectionReport(
        uncertainty=uncertainty,
        z=z,
        reliability=reliability,
        tp=m.tp,
        fp=m.fp,
        fn=m.fn,
        precision=m.precision,
        recall=m.recall,
        f1=m.f1,
        radius=radius,
        radius_unit=unit,
        errors_px=errors["px"],
        errors_pm=errors_pm,
        per_class=per_class,
        class_accuracy=class_accuracy,
        confusion=confusion,
        pixel_size=pixel_size,
        matching=m,
    )
    logger.debug("score_detections: %s", report.format().splitlines()[0])
    return report


def reliability_table(
    p: np.ndarray, real: np.ndarray, /, *, bins: int = 10
) -> tuple[pd.DataFrame, float]:
    """Reliability of a probability: per equal-width bin of ``p``, the share that is real.

    Parameters
    ----------
    p : ndarray of shape (N,)
        Predicted probabilities in [0, 1] (NaN left out).
    real : ndarray of shape (N,)
        Whether each prediction is real (bool).
    bins : int
        Number of equal-width bins over [0, 1]; the last one includes 1.

    Returns
    -------
    pandas.DataFrame
        One row per non-empty bin: ``p_lo, p_hi, n, mean_p_real, share_real``.
    float
        The expected calibration error: ``Σ n·|share_real − mean_p_real| / Σ n`` (NaN
        without predictions).

    Examples
    --------
    >>> import numpy as np
    >>> t, ece = reliability_table(np.array([0.05, 0.95, 0.95, 0.9]), np.array([0, 1, 1, 0]))
    >>> t[["p_lo", "n", "share_real"]].to_numpy().tolist()
    [[0.0, 1.0, 0.0], [0.9, 3.0, 0.6666666666666666]]
    >>> round(ece, 4)
    0.2125
    """
    p = np.asarray(p, float)
    real = np.asarray(real, bool)
    ok = np.isfinite(p)
    p, real = p[ok], real[ok]
    idx = np.clip((p * bins).astype(int), 0, bins - 1)
    rows = []
    for b in range(bins):
        sel = idx == b
        if sel.any():
            rows.append(
                {
                    "p_lo": b / bins,
                    "p_hi": (b + 1) / bins,
                    "n": int(sel.sum()),
                    "mean_p_real": float(p[sel].mean()),
                    "share_real": float(real[sel].mean()),
                }
            )
    table = pd.DataFrame(rows, columns=["p_lo", "p_hi", "n", "mean_p_real", "share_real"])
    n = table["n"].to_numpy(float)
    gap = np.abs(table["share_real"] - table["mean_p_real"]).to_numpy(float)
    ece = float((n * gap).sum() / n.sum()) if n.sum() else float("nan")
    return table, ece


#: Bins of the reliability table of ``p_real`` in :class:`DetectionReport`.
RELIABILITY_BINS: int = 10


def _uncertainty(
    pred: pd.DataFrame, truth: pd.DataFrame, m: Matching, pixel_size: float | None
) -> tuple[dict[str, float] | None, np.ndarray | None, pd.DataFrame | None]:
    """Coverage of σ, the AUROC of ``p_real`` and its reliability table (see
    :class:`DetectionReport`)."""
    if not _has(pred, ["sigma_x_A", "sigma_y_A"]):
        return None, None, None
    p_c, t_c = _coords(pred, "Å", pixel_size), _coords(truth, "Å", pixel_size)
    if p_c is None or t_c is None:
        return None, None, None
    d = p_c[m.pred_index] - t_c[m.true_index]
    sig = pred[["sigma_x_A", "sigma_y_A"]].to_numpy(float)[m.pred_index]
    has = np.isfinite(sig).all(axis=1) & (sig > 0).all(axis=1)
    z = d[has] / sig[has]
    az = np.abs(z).ravel()
    nan = float("nan")
    out: dict[str, float] = {
        "sigma_share": float(has.mean()) if len(has) else nan,
        "z_rms": float(np.sqrt(np.mean(az**2))) if len(az) else nan,
        "within_1sigma": float(np.mean(az <= 1)) if len(az) else nan,
        "within_2sigma": float(np.mean(az <= 2)) if len(az) else nan,
        "n": int(has.sum()),
    }
    reliability = None
    if "p_real" in pred.columns:
        pr = pred["p_real"].to_numpy(float)
        real = np.zeros(len(pred), bool)
        real[m.pred_index] = True
        ok = np.isfinite(pr)
        good, bad = pr[ok & real], pr[ok & ~real]
        if len(good) and len(bad):
            # Mann–Whitney: the chance a true detection outranks a false one (ties half)
            ranks = pd.Series(np.concatenate([good, bad])).rank().to_numpy()
            u = ranks[: len(good)].sum() - len(good) * (len(good) + 1) / 2
            out["auroc_p_real"] = float(u / (len(good) * len(bad)))
        else:
            out["auroc_p_real"] = nan
        reliability, out["ece_p_real"] = reliability_table(pr, real, bins=RELIABILITY_BINS)
    return out, z, reliability


def score_detections(
    pred: pd.DataFrame,
    /,
    truth: pd.DataFrame,
    *,
    radius_A: float | None = None,
    radius_px: float | None = None,
    by_class: bool = True,
) -> DetectionReport:
    """Score predicted atoms against true atoms: detection, localisation and classes.

    Predicted and true atoms are matched one-to-one within a radius, maximising the number
    of pairs and then minimising their total distance (:func:`match_points`); class labels
    do not affect this overall matching.

    Parameters
    ----------
    pred : pandas.DataFrame
        Predicted atoms table (``x_px, y_px`` and/or ``x_A, y_A``; optionally ``class``).
    truth : pandas.DataFrame
        True atoms table, same conventions.
    radius_A : float, optional
        Matching radius [Å]; matches on ``x_A, y_A``, which both tables must have.
    radius_px : float, optional
        Matching radius [px]; matches on ``x_px, y_px``, which both tables must have.
        Give exactly one of ``radius_A`` and ``radius_px``.
    by_class : bool
        When both tables have a ``class`` column, also score each class separately and
        report the classification accuracy and confusion matrix of the matched pairs.

    Returns
    -------
    DetectionReport
        Counts, precision, recall, F1, localisation errors in [px] and [pm], per-class scores;
        ``report.format()`` gives a readable summary and ``report.to_dict()`` a JSON-ready one.

    Raises
    ------
    ValueError
        If not exactly one radius is given, or a table lacks the columns to match on.

    Warns
    -----
    UserWarning
        If the pixel sizes implied by the two tables (``x_A / x_px``) differ.

    Notes
    -----
    Localisation errors are prediction − truth over the matched pairs, in [px] when both
    tables have (or can derive) pixel coordinates and in [pm] (1 Å = 100 pm) when both
    have (or can derive) ångström coordinates; missing ones are derived with the pixel size
    inferred from a table that has both. ``rmse`` is the radial RMSE; per-axis values are in
    ``rmse_x`` and ``rmse_y`` (see :func:`localisation_errors`).

    Per-class scores match the atoms of each class (the union of both tables' classes)
    separately, so an atom with the wrong class counts as a false positive of the predicted
    class and a false negative of the true one there, while it is a true positive overall.

    Examples
    --------
    >>> import numpy as np
    >>> from atomlens.io.atoms_table import make_atoms_table
    >>> xy = np.array([[10.0, 10.0], [20.0, 10.0], [30.0, 10.0]])
    >>> truth = make_atoms_table(xy, pixel_size=0.1, classes=["Mo", "S", "S"])
    >>> pred = make_atoms_table(xy[:2] + [0.3, 0.4], pixel_size=0.1, classes=["Mo", "Mo"])
    >>> r = score_detections(pred, truth, radius_A=0.1)
    >>> r.tp, r.fp, r.fn, round(r.errors_pm.rmse, 3), r.class_accuracy
    (2, 0, 1, 5.0, 0.5)
    >>> print(r.format().splitlines()[0])
    F1 0.800  precision 1.000  recall 0.667  (TP 2, FP 0, FN 1) within 0.10 Å
    """
    return _score(
        pred,
        truth,
        radius_A=radius_A,
        radius_px=radius_px,
        by_class=by_class,
        names=("pred", "truth"),
    )


def evaluate_files(
    pred_path: str | PathLike[str],
    truth_path: str | PathLike[str],
    /,
    *,
    radius_A: float | None = None,
    radius_px: float | None = None,
) -> DetectionReport:
    """Score a predicted atoms CSV against a true atoms CSV.

    Parameters
    ----------
    pred_path : str or path-like
        CSV file of predicted atoms (see :func:`atomlens.io.atoms_table.read_atoms_csv`).
    truth_path : str or path-like
        CSV file of true atoms.
    radius_A : float, optional
        Matching radius [Å], matching on ``x_A, y_A``.
    radius_px : float, optional
        Matching radius [px], matching on ``x_px, y_px``. Give exactly one of the two.

    Returns
    -------
    DetectionReport
        As :func:`score_detections` with ``by_class=True``.

    Raises
    ------
    FileNotFoundError
        If a file does not exist.
    ValueError
        If a file is not a valid atoms table, or for the reasons of :func:`score_detections`.
    """
    _resolve_radius(radius_A, radius_px)  # fail on the arguments before reading files
    pred = read_atoms_csv(pred_path)
    truth = read_atoms_csv(truth_path)
    return _score(
        pred,
        truth,
        radius_A=radius_A,
        radius_px=radius_px,
        by_class=True,
        names=(f"pred file {pred_path}", f"truth file {truth_path}"),
    )
