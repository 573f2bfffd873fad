"""A σ for every atom, describing the position reported for it.

Each atom's position comes from one of two estimators (``position_source``): the Gaussian
fit on the raw image (``"fit"``) or the network's probability disk (``"network"``); a
column cut by the border reports their mean (``"mean"``). The uncertainty of each is built
from what the data says about that atom, per axis:

- ``fit_sigma_x_A`` / ``_y_A``: the fit's own σ (its curvature, scaled by its reduced χ²);
- ``crlb_x_A`` / ``_y_A``: a Cramér–Rao-type bound from the local signal (the column's
  height and width and the noise model learnt from the residuals,
  :func:`atomlens.locate.refine_gaussian`); present for every atom, fitted or not;
- ``member_spread_x_A`` / ``_y_A``: the ensemble members' spread (epistemic);
- ``neighbour_A`` with ``width_A`` and ``signal_snr``: how close the nearest column is in
  units of the column's width, and how faint the column is (:func:`sigma_features`);
- ``lattice_fit_A`` / ``lattice_network_A``: how far each estimator's positions of the
  atom's kind of column (its class, and its brightness mode within the class:
  :func:`column_kinds`) scatter about their own local lattice on this image
  (:func:`lattice_scatter`).

:class:`SigmaModel` maps them to σ: ``σ² = (a · m · base)² + (b · spread)² + c²`` with
``base`` the fit's σ for a fitted position and the bound for the network's,
``m = exp(w_overlap · overlap + w_faint · faintness)`` and one ``(a, b, c, w_overlap, w_faint)``
per source. The multiplier is there because a Gaussian fit's own σ counts the noise only:
a neighbour whose probe tails reach into the column pulls the fit by more than that
(``haadf-any``'s σ images, fitted positions: z RMS 3.2 with the nearest column within 3
widths, 1.1 beyond 5), and at a few counts the fit's curvature says less than it seems.
A model fitted since 2026-12-07 adds ``(e · lattice)²`` per source: the image's scatter of
that source's positions about their local lattice. A film pulls a Gaussian fit by far more
than its own σ says (graphene under 2–6 Å of film, ``haadf-generic``, 10⁵–10⁷ e⁻/Å²:
fitted positions 13–25 pm RMS off at a median fit σ of 1.1–2.8 pm, z RMS 5.9–10.8), and
neither the fit's χ² nor its gap to the network's position says so per atom. How far the
fitted columns sit from the midpoint of their opposite neighbours does, on the image as a
whole: 12.8–23.3 pm there, and 0.23–3.4 pm on the clean images of the same doses, whose
RMS errors are 0.19–3.3 pm. Since 2026-12-07 the scatter is taken per kind of column where
a kind has enough pairs of its own: a generic network calls SrTiO3's Sr, Ti–O and O
columns "atom" alike, and the faint O columns' scatter had set the bright ones' σ
(``haadf-generic`` on clean simulated SrTiO3 at 10⁵ e⁻/Å²: Sr's fitted positions 0.23 pm
off, their class's scatter 1.16 pm, their kind's 0.40 pm).
A model may also keep the fit's σ at least its own (``fit_floor``): the fit's σ is the
Cramér–Rao bound of the column model it fits, and a multiplier whose ``a`` falls below 1
(paid back by its features elsewhere) made σ smaller than that on bright isolated columns
(the bundled ``graphene`` on clean simulated graphene at 10⁶ e⁻/Å²: z RMS 1.37).
Since 2026-12-07 a model may also move each group's reported σ towards that group's scatter
about the lattice on the image (``(L / S) ** γ``, :func:`rescale_to_lattice`), where that
did better on simulated conditions left out of choosing ``γ``.
The coefficients are fitted on simulated images with known atoms under shifted conditions
(:func:`atomlens.train.fit_sigma_model`) and live in the model's ``calibration.json``;
without one, :data:`DEFAULT_SIGMA_MODEL` holds.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "DEFAULT_SIGMA_MODEL",
    "OVERLAP_REACH",
    "SIGMA_FEATURES",
    "SOURCES",
    "SigmaModel",
    "column_kinds",
    "faint_groups",
    "lattice_groups",
    "lattice_scatter",
    "rescale_to_lattice",
    "sigma_features",
]

#: The estimators a reported position can come from.
SOURCES: tuple[str, ...] = ("fit", "network", "mean")

#: The per-atom evidence that scales σ's base (:func:`sigma_features`).
SIGMA_FEATURES: tuple[str, ...] = ("overlap", "faintness")

#: Neighbours farther than this many column widths (Gaussian σ) do not count as overlap.
OVERLAP_REACH = 5.0


def sigma_features(
    neighbour_A: np.ndarray, width_A: np.ndarray, signal_snr: np.ndarray, /
) -> np.ndarray:
    """The evidence that scales σ's base, per atom: ``(overlap, faintness)``, shape (N, 2).

    Parameters
    ----------
    neighbour_A : ndarray
        Distance to the nearest other atom found [Å] (NaN: none).
    width_A : ndarray
        The column's width, the Gaussian σ of its fit [Å] (a class's median is the steadier
        choice; NaN: unknown).
    signal_snr : ndarray
        The column's peak height over its σ (NaN: unknown).

    Returns
    -------
    ndarray of shape (N, 2)
        ``overlap = max(0, OVERLAP_REACH − neighbour / width)``: 0 for an isolated column,
        growing as a neighbour's tails reach in; ``faintness = 10 / max(signal_snr, 1)``. Unknown
        inputs give 0 (the base alone).
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        u = np.asarray(neighbour_A, float) / np.asarray(width_A, float)
        overlap = np.nan_to_num(np.clip(OVERLAP_REACH - u, 0.0, OVERLAP_REACH), nan=0.0)
        faintness = np.nan_to_num(10.0 / np.maximum(np.asarray(signal_snr, float), 1.0), nan=0.0)
    return np.c_[overlap, faintness]


