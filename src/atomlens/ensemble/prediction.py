"""Ensemble prediction maps and their uncertainty decomposition."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from atomlens._shared.validate import validate_threads

__all__ = ["Prediction", "decompose"]

_EPS = 1e-12
_BAND_PIXELS = 1 << 16  # pixels per band of rows in decompose


def _entropy(p: np.ndarray, axis: int) -> np.ndarray:
    return -(p * np.log(np.clip(p, _EPS, 1.0))).sum(axis=axis)


@dataclass(frozen=True)
class Prediction:
    """What an ensemble says about every pixel.

    Attributes
    ----------
    mean : ndarray of shape (K + 1, H, W)
        Member-averaged class probabilities, background first.
    predictive_entropy : ndarray of shape (H, W)
        Entropy of ``mean`` [nats]: total uncertainty.
    expected_entropy : ndarray of shape (H, W)
        Mean of the members' entropies [nats]: aleatoric (what every member finds
        ambiguous).
    mutual_information : ndarray of shape (H, W)
        ``predictive_entropy − expected_entropy`` [nats]: epistemic (the members disagree).
        Zero for an ensemble of one.
    variance : ndarray of shape (H, W)
        Variance across members of the foreground probability ``1 − p_background``.
    members : ndarray of shape (N, K + 1, H, W) or None
        The members' own maps, when asked for.
    class_names : tuple of str
        The K foreground classes.
    n_members : int
        N.

    References
    ----------
    .. [1] B. Lakshminarayanan, A. Pritzel, C. Blundell, "Simple and scalable predictive
       uncertainty estimation using deep ensembles", NeurIPS 2017.
    .. [2] S. Depeweg et al., "Decomposition of uncertainty in Bayesian deep learning for
       efficient and risk-sensitive learning", ICML 2018.
    """

    mean: np.ndarray
    predictive_entropy: np.ndarray
    expected_entropy: np.ndarray
    mutual_information: np.ndarray
    variance: np.ndarray
    members: np.ndarray | None
    class_names: tuple[str, ...]
    n_members: int

    @property
    def epistemic(self) -> np.ndarray:
        """Alias of :attr:`mutual_information`."""
        return self.mutual_information

    @property
    def aleatoric(self) -> np.ndarray:
        """Alias of :attr:`expected_entropy`."""
        return self.expected_entropy


def decompose(
    members: np.ndarray,
    /,
    *,
    class_names: tuple[str, ...],
    keep_members: bool = False,
    threads: int = 1,
) -> Prediction:
    """Build a :class:`Prediction` from per-member probabilities ``(N, K + 1, H, W)``.

    Parameters
    ----------
    members : ndarray of shape (N, K + 1, H, W)
        Each member's class probabilities, background first.
    class_names : tuple of str
        The K foreground classes.
    keep_members : bool
        Keep ``members`` in the result (:attr:`Prediction.members`).
    threads : int
        Bands of rows computed at once (the same numbers for any count: each band's are
        its own). ``find`` passes torch's thread count.

    Returns
    -------
    Prediction

    Examples
    --------
    >>> import numpy as np
    >>> agree = np.stack([np.array([[[0.9]], [[0.1]]])] * 3)   # 3 members, one pixel
    >>> round(float(decompose(agree, class_names=("C",)).mutual_information[0, 0]), 6)
    0.0
    >>> split = np.stack([np.array([[[0.99]], [[0.01]]]), np.array([[[0.01]], [[0.99]]])])
    >>> round(float(decompose(split, class_names=("C",)).mutual_information[0, 0]), 2)
    0.64
    """
    threads = validate_threads(threads)
    p = np.asarray(members, dtype=np.float32)
    if p.ndim != 4:
        raise ValueError(f"members must be (N, K + 1, H, W), got shape {p.shape}.")
    mean = p.mean(axis=0)
    # entropies in float64: their difference (the epistemic part) is small where members
    # agree. A band of rows at a time: the float64 copies of a 2048² px frame's maps
    # (0.4 GB for 4 members) left the caches and took 3× as long; the same numbers.
    h, w = mean.shape[-2:]
    pe, ee = np.empty((h, w)), np.empty((h, w))
    step = max(1, _BAND_PIXELS // max(w, 1))

    def band(r: int) -> None:
        rows = slice(r, r + step)
        pe[rows] = _entropy(mean[:, rows].astype(np.float64), axis=0)
        ee[rows] = _entropy(p[:, :, rows].astype(np.float64), axis=1).mean(axis=0)

    starts = range(0, h, step)
    if threads > 1 and len(starts) > 1:  # numpy's loops let go of the GIL
        with ThreadPoolExecutor(min(threads, len(starts))) as pool:
            list(pool.map(band, starts))
    else:
        for r in starts:
            band(r)
    mi = np.maximum(pe - ee, 0.0)
    fg = 1.0 - p[:, 0]
    return Prediction(
        mean=mean,
        predictive_entropy=pe.astype(np.float32),
        expected_entropy=ee.astype(np.float32),
        mutual_information=mi.astype(np.float32),
        variance=fg.var(axis=0).astype(np.float32),
        members=p if keep_members else None,
        class_names=tuple(class_names),
        n_members=len(p),
    )
