"""Hyperparameters of the invariant VAEs: one frozen, validated, JSON round-tripping config."""

from __future__ import annotations

import math
from dataclasses import dataclass

from atomlens._shared.config import ConfigDict

__all__ = ["KINDS", "VAEConfig"]

#: The model kinds, as ``--kind`` spells them.
KINDS = ("vae", "rvae", "jrvae", "ssrvae", "cvae", "shiftvae")


@dataclass(frozen=True)
class VAEConfig(ConfigDict):
    """What to learn and how.

    Parameters
    ----------
    kind : {"vae", "rvae", "jrvae", "ssrvae", "cvae", "shiftvae"}
        ``vae``: plain VAE (MLP decoder). ``rvae``: rotation, translation (and with
        ``scale``, scale) invariant VAE: the decoder draws the sample on a coordinate grid
        rotated by ``angle_rad``, shifted by ``dx_px, dy_px`` and scaled by ``scale``.
        ``jrvae``: rVAE with a discrete latent of ``classes`` classes as well. ``ssrvae``:
        jrVAE trained with a few labels. ``cvae``: VAE conditioned on a known label or
        scalars. ``shiftvae``: 1-D spectra, the decoder's energy grid shifted by ``dx_px``.
    latent_dim : int
        Content latents ``z1..zK`` (besides angle, shifts, scale and class).
    classes : int
        Discrete classes (``jrvae``, ``ssrvae``; for ``cvae`` the number of label values).
    epochs : int
        Passes over the data.
    batch_size : int
        Samples per step.
    lr : float
        Adam learning rate.
    hidden : int
        Width of the hidden layers.
    seed : int
        Seeds initialisation, shuffling and sampling: the same seed gives the same model.
    angle_prior_rad : float
        Standard deviation of the Gaussian prior on the rotation [rad]. Rotations are
        identifiable within the motif's symmetry period only (e.g. ±π/3 for a 3-fold motif).
    shift_prior_px : float
        Standard deviation of the Gaussian prior on ``dx_px, dy_px`` [px of the samples].
    scale : bool
        Learn a scale factor too (``rvae``, ``jrvae``, ``ssrvae``); its log has a Gaussian
        prior of standard deviation ``scale_prior``.
    scale_prior : float
        Standard deviation of the prior on ``log(scale)``.
    sigma : float
        Standard deviation of the Gaussian likelihood, in units of the normalised data (the
        data are scaled to about 0–1): smaller weighs reconstruction more against the prior.
    beta : float
        Weight of the KL term of the continuous latents (β-VAE; 1 is the plain ELBO).
    aux_weight : float
        ``ssrvae``: weight of the classifier term on the labelled samples.
    class_init : bool
        ``jrvae``, ``ssrvae``: start the class head from a Gaussian mixture of
        rotation-invariant features of the samples (:mod:`atomlens.vae.classinit`; with
        labels, its components are named after them), held by a cross-entropy term that
        fades out by half-way through training. Without it the benchmark's two motifs were
        still told apart, less confidently (mean class probability 0.64 against 0.86).
    class_kl : {"marginal", "elbo"}
        ``jrvae``, ``ssrvae``: the class's KL term. ``"elbo"``: the plain ELBO's
        ``KL(q(c|x) ‖ p(c))`` of every sample, which charges the class for the information it
        carries (up to ``log classes`` nats a sample), so that a content latent that learns
        the same split wins and the class collapses. ``"marginal"``: only
        ``KL(q̄(c) ‖ p(c))`` of the batch's average class probabilities, so the classes stay
        as balanced as the prior says while each sample's class is free (Dupont's joint-VAE
        capacity ``C_c = log classes`` from the start; Hoffman and Johnson's ELBO surgery).
    """

    kind: str = "rvae"
    latent_dim: int = 2
    classes: int = 2
    epochs: int = 100
    batch_size: int = 128
    lr: float = 1e-3
    hidden: int = 128
    seed: int = 0
    angle_prior_rad: float = math.pi / 2
    shift_prior_px: float = 1.0
    scale: bool = False
    scale_prior: float = 0.1
    sigma: float = 0.1
    beta: float = 1.0
    aux_weight: float = 50.0
    class_init: bool = True
    class_kl: str = "marginal"

    def __post_init__(self) -> None:
        bad = []
        if self.kind not in KINDS:
            bad.append(f"`kind` must be one of {', '.join(KINDS)}, got {self.kind!r}")
        for name, lo in [
            ("latent_dim", 1),
            ("classes", 2),
            ("epochs", 1),
            ("batch_size", 1),
            ("hidden", 4),
            ("seed", 0),
        ]:
            v = getattr(self, name)
            if not (isinstance(v, int) and not isinstance(v, bool) and v >= lo):
                bad.append(f"`{name}` must be an integer ≥ {lo}, got {v!r}")
        for name in (
            "lr",
            "angle_prior_rad",
            "shift_prior_px",
            "scale_prior",
            "sigma",
            "beta",
            "aux_weight",
        ):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                bad.append(f"`{name}` must be a positive number, got {v!r}")
        if self.class_kl not in ("marginal", "elbo"):
            bad.append(f"`class_kl` must be 'marginal' or 'elbo', got {self.class_kl!r}")
        if not isinstance(self.class_init, bool):
            bad.append(f"`class_init` must be true or false, got {self.class_init!r}")
        if bad:
            raise ValueError("; ".join(bad) + ".")

    @property
    def invariant(self) -> bool:
        """Whether the decoder works on a transformed coordinate grid."""
        return self.kind in ("rvae", "jrvae", "ssrvae", "shiftvae")

    @property
    def discrete(self) -> bool:
        """Whether the model has a discrete class latent."""
        return self.kind in ("jrvae", "ssrvae")
