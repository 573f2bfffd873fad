"""Invariant VAEs and encoder–decoders between patches and spectra.

Learn a small latent space of patches around atoms (or any sub-images, or spectra) in which
rotation [rad], translation [px] and scale are separated from content: ``rvae`` (rotation,
translation, scale), ``jrvae`` (plus a discrete class), ``ssrvae`` (a few labels), ``cvae``
(conditioned on a known label or scalars), ``shiftvae`` (1-D spectra, shift separated from
shape) and a plain ``vae``; :func:`fit_translator` learns im2spec / spec2im.

Pyro provides the ELBO (with the discrete class enumerated exactly), torch the networks.
"""

from atomlens.vae.config import KINDS, VAEConfig
from atomlens.vae.fit import fit_vae, validate_samples
from atomlens.vae.inputs import load_samples, patches_at_atoms, spectra_at_atoms
from atomlens.vae.metrics import adjusted_rand_index, circular_correlation, circular_slope
from atomlens.vae.model import VAEModel
from atomlens.vae.translate import Translator, TranslatorConfig, fit_translator, r2_score

__all__ = [
    "KINDS",
    "Translator",
    "TranslatorConfig",
    "VAEConfig",
    "VAEModel",
    "adjusted_rand_index",
    "circular_correlation",
    "circular_slope",
    "fit_translator",
    "fit_vae",
    "load_samples",
    "patches_at_atoms",
    "r2_score",
    "spectra_at_atoms",
    "validate_samples",
]
