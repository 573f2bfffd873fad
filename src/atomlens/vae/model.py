"""The VAE model: networks, the Pyro model and guide, encoding, decoding and its files.

One class covers every kind (:data:`atomlens.vae.config.KINDS`); the config says which
latents exist. Latents, in this order: ``angle_rad`` [rad], ``dx_px``, ``dy_px`` [px]
(``shiftvae``: ``dx_px`` only, in channels), ``scale`` (stored as its log), then content
``z1..zK``; joint models add a class with its probability.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from torch import nn

from atomlens._shared.atomic import atomic_directory
from atomlens._shared.config import json_default
from atomlens.vae.config import VAEConfig
from atomlens.vae.nets import CoordDecoder, Encoder, MLPDecoder, transform_grid

__all__ = ["CONFIG_FILE", "FORMAT", "WEIGHTS_FILE", "VAEModel"]

FORMAT = "atomlens-vae/2"  # 2: the encoder gives shifts in prior units
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"


class VAEModel(nn.Module):
    """A trained (or to be trained) VAE of samples of one shape.

    Build it with :func:`atomlens.vae.fit_vae`; load a saved one with :meth:`load`.

    Parameters
    ----------
    config : VAEConfig
        What to learn.
    sample_shape : tuple of int
        ``(h, w)`` for image patches [px], ``(L,)`` for spectra [channels].
    n_cond : int
        Width of the condition vector (``cvae``).
    norm : (float, float)
        ``(low, high)``: data are scaled as ``(x − low) / (high − low)`` before the networks.
    """

    def __init__(
        self,
        config: VAEConfig,
        sample_shape: Sequence[int],
        *,
        n_cond: int = 0,
        norm: tuple[float, float] = (0.0, 1.0),
    ) -> None:
        super().__init__()
        self.config = config
        self.sample_shape = tuple(int(s) for s in sample_shape)
        self.n_cond = int(n_cond)
        self.norm = (float(norm[0]), float(norm[1]))
        if config.kind == "shiftvae" and len(self.sample_shape) != 1:
            raise ValueError(
                f"`kind='shiftvae'` learns 1-D spectra (N, L); got samples of shape "
                f"{self.sample_shape}. Use `kind='rvae'` for image patches."
            )
        if config.kind in ("rvae", "jrvae", "ssrvae") and len(self.sample_shape) != 2:
            raise ValueError(
                f"`kind={config.kind!r}` learns image patches (N, h, w); got samples of shape "
                f"{self.sample_shape}. Use `kind='shiftvae'` for spectra."
            )
        if config.kind == "cvae" and self.n_cond < 1:
            raise ValueError("`kind='cvae'` needs `conditions` (a label or scalars per sample).")
        n_pix = int(np.prod(self.sample_shape))
        names = self.transform_names()
        self.n_transform = len(names)
        n_latent = self.n_transform + config.latent_dim
        n_classes = config.classes if config.discrete else 0
        self.encoder = Encoder(
            n_pix, n_latent, hidden=config.hidden, n_cond=self.n_cond, n_classes=n_classes
        )
        n_dec_in = config.latent_dim + n_classes + self.n_cond
        if config.invariant:
            self.decoder: nn.Module = CoordDecoder(
                len(self.sample_shape), n_dec_in, hidden=config.hidden
            )
        else:
            self.decoder = MLPDecoder(n_dec_in, n_pix, hidden=config.hidden)
        if n_classes:
            # every class starts drawing the same: otherwise the class whose random weights
            # happen to draw best takes every sample at the first step, and the others never
            # learn (the decoders differ only as they learn the classes they are given)
            first = self.decoder.latent if config.invariant else self.decoder.body[0]
            with torch.no_grad():
                first.weight[:, config.latent_dim : config.latent_dim + n_classes] = 0.0
        prior = [
            {"angle_rad": config.angle_prior_rad, "log_scale": config.scale_prior}.get(
                n, config.shift_prior_px
            )
            for n in names
        ] + [1.0] * config.latent_dim
        self.register_buffer("prior_scale", torch.tensor(prior, dtype=torch.float32))
        unit = [config.shift_prior_px if n in ("dx_px", "dy_px") else 1.0 for n in names]
        unit += [1.0] * config.latent_dim
        self.register_buffer(
            "encoder_unit", torch.tensor(unit, dtype=torch.float32), persistent=False
        )
        self.register_buffer("grid", self._grid(), persistent=False)
        self.register_buffer("mask", self._mask(), persistent=False)

    # ---- layout -------------------------------------------------------------------------

    def transform_names(self) -> list[str]:
        """Names of the transform latents, in order."""
        kind = self.config.kind
        if kind == "shiftvae":
            return ["dx_px"]
        if kind in ("rvae", "jrvae", "ssrvae"):
            return ["angle_rad", "dx_px", "dy_px"] + (["log_scale"] if self.config.scale else [])
        return []

    def _grid(self) -> torch.Tensor:
        if len(self.sample_shape) == 1:
            (n,) = self.sample_shape
            return (torch.arange(n, dtype=torch.float32) - (n - 1) / 2)[:, None]
        h, w = self.sample_shape
        yy, xx = torch.meshgrid(
            torch.arange(h, dtype=torch.float32) - (h - 1) / 2,
            torch.arange(w, dtype=torch.float32) - (w - 1) / 2,
            indexing="ij",
        )
        return torch.stack([xx.ravel(), yy.ravel()], dim=-1)  # (P, 2) as (x, y)

    def _mask(self) -> torch.Tensor:
        # 2-D invariant models score only the inscribed disc: the corners of a patch rotate
        # out of it, so no rotation of the content could reproduce them.
        n = int(np.prod(self.sample_shape))
        if len(self.sample_shape) == 2 and self.config.invariant:
            r = min(self.sample_shape) / 2
            return (self.grid.pow(2).sum(-1) <= r * r).reshape(n)
        return torch.ones(n, dtype=torch.bool)

    # ---- the generative model -----------------------------------------------------------

    def _decode(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None,
        cond: torch.Tensor | None,
        *,
        masked: bool = True,
    ) -> torch.Tensor:
        k = self.n_transform
        parts = [z[..., k:]]
        if c is not None:
            parts.append(c)
        if cond is not None:
            parts.append(cond)
        shape = torch.broadcast_shapes(*(p.shape[:-1] for p in parts))
        latent = torch.cat([p.expand(*shape, p.shape[-1]) for p in parts], dim=-1)
        if not self.config.invariant:
            out = self.decoder(latent)
            return out[..., self.mask] if masked else out
        grid = self.grid[self.mask] if masked else self.grid
        names = self.transform_names()
        get = {n: z[..., i] for i, n in enumerate(names)}
        if len(self.sample_shape) == 1:
            coords = transform_grid(grid, shift=get["dx_px"][:, None])
        else:
            coords = transform_grid(
                grid,
                angle=get["angle_rad"],
                shift=torch.stack([get["dx_px"], get["dy_px"]], dim=-1),
                log_scale=get.get("log_scale"),
            )
        half = (max(self.sample_shape) - 1) / 2 or 1.0
        return self.decoder(coords / half, latent)

    def model(
        self, x: torch.Tensor, y: torch.Tensor | None = None, cond: torch.Tensor | None = None
    ) -> None:
        """Pyro model: latents from their priors, the sample from the decoder.

        ``x`` (B, P) normalised samples, ``y`` (B, C) one-hot labels (observed class),
        ``cond`` (B, m) conditions.
        """
        b = x.shape[0]
        cfg = self.config
        with pyro.plate("data", b):
            with poutine.scale(scale=cfg.beta):
                z = pyro.sample(
                    "z",
                    dist.Normal(
                        torch.zeros(b, len(self.prior_scale)), self.prior_scale.expand(b, -1)
                    ).to_event(1),
                )
            c = None
            if cfg.discrete:
                c = pyro.sample(
                    "c", dist.OneHotCategorical(logits=torch.zeros(b, cfg.classes)), obs=y
                )
                if y is not None and cfg.kind == "ssrvae":
                    _, _, logits = self.encoder(x, cond)
                    pyro.factor(
                        "aux", cfg.aux_weight * dist.OneHotCategorical(logits=logits).log_prob(y)
                    )
            loc = self._decode(z, c, cond)
            pyro.sample("x", dist.Normal(loc, cfg.sigma).to_event(1), obs=x[:, self.mask])

    def posterior(
        self, x: torch.Tensor, cond: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The encoder's posterior ``(loc, scale)`` of the latents and class logits.

        The encoder gives shifts in units of their prior (``shift_prior_px``), since pixels
        are as large as the sampling makes them: a shift of prior standard deviation 10 px is
        an output of 1, as a content latent's is. In pixels a network that starts near 0
        would shift by a fraction of the prior at first, and a content latent would learn to
        draw the shift instead (a shift-VAE's ``z1`` took the peak centre, r = 0.998, and its
        ``dx_px`` moved 0.23 px per channel). Angles [rad] and ``log_scale`` are of order 1
        already and stay as they are (in prior units, the rVAE test's seed 0 found the angle
        in ``z``: |r| 0.41 against 0.998).
        """
        loc, scale, logits = self.encoder(x, cond)
        return loc * self.encoder_unit, scale * self.encoder_unit, logits

    def guide(
        self, x: torch.Tensor, y: torch.Tensor | None = None, cond: torch.Tensor | None = None
    ) -> None:
        """Pyro guide: the encoder's Gaussian posterior (and class posterior, enumerated)."""
        with pyro.plate("data", x.shape[0]):
            loc, scale, logits = self.posterior(x, cond)
            if self.config.discrete and y is None:
                pyro.sample(
                    "c", dist.OneHotCategorical(logits=logits), infer={"enumerate": "parallel"}
                )
            with poutine.scale(scale=self.config.beta):
                pyro.sample("z", dist.Normal(loc, scale).to_event(1))

    # ---- using a trained model ----------------------------------------------------------

    def normalise(self, data: np.ndarray) -> torch.Tensor:
        """Samples ``(N, *sample_shape)`` → normalised, flattened ``(N, P)`` float32 tensor."""
        lo, hi = self.norm
        x = (np.asarray(data, dtype=np.float64).reshape(len(data), -1) - lo) / (hi - lo)
        return torch.as_tensor(x, dtype=torch.float32)

    def condition_tensor(self, conditions: np.ndarray | None, n: int) -> torch.Tensor | None:
        """Conditions as the ``(N, m)`` tensor the networks take (one-hot for labels)."""
        if self.n_cond == 0:
            return None
        if conditions is None:
            raise ValueError("this cVAE needs `conditions` (one per sample), as in training.")
        c = np.asarray(conditions)
        if c.shape[0] != n:
            raise ValueError(f"`conditions` has {c.shape[0]} rows for {n} samples; give one each.")
        if np.issubdtype(c.dtype, np.integer) and c.ndim == 1:
            if c.min() < 0 or c.max() >= self.config.classes:
                raise ValueError(
                    f"`conditions` labels must be 0…{self.config.classes - 1} (`classes`), got "
                    f"{c.min()}…{c.max()}."
                )
            return nn.functional.one_hot(torch.tensor(c), self.config.classes).float()
        c = c.reshape(n, -1).astype(np.float32, copy=True)
        if c.shape[1] != self.n_cond:
            raise ValueError(
                f"`conditions` has {c.shape[1]} columns; the model takes {self.n_cond}."
            )
        return torch.as_tensor(c)

    @torch.no_grad()
    def encode(
        self, data: np.ndarray, /, *, conditions: np.ndarray | None = None, batch_size: int = 512
    ) -> pd.DataFrame:
        """Posterior means of every sample's latents.

        Parameters
        ----------
        data : ndarray of shape (N, h, w) or (N, L)
            Samples of the model's shape.
        conditions : ndarray, optional
            ``cvae``: the conditions, as in training.
        batch_size : int
            Samples per forward pass.

        Returns
        -------
        pandas.DataFrame
            One row per sample: ``angle_rad`` [rad], ``dx_px``, ``dy_px`` [px], ``scale``
            (as the model has them), ``z1..zK``, and for joint models ``class`` and
            ``class_prob``.
        """
        self.eval()
        x = self.normalise(data)
        if tuple(np.shape(data)[1:]) != self.sample_shape:
            raise ValueError(
                f"samples of shape {tuple(np.shape(data)[1:])} given to a model of "
                f"{self.sample_shape}; cut them the same size as for training."
            )
        cond = self.condition_tensor(conditions, len(x))
        locs, probs = [], []
        for i in range(0, len(x), batch_size):
            loc, _, logits = self.posterior(
                x[i : i + batch_size], None if cond is None else cond[i : i + batch_size]
            )
            locs.append(loc)
            if logits is not None:
                probs.append(torch.softmax(logits, -1))
        loc = torch.cat(locs).numpy().astype(np.float64)
        cols: dict[str, Any] = {}
        for i, name in enumerate(self.transform_names()):
            if name == "log_scale":
                cols["scale"] = np.exp(loc[:, i])
            else:
                cols[name] = loc[:, i]
        for j in range(self.config.latent_dim):
            cols[f"z{j + 1}"] = loc[:, self.n_transform + j]
        if probs:
            p = torch.cat(probs).numpy()
            cols["class"] = p.argmax(1)
            cols["class_prob"] = p.max(1)
        return pd.DataFrame(cols)

    @torch.no_grad()
    def decode(
        self,
        latents: pd.DataFrame,
        /,
        *,
        conditions: np.ndarray | None = None,
    ) -> np.ndarray:
        """Samples drawn from latents (a table as :meth:`encode` returns; missing transform
        columns are 0, a missing ``class`` is 0), in data units, ``(N, *sample_shape)``."""
        self.eval()
        n = len(latents)
        cols = []
        for name in self.transform_names():
            if name == "log_scale":
                cols.append(
                    np.log(latents["scale"].to_numpy(float)) if "scale" in latents else np.zeros(n)
                )
            else:
                cols.append(latents[name].to_numpy(float) if name in latents else np.zeros(n))
        cols += [latents[f"z{j + 1}"].to_numpy(float) for j in range(self.config.latent_dim)]
        z = torch.as_tensor(np.stack(cols, axis=1), dtype=torch.float32)
        c = None
        if self.config.discrete:
            # a copy: pandas may hand out a read-only view, which torch warns about
            k = (
                np.array(latents["class"], dtype=np.int64)
                if "class" in latents
                else np.zeros(n, int)
            )
            c = nn.functional.one_hot(torch.tensor(k), self.config.classes).float()
        out = self._decode(z, c, self.condition_tensor(conditions, n), masked=False)
        lo, hi = self.norm
        return (out.numpy().astype(np.float64) * (hi - lo) + lo).reshape(n, *self.sample_shape)

    def reconstruct(
        self, data: np.ndarray, /, *, conditions: np.ndarray | None = None
    ) -> np.ndarray:
        """Each sample decoded from its posterior means, ``(N, *sample_shape)``."""
        return self.decode(self.encode(data, conditions=conditions), conditions=conditions)

    def traverse(
        self, dim: int, /, *, values: Sequence[float] = (-2, -1, 0, 1, 2), cls: int = 0
    ) -> np.ndarray:
        """Samples along content latent ``z{dim}`` (1-based), all others 0, upright, in the
        canonical frame, for class ``cls``: ``(len(values), *sample_shape)``."""
        if not 1 <= dim <= self.config.latent_dim:
            raise ValueError(f"`dim` must be 1…{self.config.latent_dim}, got {dim}.")
        n = len(values)
        table = pd.DataFrame({f"z{j + 1}": np.zeros(n) for j in range(self.config.latent_dim)})
        table[f"z{dim}"] = np.asarray(values, float)
        table["class"] = cls
        cond = None
        if self.n_cond:
            cond = np.zeros((n, self.n_cond), np.float32)
        return self.decode(table, conditions=cond)

    # ---- files --------------------------------------------------------------------------

    def header(self) -> dict[str, Any]:
        """What :meth:`load` needs besides the weights (JSON-ready)."""
        return {
            "format": FORMAT,
            "config": self.config.to_dict(),
            "sample_shape": list(self.sample_shape),
            "n_cond": self.n_cond,
            "norm": list(self.norm),
        }

    def save(self, path: str | PathLike[str], /, *, overwrite: bool = False) -> Path:
        """Write ``config.json`` and ``weights.safetensors`` into the directory ``path``
        (atomically; an existing non-empty ``path`` needs ``overwrite``)."""
        with atomic_directory(path, overwrite=overwrite) as tmp:
            write_model_files(self, tmp)
        return Path(path)

    @classmethod
    def load(cls, path: str | PathLike[str], /) -> VAEModel:
        """Read a model directory written by :meth:`save` (safetensors + JSON: loading runs
        no code)."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        d = Path(path)
        cfg_path, w_path = d / CONFIG_FILE, d / WEIGHTS_FILE
        for p in (cfg_path, w_path):
            if not p.is_file():
                raise FileNotFoundError(
                    f"{p} not found; give the directory `atomlens vae` wrote its model into "
                    f"(it holds {CONFIG_FILE} and {WEIGHTS_FILE})."
                )
        try:
            head = json.loads(cfg_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{cfg_path} is not valid JSON: {exc}.") from None
        if head.get("format") != FORMAT:
            raise ValueError(
                f"{cfg_path} is not an atomlens VAE ({FORMAT}); got {head.get('format')!r}."
            )
        model = cls(
            VAEConfig.from_dict(head["config"]),
            head["sample_shape"],
            n_cond=head["n_cond"],
            norm=tuple(head["norm"]),
        )
        try:
            state = load_file(str(w_path))
        except SafetensorError as exc:
            raise ValueError(f"{w_path} is not a readable safetensors file: {exc}.") from None
        model.load_state_dict(state)
        model.eval()
        return model


def write_model_files(model: VAEModel, directory: Path, /) -> None:
    """``config.json`` and ``weights.safetensors`` of ``model`` into the existing
    ``directory``."""
    from safetensors.torch import save_file

    (directory / CONFIG_FILE).write_text(
        json.dumps(model.header(), indent=2, default=json_default), encoding="utf-8"
    )
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(directory / WEIGHTS_FILE), metadata={"format": FORMAT})


def data_range(data: np.ndarray) -> tuple[float, float]:
    """``(low, high)``: the 0.5th and 99.5th percentiles of all values (the scale the
    networks see as 0–1)."""
    lo, hi = np.percentile(np.asarray(data, dtype=np.float64), [0.5, 99.5])
    if not math.isfinite(hi - lo) or hi - lo <= 0:
        hi = lo + 1.0
    return float(lo), float(hi)
