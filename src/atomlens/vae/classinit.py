"""Starting classes for the joint VAEs: a Gaussian mixture of rotation-invariant features.

A joint VAE's discrete latent starts out meaningless: both classes decode the same, so
the reconstruction says nothing about which class a sample is in, and the continuous
content latents learn what separates the classes instead (the class then collapses onto
one value). Starting the class head from a clustering breaks that symmetry: the decoder
of each class then sees different samples from the first step, and the ELBO refines the
classes from there. The features are invariant to the rotation the model separates
(ring means and ring spreads about the patch centre), so the starting classes are not
rotations in disguise.
"""

from __future__ import annotations

import numpy as np

__all__ = ["initial_classes", "ring_features"]


def ring_features(x: np.ndarray, /) -> np.ndarray:
    """Rotation-invariant features of patches: the mean and the standard deviation of each
    1 px wide ring about the patch centre, within the inscribed disc.

    Parameters
    ----------
    x : ndarray of shape (N, h, w)
        Patches.

    Returns
    -------
    ndarray of shape (N, 2 R)
        ``R`` ring means, then ``R`` ring standard deviations (``R ≈ min(h, w) / 2``).
    """
    n, h, w = x.shape
    yy, xx = np.indices((h, w))
    r = np.hypot(yy - (h - 1) / 2, xx - (w - 1) / 2)
    ring = np.floor(r).astype(int).ravel()
    inside = r.ravel() <= min(h, w) / 2
    ring, flat = ring[inside], x.reshape(n, -1)[:, inside]
    rings = int(ring.max()) + 1
    count = np.bincount(ring, minlength=rings).astype(float)
    onehot = np.zeros((ring.size, rings))
    onehot[np.arange(ring.size), ring] = 1.0
    mean = flat @ onehot / count
    sq = (flat**2) @ onehot / count
    return np.hstack([mean, np.sqrt(np.clip(sq - mean**2, 0, None))])


def initial_classes(
    x: np.ndarray,
    /,
    *,
    classes: int,
    labels: np.ndarray | None = None,
    seed: int = 0,
    components: int = 4,
) -> np.ndarray:
    """Class probabilities to start a joint VAE's class head from.

    A Gaussian mixture of ``classes`` components (full covariances, scikit-learn) on the
    first ``components`` principal components of the standardised :func:`ring_features`
    (image patches) or of the standardised samples (spectra). With ``labels``, the
    components are renamed to agree best with the labelled samples.

    Parameters
    ----------
    x : ndarray of shape (N, h, w) or (N, L)
        The samples (normalised or not: the features are standardised).
    classes : int
        Components.
    labels : ndarray of int, shape (N,), optional
        The class of labelled samples, -1 elsewhere.
    seed : int
        Seeds the mixture's initialisations.
    components : int
        Principal components kept.

    Returns
    -------
    ndarray of shape (N, classes)
        Each sample's component probabilities (rows sum to 1).
    """
    from itertools import permutations  # deferred: used only when renaming by labels

    from sklearn.decomposition import PCA  # deferred: scikit-learn is slow to import
    from sklearn.mixture import GaussianMixture
    from sklearn.preprocessing import StandardScaler

    feats = ring_features(x) if x.ndim == 3 else x.reshape(len(x), -1)
    feats = StandardScaler().fit_transform(feats)
    k = min(components, *feats.shape)
    feats = PCA(n_components=k, random_state=seed).fit_transform(feats)
    gmm = GaussianMixture(classes, covariance_type="full", n_init=5, random_state=seed)
    resp = gmm.fit(feats).predict_proba(feats)
    if labels is not None and (labels >= 0).any() and classes <= 6:
        lab = labels >= 0
        best = max(
            permutations(range(classes)),
            key=lambda p: resp[lab][np.arange(lab.sum()), np.asarray(p)[labels[lab]]].sum(),
        )
        resp = resp[:, np.asarray(best)]
    return resp
