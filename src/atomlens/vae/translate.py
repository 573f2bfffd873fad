"""im2spec and spec2im: encoder–decoders from a patch to a spectrum and back.

An MLP encoder maps the source (a patch around an atom, or a spectrum) to a small latent
vector, an MLP decoder maps that to the target; trained by least squares on pairs (after
Roccapriore et al. 2021, whose im2spec predicts the EELS spectrum at a pixel from the image
patch around it). Both sides are scaled to about 0–1 by their 0.5th and 99.5th percentiles.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from atomlens._shared.atomic import atomic_directory
from atomlens._shared.config import ConfigDict, json_default
from atomlens.vae.fit import validate_samples
from atomlens.vae.model import data_range
from atomlens.vae.nets import _mlp

__all__ = ["Translator", "TranslatorConfig", "fit_translator", "r2_score"]

FORMAT = "atomlens-translator/1"


@dataclass(frozen=True)
class TranslatorConfig(ConfigDict):
    """Hyperparameters of an im2spec / spec2im encoder–decoder.

    Parameters
    ----------
    direction : {"im2spec", "spec2im"}
        From patches to spectra, or back.
    latent_dim : int
        Width of the bottleneck.
    epochs, batch_size : int
        Passes over the data and samples per step.
    lr : float
        Adam learning rate.
    hidden : int
        Width of the hidden layers.
    seed : int
        Seeds initialisation and shuffling.
    """

    direction: str = "im2spec"
    latent_dim: int = 4
    epochs: int = 200
    batch_size: int = 64
    lr: float = 1e-3
    hidden: int = 128
    seed: int = 0

    def __post_init__(self) -> None:
        bad = []
        if self.direction not in ("im2spec", "spec2im"):
            bad.append(f"`direction` must be 'im2spec' or 'spec2im', got {self.direction!r}")
        for name in ("latent_dim", "epochs", "batch_size", "hidden"):
            v = getattr(self, name)
            if not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
                bad.append(f"`{name}` must be a positive integer, got {v!r}")
        if not (isinstance(self.seed, int) and self.seed >= 0):
            bad.append(f"`seed` must be an integer ≥ 0, got {self.seed!r}")
        if not (isinstance(self.lr, int | float) and math.isfinite(self.lr) and self.lr > 0):
            bad.append(f"`lr` must be a positive number, got {self.lr!r}")
        if bad:
            raise ValueError("; ".join(bad) + ".")


class Translator(nn.Module):
    """A trained im2spec or spec2im model; :meth:`predict` maps sources to targets."""

    def __init__(
        self,
        config: TranslatorConfig,
        source_shape: tuple[int, ...],
        target_shape: tuple[int, ...],
        *,
        source_norm: tuple[float, float] = (0.0, 1.0),
        target_norm: tuple[float, float] = (0.0, 1.0),
    ) -> None:
        super().__init__()
        self.config = config
        self.source_shape = tuple(int(s) for s in source_shape)
        self.target_shape = tuple(int(s) for s in target_shape)
        self.source_norm = (float(source_norm[0]), float(source_norm[1]))
        self.target_norm = (float(target_norm[0]), float(target_norm[1]))
        n_in, n_out = int(np.prod(self.source_shape)), int(np.prod(self.target_shape))
        self.encoder = _mlp(n_in, config.hidden, config.latent_dim)
        self.decoder = _mlp(config.latent_dim, config.hidden, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))

    def _scale(self, a: np.ndarray, norm: tuple[float, float]) -> torch.Tensor:
        lo, hi = norm
        return torch.as_tensor((a.reshape(len(a), -1) - lo) / (hi - lo), dtype=torch.float32)

    @torch.no_grad()
    def predict(self, source: np.ndarray, /) -> np.ndarray:
        """Targets of ``source`` (patches ``(N, h, w)`` or spectra ``(N, L)`` as in training)."""
        src = validate_samples(source, name="source")
        if src.shape[1:] != self.source_shape:
            raise ValueError(
                f"`source` samples have shape {src.shape[1:]}, the model takes {self.source_shape}."
            )
        self.eval()
        out = self(self._scale(src, self.source_norm)).numpy().astype(np.float64)
        lo, hi = self.target_norm
        return (out * (hi - lo) + lo).reshape(len(src), *self.target_shape)

    def header(self) -> dict[str, Any]:
        """What :meth:`load` needs besides the weights (JSON-ready)."""
        return {
            "format": FORMAT,
            "config": self.config.to_dict(),
            "source_shape": list(self.source_shape),
            "target_shape": list(self.target_shape),
            "source_norm": list(self.source_norm),
            "target_norm": list(self.target_norm),
        }

    def save(self, path: str | PathLike[str], /, *, overwrite: bool = False) -> Path:
        """Write ``config.json`` and ``weights.safetensors`` into the directory ``path``."""
        from safetensors.torch import save_file

        with atomic_directory(path, overwrite=overwrite) as tmp:
            (tmp / "config.json").write_text(
                json.dumps(self.header(), indent=2, default=json_default), encoding="utf-8"
            )
            state = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
            save_file(state, str(tmp / "weights.safetensors"), metadata={"format": FORMAT})
        return Path(path)

    @classmethod
    def load(cls, path: str | PathLike[str], /) -> Translator:
        """Read a directory written by :meth:`save` (safetensors + JSON)."""
        from safetensors.torch import load_file

        d = Path(path)
        for name in ("config.json", "weights.safetensors"):
            if not (d / name).is_file():
                raise FileNotFoundError(
                    f"{d / name} not found; give the directory `atomlens im2spec` or "
                    "`spec2im` wrote its model into."
                )
        head = json.loads((d / "config.json").read_text(encoding="utf-8"))
        if head.get("format") != FORMAT:
            raise ValueError(f"{d / 'config.json'} is not an atomlens im2spec/spec2im model.")
        model = cls(
            TranslatorConfig.from_dict(head["config"]),
            tuple(head["source_shape"]),
            tuple(head["target_shape"]),
            source_norm=tuple(head["source_norm"]),
            target_norm=tuple(head["target_norm"]),
        )
        model.load_state_dict(load_file(str(d / "weights.safetensors")))
        model.eval()
        return model


def fit_translator(
    images: np.ndarray,
    spectra: np.ndarray,
    /,
    *,
    config: TranslatorConfig | None = None,
    progress: bool | Callable[..., Any] = False,
) -> Translator:
    """Train im2spec (patches → spectra) or spec2im (spectra → patches) on pairs.

    Parameters
    ----------
    images : ndarray of shape (N, h, w)
        Patches, one per spectrum (e.g. cut at each atom).
    spectra : ndarray of shape (N, L)
        The spectrum of each patch.
    config : TranslatorConfig, optional
        ``direction`` says which way.
    progress : bool or callable
        Progress bar over epochs.

    Returns
    -------
    Translator
    """
    cfg = config if config is not None else TranslatorConfig()
    img = validate_samples(images, name="images")
    spec = validate_samples(spectra, name="spectra")
    if img.ndim != 3:
        raise ValueError(f"`images` must be (N, h, w) patches, got shape {img.shape}.")
    if spec.ndim != 2:
        raise ValueError(f"`spectra` must be (N, L) spectra, got shape {spec.shape}.")
    if len(img) != len(spec):
        raise ValueError(
            f"`images` has {len(img)} patches but `spectra` has {len(spec)} spectra; give one "
            "spectrum per patch."
        )
    src, tgt = (img, spec) if cfg.direction == "im2spec" else (spec, img)
    torch.manual_seed(cfg.seed)
    model = Translator(
        cfg, src.shape[1:], tgt.shape[1:], source_norm=data_range(src), target_norm=data_range(tgt)
    )
    xs, ys = model._scale(src, model.source_norm), model._scale(tgt, model.target_norm)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    epochs = range(cfg.epochs)
    if progress:
        from tqdm.auto import tqdm

        make = progress if callable(progress) else tqdm
        epochs = make(epochs, desc=cfg.direction, unit="epoch")
    model.train()
    for epoch in epochs:
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
        order = torch.randperm(len(xs), generator=g)
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            loss = nn.functional.mse_loss(model(xs[idx]), ys[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    return model


def r2_score(predicted: np.ndarray, truth: np.ndarray, /) -> float:
    """Coefficient of determination over all values: ``1 − Σ(p − t)² / Σ(t − t̄)²``, ``t̄``
    the mean of each value over the samples."""
    p = np.asarray(predicted, float).reshape(len(predicted), -1)
    t = np.asarray(truth, float).reshape(len(truth), -1)
    return float(1 - ((p - t) ** 2).sum() / ((t - t.mean(0)) ** 2).sum())
