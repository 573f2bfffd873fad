"""Local descriptors: image patches around atoms, reduced (PCA/NMF) and clustered (GMM).

Patches have a fixed size in Å and are sampled at each atom's sub-pixel position (cubic
interpolation), so images of different sampling give comparable descriptors. Features
are standardised over all atoms; the number of Gaussian-mixture clusters is chosen by BIC
unless given.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "Clusters",
    "atom_patches",
    "cluster_descriptors",
    "radial_profiles",
    "reduce_patches",
]


def atom_patches(
    image: np.ndarray,
    atoms: pd.DataFrame,
    /,
    *,
    pixel_size: float,
    size_A: float = 3.0,
    samples: int = 15,
) -> np.ndarray:
    """Square patches ``size_A`` wide centred on every atom, ``(n, samples, samples)``.

    Parameters
    ----------
    image : ndarray of shape (H, W)
        The image the atoms were found in.
    atoms : pandas.DataFrame
        ``x_px, y_px``.
    pixel_size : float
        [Å/px].
    size_A : float
        Patch side [Å].
    samples : int
        Samples per side (odd: the atom sits on the centre sample).

    Returns
    -------
    ndarray of shape (n, samples, samples)
        Image values (cubic interpolation) on each atom's patch grid.

    Notes
    -----
    Patches that cross the image border repeat the edge pixels; drop atoms closer than
    ``size_A / 2`` to the border before clustering (they form clusters of their own).
    """
    from scipy.ndimage import map_coordinates

    img = np.asarray(image, dtype=np.float64)
    off = (np.arange(samples) - (samples - 1) / 2) * (size_A / pixel_size) / (samples - 1)
    dy, dx = np.meshgrid(off, off, indexing="ij")
    xy = atoms[["x_px", "y_px"]].to_numpy(float)
    rows = xy[:, 1, None, None] + dy[None]
    cols = xy[:, 0, None, None] + dx[None]
    vals = map_coordinates(img, [rows.ravel(), cols.ravel()], order=3, mode="nearest")
    return vals.reshape(len(xy), samples, samples)


def radial_profiles(patches: np.ndarray, /, *, rings: int | None = None) -> np.ndarray:
    """Rotation-invariant descriptors: each patch's mean in concentric rings, ``(n, rings)``.

    Neighbours at the same distances give the same profile whatever their directions
    (graphene's two sublattices, rotated grains), so clusters follow what sits in the
    column rather than its surroundings' orientation. Scaled by the median centre value.
    """
    n, s, _ = patches.shape
    c = (s - 1) / 2
    yy, xx = np.indices((s, s))
    r = np.hypot(yy - c, xx - c)
    k = rings if rings is not None else int(np.ceil(c)) + 1
    idx = np.minimum((r / (c + 0.5) * k).astype(int), k - 1)
    inside = r <= c + 0.5
    flat = patches.reshape(n, -1)[:, inside.ravel()]
    lab = idx.ravel()[inside.ravel()]
    counts = np.bincount(lab, minlength=k)
    prof = np.stack([np.bincount(lab, weights=row, minlength=k) for row in flat]) / counts
    scale = float(np.median(prof[:, 0])) or 1.0
    return prof / scale


def reduce_patches(
    patches: np.ndarray, /, *, method: str = "pca", n_components: int = 6, seed: int = 0
) -> np.ndarray:
    """Feature vectors of patches by PCA or NMF (scikit-learn), ``(n, n_components)``.

    Patches are scaled by the image's typical atom (median patch maximum) first, so that
    features do not depend on dose or detector gain.
    """
    from sklearn.decomposition import NMF, PCA

    x = patches.reshape(len(patches), -1).astype(np.float64)
    scale = float(np.median(x.max(axis=1))) or 1.0
    x = x / scale
    k = min(n_components, x.shape[0], x.shape[1])
    if method == "pca":
        return PCA(n_components=k, random_state=seed).fit_transform(x)
    if method == "nmf":
        return NMF(n_components=k, init="nndsvda", max_iter=1000, random_state=seed).fit_transform(
            np.clip(x, 0, None)
        )
    raise ValueError(f"method must be 'pca' or 'nmf', got {method!r}.")


@dataclass(frozen=True)
class Clusters:
    """Gaussian-mixture clusters of descriptors.

    Attributes
    ----------
    labels : ndarray of int
        Cluster of every atom (0 = the largest).
    n_clusters : int
        Clusters used.
    bic : dict
        BIC for each number of clusters tried (lower is better).
    probability : ndarray
        Probability of each atom's cluster.
    """

    labels: np.ndarray
    n_clusters: int
    bic: dict[int, float]
    probability: np.ndarray


def cluster_descriptors(
    features: np.ndarray, /, *, n_clusters: int | None = None, max_clusters: int = 6, seed: int = 0
) -> Clusters:
    """Gaussian-mixture clustering, the number of clusters by BIC unless given."""
    from sklearn.mixture import GaussianMixture
    from sklearn.preprocessing import StandardScaler

    z = StandardScaler().fit_transform(features)
    tries = [n_clusters] if n_clusters is not None else list(range(1, max_clusters + 1))
    fits = {
        k: GaussianMixture(k, covariance_type="full", n_init=3, random_state=seed).fit(z)
        for k in tries
        if k <= len(z)
    }
    bic = {k: float(g.bic(z)) for k, g in fits.items()}
    best = min(bic, key=bic.__getitem__)
    g = fits[best]
    proba = g.predict_proba(z)
    raw = proba.argmax(axis=1)
    order = np.argsort(-np.bincount(raw, minlength=best))
    relabel = np.empty(best, int)
    relabel[order] = np.arange(best)
    return Clusters(relabel[raw], best, bic, proba.max(axis=1))