#: Opposite neighbours are looked for within this many nearest-neighbour distances (the
#: second neighbours of a honeycomb lie at √3, its third at 2).
LATTICE_REACH = 2.1
#: Two neighbours are opposite when their offsets from the atom add up to less than this
#: share of the nearest-neighbour distance.
LATTICE_PAIR_TOL = 0.4
#: Fewest atoms of a class with a pair of opposite neighbours for its own scatter; with
#: fewer, the image's atoms are pooled, and with fewer than that in all there is none.
LATTICE_MIN_PAIRS = 20
#: Least share of a class's atoms with a pair for it to count as a lattice: about all of
#: them on a lattice (2.3–4.4 pairs per atom on a honeycomb or square one with errors up to
#: 7 % of the nearest-neighbour distance), 12–16 % of points strewn at random.
LATTICE_MIN_SHARE = 0.5
#: Deviations farther than this many MADs from their median are left out of the scatter
#: (a missing neighbour matched to the wrong one, a defect).
LATTICE_TRIM_MADS = 10.0


def _opposite_pairs(reference: np.ndarray, groups: np.ndarray, chunk: int = 2000) -> np.ndarray:
    """Every triple ``(i, j, k)`` (M, 3) of a point of ``reference`` (N, 2) and two
    neighbours of one group whose offsets from it add up to less than
    :data:`LATTICE_PAIR_TOL` of the nearest-neighbour distance.

    All such pairs, not the one that cancels best: which pair cancels best is decided by the
    positions' own errors, and its deviation is then biased small (on one lattice with
    known errors, 0.71× their σ)."""
    from scipy.spatial import cKDTree  # deferred: only where σ is made

    finite = np.isfinite(reference).all(axis=1)
    if finite.sum() < 3:
        return np.zeros((0, 3), dtype=np.int64)
    where = np.nonzero(finite)[0]
    pts = reference[finite]
    tree = cKDTree(pts)
    d_nn = float(np.median(tree.query(pts, k=2)[0][:, 1]))
    k = min(len(pts), 19)
    dist, idx = tree.query(pts, k=k, distance_upper_bound=LATTICE_REACH * d_nn)
    # the point itself and neighbours out of reach: none (-1)
    idx = np.where(np.isfinite(dist) & (dist > 0), np.minimum(idx, len(pts) - 1), -1)
    g = groups[finite]
    a_i, b_i = np.triu_indices(k, 1)
    found = []
    for lo in range(0, len(pts), chunk):
        ix = idx[lo : lo + chunk]
        v = np.where((ix >= 0)[..., None], pts[ix] - pts[lo : lo + chunk, None], np.nan)
        with np.errstate(invalid="ignore"):
            close = np.linalg.norm(v[:, a_i] + v[:, b_i], axis=-1) < LATTICE_PAIR_TOL * d_nn
        ia, ib = ix[:, a_i], ix[:, b_i]
        close &= (ia >= 0) & (ib >= 0) & (g[ia] == g[ib])
        r, c = np.nonzero(close)
        found.append(np.c_[r + lo, ia[r, c], ib[r, c]])
    return where[np.concatenate(found)] if found else np.zeros((0, 3), dtype=np.int64)


