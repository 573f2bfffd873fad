"""Border-aware scoring of atoms against the truth: one rule for validation, calibration
and benchmarks (:func:`score_atoms`, :func:`inside_margin`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from atomlens.metrics.matching import match_points

__all__ = ["inside_margin", "score_atoms"]


def inside_margin(xy: np.ndarray, shape: tuple[int, ...], margin_px: float, /) -> np.ndarray:
    """Which points lie at least ``margin_px`` inside the image.

    Parameters
    ----------
    xy : ndarray of shape (N, 2)
        Points as (x, y) [px], pixel centres at integers.
    shape : tuple of int
        Image shape (…, H, W) [px].
    margin_px : float
        Margin [px].

    Returns
    -------
    ndarray of shape (N,), bool

    Examples
    --------
    >>> inside_margin(np.array([[0.5, 5.0], [5.0, 5.0], [9.0, 9.0]]), (10, 10), 1.0).tolist()
    [False, True, False]
    """
    h, w = int(shape[-2]), int(shape[-1])
    x, y = xy[:, 0], xy[:, 1]
    return (x >= margin_px) & (y >= margin_px) & (x <= w - 1 - margin_px) & (y <= h - 1 - margin_px)


def score_atoms(
    found: pd.DataFrame,
    truth: pd.DataFrame,
    /,
    *,
    shape: tuple[int, int],
    pixel_size: float,
    radius_A: float = 0.5,
    margin_A: float = 1.0,
    ignore: np.ndarray | None = None,
) -> dict:
    """Match found atoms to the truth away from the border: the one border rule of
    atomlens's validation, calibration and benchmarks.

    All atoms are matched one-to-one within ``radius_A`` (:func:`match_points`); then atoms
    (found or true) within ``margin_A`` of the border are not counted either way (columns
    cut by the border are ambiguous): a pair counts when its true atom is inside, a found
    atom is a false positive when it is inside and unmatched, a true atom a false negative
    when it is inside and unmatched.

    Parameters
    ----------
    found, truth : pandas.DataFrame
        Atoms tables with ``x_px, y_px``.
    shape : tuple of int
        Image shape (H, W) [px].
    pixel_size : float
        [Å/px].
    radius_A : float
        Matching radius [Å].
    margin_A : float
        Width of the border band left out [Å].
    ignore : ndarray of bool, optional
        True atoms that count neither way, and nor do the found atoms matched to them:
        e.g. columns the image does not show (:func:`shown_columns`).

    Returns
    -------
    dict
        ``tp, fp, fn``, ``sq_err_A2`` (squared x and y errors of the matched pairs [Å²],
        x then y per pair) and ``true_index`` (rows of ``truth`` matched, same order).
    """

    m = margin_A / pixel_size
    p_xy = found[["x_px", "y_px"]].to_numpy(float)
    t_xy = truth[["x_px", "y_px"]].to_numpy(float)
    match = match_points(p_xy, t_xy, radius=radius_A / pixel_size)
    p_core, t_core = inside_margin(p_xy, shape, m), inside_margin(t_xy, shape, m)
    if ignore is not None:
        ignore = np.asarray(ignore, bool)
        if ignore.shape != (len(t_xy),):
            raise ValueError(f"ignore must hold one flag per true atom ({len(t_xy)}).")
        # a found atom on an ignored column is matched, so it is no false positive either
        t_core = t_core & ~ignore
    matched_p = np.zeros(len(p_xy), bool)
    matched_p[match.pred_index] = True
    matched_t = np.zeros(len(t_xy), bool)
    matched_t[match.true_index] = True
    keep = t_core[match.true_index]
    d = (p_xy[match.pred_index] - t_xy[match.true_index])[keep] * pixel_size
    return {
        "tp": int(keep.sum()),
        "fn": int((t_core & ~matched_t).sum()),
        "fp": int((p_core & ~matched_p).sum()),
        "sq_err_A2": (d**2).ravel(),
        "true_index": match.true_index[keep],
    }


def shown_columns(truth: pd.DataFrame, /, *, min_share: float = 0.25) -> np.ndarray:
    """Which true columns a HAADF image shows: Σ Z^γ (``z_gamma_sum`` of the simulator's
    truth) at least ``min_share`` of the bright columns' (their 90th percentile, so that a
    few heavy dopants, such as Si in graphene at 4× a C column, do not count).

    The default 0.25 lies between what the real SrTiO3 [110] ADF image shows (its Ti
    columns, 0.37 of SrO's) and what it does not (its pure O columns, 0.13); it is the
    share below which ``haadf-any`` is not taught columns (``label_min_share``). Use the
    complement as ``ignore`` in :func:`score_atoms`; in bright field every column shows.
    """
    z = truth["z_gamma_sum"].to_numpy(float)
    return z >= float(min_share) * bright_level(z) if len(z) else np.zeros(0, bool)


def bright_level(z_gamma: np.ndarray, /) -> float:
    """The bright columns' Σ Z^γ: its 90th percentile over the columns, so that a few heavy
    dopants (Si in graphene at 4× a C column) do not set it. The one reference of
    :func:`shown_columns` and of :func:`atomlens.simulate.simulate_image`'s
    ``label_min_share``."""
    return float(np.percentile(np.asarray(z_gamma, float), 90))
