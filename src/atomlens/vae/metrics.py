"""Scores of latents against known answers: circular correlation and slope of angles,
adjusted Rand index of classes."""

from __future__ import annotations

import numpy as np

__all__ = ["adjusted_rand_index", "circular_correlation", "circular_slope"]


def _centred(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, float)
    mean = np.arctan2(np.sin(a).mean(), np.cos(a).mean())
    return np.angle(np.exp(1j * (a - mean)))


def circular_correlation(a: np.ndarray, b: np.ndarray, /) -> float:
    """Circular correlation coefficient of two angle samples [rad] (Jammalamadaka and
    SenGupta 2001): ``Σ sin(a − ā) sin(b − b̄) / √(Σ sin²(a − ā) Σ sin²(b − b̄))`` with
    circular means ``ā, b̄``; ±1 when one is the other plus a constant (or minus)."""
    sa, sb = np.sin(_centred(a)), np.sin(_centred(b))
    return float((sa * sb).sum() / np.sqrt((sa**2).sum() * (sb**2).sum()))


def circular_slope(latent: np.ndarray, truth: np.ndarray, /) -> float:
    """Least-squares slope of ``latent`` against ``truth`` [rad/rad], both taken relative to
    their circular means and wrapped to (−π, π] (meaningful when both span less than π)."""
    a, b = _centred(latent), _centred(truth)
    return float((a * b).sum() / (b * b).sum())


def adjusted_rand_index(labels: np.ndarray, truth: np.ndarray, /) -> float:
    """Adjusted Rand index of two labellings (1: the same partition, ~0: chance)."""
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(np.asarray(truth), np.asarray(labels)))