def _scatter(dev: np.ndarray) -> float:
    """One-axis σ [dev's units] of deviations ``dev`` (M, 2) from the midpoint of two
    opposite neighbours: their trimmed RMS about the median over √1.5 (each deviation is
    the atom's error less the mean of its two neighbours')."""
    c = dev - np.median(dev, axis=0)
    mad = 1.4826 * np.median(np.abs(c), axis=0)
    keep = np.abs(c) <= LATTICE_TRIM_MADS * np.maximum(mad, 1e-12)
    return float(np.sqrt(np.mean(c[keep] ** 2) / 1.5)) if keep.any() else float("nan")


#: Most brightness modes one class is split into (:func:`column_kinds`).
KINDS_MAX = 3
#: Two adjacent brightness modes count as separate kinds of column when Ashman's
#: D = √2 |μ₁ − μ₂| / √(s₁² + s₂²) of their log intensities is at least this (2 is the usual
#: bound for a clean separation; a skewed single mode gives less).
KIND_SEPARATION = 2.0
#: Most columns of one class the brightness modes are fitted on (a random subset beyond).
KINDS_FIT_MAX = 4000


def column_kinds(
    intensity: np.ndarray, groups: np.ndarray | None = None, /, seed: int = 0
) -> np.ndarray:
    """Per atom, a label of its class and its brightness mode within the class.

    A network that calls every column "atom" still sees very different columns in one image:
    in SrTiO3 [001] under HAADF the Sr, Ti–O and O columns differ several-fold in intensity
    and in how precisely they can be placed. Their log intensities are fitted by 1-, 2- and
    3-component Gaussian mixtures per class; the one with the smallest BIC is kept, with
    fewer components while two adjacent ones are less than :data:`KIND_SEPARATION` apart.

    Parameters
    ----------
    intensity : ndarray (N,)
        Each column's integrated intensity [counts; NaN or ≤ 0: unknown].
    groups : ndarray (N,), optional
        Each atom's class; one class if omitted.
    seed : int
        Seed of the mixtures' initialisation.

    Returns
    -------
    ndarray (N,) of int
        One label per (class, mode); −1 where the intensity is unknown. A class with fewer
        than 2 × :data:`LATTICE_MIN_PAIRS` known intensities is one kind (its modes could
        not reach the size a scatter needs).
    """
    # deferred: scikit-learn is slow to import
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    inten = np.asarray(intensity, float).reshape(-1)
    g = np.zeros(len(inten), int) if groups is None else np.unique(groups, return_inverse=True)[1]
    out = np.full(len(inten), -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        logi = np.where(inten > 0, np.log(inten), np.nan)
    label = 0
    for k in np.unique(g):
        sel = np.nonzero((g == k) & np.isfinite(logi))[0]
        x = logi[sel].reshape(-1, 1)
        kinds = np.zeros(len(sel), int)
        if len(sel) >= 2 * LATTICE_MIN_PAIRS and np.ptp(x) > 0:
            # a few thousand columns pin three modes down (10⁵ took 3.5 s, 3000 0.2 s)
            rng = np.random.default_rng(seed)
            xs = x if len(x) <= KINDS_FIT_MAX else rng.choice(x, KINDS_FIT_MAX, replace=False)
            fits = []
            for c in range(1, min(KINDS_MAX, len(np.unique(xs))) + 1):
                with warnings.catch_warnings():
                    # a mixture short of convergence is still scored by its BIC
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    gm = GaussianMixture(c, n_init=2, random_state=seed).fit(xs)
                order = np.argsort(gm.means_[:, 0])
                mu, sd = gm.means_[order, 0], np.sqrt(gm.covariances_.reshape(-1)[order])
                d = np.sqrt(2) * np.diff(mu) / np.sqrt(sd[1:] ** 2 + sd[:-1] ** 2)
                if c == 1 or d.min() >= KIND_SEPARATION:
                    fits.append((gm.bic(xs), gm, order))
            _, gm, order = min(fits, key=lambda f: f[0])
            kinds = np.argsort(order)[gm.predict(x)]
        out[sel] = label + kinds
        label += KINDS_MAX
    return out


def _deviations(p: np.ndarray, tri: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each triple's deviation ``p[i] − (p[j] + p[k]) / 2`` (M, 2) where all three are
    measured, and the atom ``i`` it belongs to."""
    dev = p[tri[:, 0]] - 0.5 * (p[tri[:, 1]] + p[tri[:, 2]])
    ok = np.isfinite(dev).all(axis=1)
    return dev[ok], tri[ok, 0]


def lattice_scatter(
    points: np.ndarray,
    reference: np.ndarray,
    groups: np.ndarray | None = None,
    /,
    kinds: np.ndarray | None = None,
) -> np.ndarray:
    """How far positions scatter about their own local lattice, per atom: its kind's (or
    class's) one-axis RMS deviation from the midpoint of two opposite neighbours, over √1.5.

    For every atom, the pairs of neighbours of one class whose offsets cancel are found on
    ``reference`` (the network's positions: a film pulls fits so far that opposite
    fitted neighbours no longer look opposite); each pair's deviation ``p − (p₁ + p₂)/2`` is then
    measured on ``points``. A locally affine lattice (strain, drift, a uniform shift of one
    sublattice) leaves it at zero, so what remains is the positions' own error and
    whatever truly displaces single columns (defects, tilt patterns): on an image where
    those are common, this overstates the error.

    Parameters
    ----------
    points : ndarray (N, 2)
        The positions measured [any unit; NaN: none, e.g. an atom the fit gave up on].
    reference : ndarray (N, 2)
        Positions of the same atoms the opposite neighbours are found on [same unit].
    groups : ndarray (N,), optional
        Class of each atom: each class gets its own scatter where at least
        :data:`LATTICE_MIN_PAIRS` of its atoms, and :data:`LATTICE_MIN_SHARE` of them,
        have a pair (the image's pooled one otherwise); one class if omitted.
    kinds : ndarray (N,) of int, optional
        Each atom's kind of column (:func:`column_kinds`; −1: unknown). A kind that passes
        the same test on pairs of its own kind around atoms of its own kind gets its own
        scatter, ahead of its class's: one class's bright and faint columns are placed with
        very different precision (bright Sr, faint O in SrTiO3), and the faint ones' pairs
        would otherwise set the bright ones' scatter.

    Returns
    -------
    ndarray (N,)
        Per atom, its kind's, else its class's scatter [the points' unit]; NaN where the
        image's atoms fail that test (no lattice to speak of).
    """
    p = np.asarray(points, float).reshape(-1, 2)
    ref = np.asarray(reference, float).reshape(-1, 2)
    if len(p) != len(ref):
        raise ValueError(f"lattice_scatter: {len(p)} points for {len(ref)} reference points.")
    kd = None if kinds is None else np.asarray(kinds, int).reshape(-1)
    if kd is not None and len(kd) != len(p):
        raise ValueError(f"lattice_scatter: {len(kd)} kinds for {len(p)} points.")
    g = np.zeros(len(p), int) if groups is None else np.unique(groups, return_inverse=True)[1]
    out = np.full(len(p), np.nan)
    dev, owner = _deviations(p, _opposite_pairs(ref, g))
    measured = np.isfinite(p).all(axis=1)

    def lattice(atoms: np.ndarray, owner: np.ndarray) -> bool:
        # enough of them, and most of them, with a pair
        n = len(np.unique(owner[atoms[owner]]))
        return n >= LATTICE_MIN_PAIRS and n >= LATTICE_MIN_SHARE * (atoms & measured).sum()

    if not lattice(np.ones(len(p), bool), owner):
        return out
    out[:] = _scatter(dev)
    for k in np.unique(g):
        if lattice(g == k, owner):
            out[g == k] = _scatter(dev[g[owner] == k])
    if kd is None:
        return out
    # pairs of one kind about an atom of that kind: the unknown (−1) pair with none
    tri = _opposite_pairs(ref, np.where(kd >= 0, kd, -1 - np.arange(len(kd))))
    dev, owner = _deviations(p, tri[kd[tri[:, 0]] == kd[tri[:, 1]]])
    for k in np.unique(kd[kd >= 0]):
        if lattice(kd == k, owner):
            out[kd == k] = _scatter(dev[kd[owner] == k])
    return out


def _default_coef() -> dict[str, list[float]]:
    # uncalibrated: the fit's σ as it is; the network's the bound, the members' spread
    # and a floor of 1 pm (the network's positions level off near 1 pm at high dose on
    # the bundled graphene ensemble: benchmarks/accuracy_vs_dose.py)
    return {"fit": [1.0, 0.0, 0.0], "network": [1.5, 1.0, 0.01]}


@dataclass(frozen=True)
class SigmaModel:
    """Per-source coefficients of ``σ² = (a · m · base)² + (b · spread)² + c²`` [c in Å],
    ``m = exp(w_overlap · overlap + w_faint · faintness)`` (:func:`sigma_features`).

    Attributes
    ----------
    coef : dict of str to [a, b, c] or [a, b, c, w_overlap, w_faint]
        For ``"fit"`` (base: the fit's σ) and ``"network"`` (base: the Cramér–Rao-type
        bound); three numbers mean no multiplier (the σ models saved before it). A
        ``"mean"`` position takes the larger σ of the two (the error of a mean is never
        larger than the larger error). Optionally ``"fit_decision"`` and
        ``"network_decision"``: the ``(a, b, c)`` without a multiplier that
        ``positions="auto"`` decides by (see
        :func:`atomlens.train.calibration.fit_sigma_model`); without them auto decides by
        the reported σ. Optionally ``"<key>_lattice"``: ``[e]``, adding ``(e · lattice)²``
        to the σ² of ``<key>`` (``fit``, ``network``, ``fit_decision``,
        ``network_decision``), with ``lattice`` that source's :func:`lattice_scatter` [Å];
        without it, no such term (the σ models saved before 2026-12-07). Optionally
        ``"<key>_floor"``: ``[k]``, the least scale of the base (``a · m`` is taken as at
        least ``k``): ``[1.0]`` for the fit, whose own σ is the Cramér–Rao bound of the
        model it fits, so that its error is never less (models fitted since 2026-12-07).
        Optionally ``"fit_rescale"`` / ``"network_rescale"``: ``[γ]`` or ``[γ, γ_faint]``,
        the exponents by which the reported σ of that source is moved towards its lattice
        scatter, group by group (:meth:`rescaled`, :func:`rescale_to_lattice`); what auto
        decides by is not rescaled.
    """

    coef: Mapping[str, list[float]] = field(default_factory=_default_coef)

    def __post_init__(self) -> None:
        weights = (
            f"optionally followed by the non-negative weights of {', '.join(SIGMA_FEATURES)}; "
        )
        checks = [(src, (3, 3 + len(SIGMA_FEATURES)), weights) for src in ("fit", "network")]
        checks += [(k, (3,), "") for k in ("fit_decision", "network_decision") if k in self.coef]
        for key, v in self.coef.items():
            for term, what in (
                ("_floor", "the least scale of the base"),
                ("_lattice", "e"),
                ("_rescale", "γ of rescale_to_lattice; or two: γ, then its faint groups' γ"),
            ):
                if key.endswith(term) and (
                    len(v) not in ((1, 2) if term == "_rescale" else (1,))
                    or not all(np.isfinite(v))
                    or min(v) < 0
                    or key.removesuffix(term) not in self.coef
                ):
                    raise ValueError(
                        f"SigmaModel coef[{key!r}] must be one non-negative number ({what}) "
                        f"beside coef[{key.removesuffix(term)!r}], got {v!r}."
                    )
        for key, lengths, also in checks:
            v = self.coef.get(key)
            if v is None or len(v) not in lengths or not all(np.isfinite(v)) or min(v) < 0:
                raise ValueError(
                    f"SigmaModel coef[{key!r}] must be three non-negative numbers (a, b, c), "
                    f"{also}got {v!r}."
                )

    def multiplier(
        self, source: str, features: np.ndarray | None, /, ndim: int = 2
    ) -> np.ndarray | float:
        """``m`` of ``source`` for per-atom ``features`` ((N, 2), :func:`sigma_features`),
        shaped to multiply a base of ``ndim`` dimensions whose first axis is the atom
        ((N,) or (N, 1)); 1 without features or weights."""
        w = np.asarray(self.coef[source][3:], float)
        if features is None or not len(w):
            return 1.0
        return _per_axis(np.exp(np.asarray(features, float) @ w), ndim)

    def sigma(
        self,
        source: str,
        base: np.ndarray,
        spread: np.ndarray | float = 0.0,
        /,
        features: np.ndarray | None = None,
        lattice: np.ndarray | None = None,
    ) -> np.ndarray:
        """σ [Å] of positions from ``source`` with the given ``base`` and members'
        ``spread`` [Å] (arrays of one shape, (N, 2) per axis; NaN spread counts as 0),
        per-atom ``features`` ((N, 2), :func:`sigma_features`; none: m = 1) and per-atom
        ``lattice`` scatter of the source's positions ((N,), :func:`lattice_scatter` [Å];
        none or NaN: no such term)."""
        a, b, c = self.coef[source][:3]
        sp = np.nan_to_num(np.asarray(spread, float), nan=0.0)
        base = np.asarray(base, float)
        if features is not None and len(features) != len(base):
            raise ValueError(
                f"SigmaModel.sigma: {len(features)} rows of features for {len(base)} atoms."
            )
        m = self.multiplier(source, features, base.ndim)
        scale = np.maximum(a * m, self.coef.get(f"{source}_floor", [0.0])[0])
        var = (scale * base) ** 2 + (b * sp) ** 2 + c * c
        e = self.coef.get(f"{source}_lattice", [0.0])[0]
        if lattice is not None and e > 0:
            lat = np.nan_to_num(np.asarray(lattice, float), nan=0.0)
            if len(lat) != len(base):
                raise ValueError(
                    f"SigmaModel.sigma: {len(lat)} lattice scatters for {len(base)} atoms."
                )
            var = var + (e * _per_axis(lat, base.ndim)) ** 2
        return np.sqrt(var)

    def rescaled(
        self,
        source: str,
        sigma: np.ndarray,
        lattice: np.ndarray | None,
        /,
        signal_snr: np.ndarray | None = None,
    ) -> np.ndarray:
        """``sigma`` of ``source`` (N, 2) [Å] times ``(L / S) ** γ`` per group of atoms
        sharing one lattice scatter ``L`` ((N,), :func:`lattice_scatter` [Å]), with ``S``
        the RMS of the group's ``sigma`` and ``γ`` the model's ``"<source>_rescale"``:
        ``[γ]``, or ``[γ, γ_faint]`` with ``γ_faint`` for groups whose median
        ``signal_snr`` is below :data:`RESCALE_FAINT_SNR` (none, or no lattice: ``sigma``
        as it is). See :func:`rescale_to_lattice`."""
        g = self.coef.get(f"{source}_rescale", [0.0])
        if lattice is None or max(g) <= 0:
            return np.asarray(sigma, float)
        return rescale_to_lattice(sigma, lattice, g[0], g[-1], signal_snr)

    def decision_sigma(
        self,
        source: str,
        base: np.ndarray,
        spread: np.ndarray | float = 0.0,
        /,
        features: np.ndarray | None = None,
        lattice: np.ndarray | None = None,
    ) -> np.ndarray:
        """σ [Å] that ``positions="auto"`` decides by: ``"<source>_decision"``'s plain
        ``(a, b, c)`` (and its lattice term) where the model has it, else :meth:`sigma`
        (the reported σ)."""
        key = f"{source}_decision"
        if key in self.coef:
            return self.sigma(key, base, spread, lattice=lattice)
        return self.sigma(source, base, spread, features=features, lattice=lattice)

    def to_dict(self) -> dict[str, list[float]]:
        """The coefficients as plain lists (JSON)."""
        return {k: [float(x) for x in v] for k, v in self.coef.items()}


#: Fewest atoms with a σ in a group of one lattice scatter for :func:`rescale_to_lattice`
#: to rescale it (as many as the scatter itself needs).
RESCALE_MIN_ATOMS = LATTICE_MIN_PAIRS
#: The ratio of a group's lattice scatter to its RMS σ is taken within this range: beyond
#: it, something other than the positions' error sets one of them (a film whose pull only
#: some fits follow, a lattice of few atoms).
RESCALE_RATIO_RANGE = (0.25, 4.0)
#: A group whose median column is fainter than this (peak over its σ) takes the faint
#: exponent of :func:`rescale_to_lattice`: the network places a column it barely sees from
#: its neighbours, and their errors move together, so the scatter about them understates
#: the error (``haadf-any``'s σ images: scatter / RMS error 0.47 for network groups below
#: 3, 0.87–1.04 above).
RESCALE_FAINT_SNR = 3.0


def lattice_groups(lattice: np.ndarray, /) -> list[np.ndarray]:
    """The atoms of each group of one lattice scatter (:func:`lattice_scatter` gives every
    atom of a kind, class or image the same value), as index arrays; atoms without a
    scatter (NaN or 0) are in none."""
    lat = np.asarray(lattice, float).reshape(-1)
    inv = np.full(len(lat), -1)
    ok = np.isfinite(lat) & (lat > 0)
    values, inv[ok] = np.unique(lat[ok], return_inverse=True)
    return [np.nonzero(inv == k)[0] for k in range(len(values))]


def faint_groups(lattice: np.ndarray, signal_snr: np.ndarray | None, /) -> np.ndarray:
    """Per atom, whether its group of one lattice scatter is faint: its median
    ``signal_snr`` below :data:`RESCALE_FAINT_SNR` (unknown: not faint)."""
    n = len(np.asarray(lattice).reshape(-1))
    return _faint(lattice_groups(lattice), signal_snr, n)


def _faint(groups: list[np.ndarray], signal_snr: np.ndarray | None, n: int) -> np.ndarray:
    """:func:`faint_groups` of ``n`` atoms from their :func:`lattice_groups`."""
    out = np.zeros(n, bool)
    if signal_snr is None:
        return out
    snr = np.asarray(signal_snr, float).reshape(-1)
    for grp in groups:
        med = np.nanmedian(snr[grp]) if np.isfinite(snr[grp]).any() else np.nan
        out[grp] = bool(med < RESCALE_FAINT_SNR)
    return out


def rescale_to_lattice(
    sigma: np.ndarray,
    lattice: np.ndarray,
    gamma: float,
    /,
    gamma_faint: float | None = None,
    signal_snr: np.ndarray | None = None,
) -> np.ndarray:
    """σ of one source's positions moved towards what their scatter about the local
    lattice says, group by group.

    The σ model predicts each atom's error from its own evidence (the fit's curvature, the
    bound, the members' spread) with coefficients fitted on our simulator; how far the same
    positions scatter about their own lattice (:func:`lattice_scatter`) measures the error of
    the group as a whole on *this* image, whatever made it. Where the two differ the model
    was fitted on images unlike this one (another probe, another simulator's physics: the
    bundled ``haadf-any`` on abTEM graphene at 10⁵–10⁶ e⁻/Å², σ 1.5–1.6× the RMS error while
    the scatter was 1.00–1.05× it). Each group's σ is scaled by ``(L / S) ** gamma``: ``L``
    its scatter, ``S`` the RMS of its σ, so the ranking of atoms within the group stays the
    model's and ``gamma`` (fitted with the model, 0: the model alone, 1: the scatter alone)
    says how far the image's own measure is trusted. The scatter misses errors shared by
    neighbours (a sublattice's common shift, a smooth pull, a faint column placed from its
    neighbours), so it is not taken whole.

    Parameters
    ----------
    sigma : ndarray (N,) or (N, 2)
        σ of each atom's position from one source [Å] (NaN: none).
    lattice : ndarray (N,)
        That source's lattice scatter of each atom's group [Å] (atoms of one group share
        the value; NaN: no lattice).
    gamma : float
        The exponent, 0–1.
    gamma_faint : float, optional
        The exponent for faint groups (:func:`faint_groups`); ``gamma`` if omitted.
    signal_snr : ndarray (N,), optional
        Each column's peak over its σ, which says which groups are faint.

    Returns
    -------
    ndarray
        ``sigma`` rescaled; unchanged in groups without a scatter or with fewer than
        :data:`RESCALE_MIN_ATOMS` atoms with a σ.
    """
    sig = np.asarray(sigma, float)
    lat = np.asarray(lattice, float).reshape(-1)
    if len(lat) != len(sig):
        raise ValueError(f"rescale_to_lattice: {len(lat)} lattice scatters for {len(sig)} σ.")
    groups = lattice_groups(lat)
    faint = _faint(groups, signal_snr, len(lat))
    g_faint = gamma if gamma_faint is None else gamma_faint
    f = np.ones(len(sig))
    per_atom = sig.reshape(len(sig), -1)
    has = np.isfinite(per_atom).all(axis=1) & (per_atom > 0).all(axis=1)
    for grp in groups:
        if has[grp].sum() < RESCALE_MIN_ATOMS:
            continue
        s = float(np.sqrt(np.mean(per_atom[grp[has[grp]]] ** 2)))
        ratio = float(np.clip(lat[grp[0]] / s, *RESCALE_RATIO_RANGE))
        f[grp] = ratio ** (g_faint if faint[grp[0]] else gamma)
    return sig * _per_axis(f, sig.ndim)


def _per_axis(per_atom: np.ndarray, ndim: int) -> np.ndarray:
    """A per-atom array (N,) shaped to multiply or add to a per-axis one of ``ndim``
    dimensions whose first axis is the atom ((N,) or (N, 2))."""
    return per_atom.reshape(per_atom.shape + (1,) * max(ndim - 1, 0))


#: What an ensemble without a fitted σ model uses.
DEFAULT_SIGMA_MODEL = SigmaModel()
