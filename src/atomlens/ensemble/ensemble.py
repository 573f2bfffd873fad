"""An ensemble of networks sharing one architecture, sampling and class list."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from os import PathLike
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from atomlens._shared.atomic import atomic_directory
from atomlens._shared.device import Precision, inference_dtype, resolve_device
from atomlens._shared.timing import stage
from atomlens._shared.validate import validate_pixel_size
from atomlens.ensemble.calibration import Calibration
from atomlens.ensemble.config import ModelConfig, ModelFileError
from atomlens.ensemble.files import (
    model_directory,
    read_model_config,
    read_networks,
    write_model_files,
)
from atomlens.ensemble.prediction import Prediction, decompose
from atomlens.inference import check_resampling, predict_tiled, resample, resize_to
from atomlens.nn import UNet

__all__ = ["Ensemble", "Model", "as_ensemble"]

logger = logging.getLogger(__name__)

Mode = Literal["auto", "vectorized", "sequential"]


class Ensemble:
    """N networks with one architecture, sampling and class list; a model is an ensemble of 1.

    Parameters
    ----------
    networks : sequence of UNet
        The members (same architecture).
    config : ModelConfig
        What they share; its ``provenance`` describes the ensemble.
    member_provenance : sequence of dict, optional
        Per member: seed, training record.
    """

    def __init__(
        self,
        networks: Sequence[UNet],
        config: ModelConfig,
        member_provenance: Sequence[dict[str, Any]] | None = None,
    ) -> None:
        if len(networks) == 0:
            raise ValueError("an ensemble needs at least one network.")
        for i, net in enumerate(networks):
            if net.config != config.architecture:
                raise ValueError(f"member {i} has a different architecture from the config.")
        self.networks = list(networks)
        self.config = config
        prov = list(member_provenance) if member_provenance is not None else [{}] * len(networks)
        if len(prov) != len(self.networks):
            raise ValueError(f"{len(prov)} member records for {len(self.networks)} networks.")
        self.member_provenance = prov
        self._stacked: tuple[Any, ...] | None = None
        self._fast: tuple[Any, ...] | None = None
        #: Reliability of p_detect and scale of σ from validation (``calibration.json``).
        self.calibration: Calibration | None = None

    @classmethod
    def from_models(cls, models: Sequence[Model], /) -> Ensemble:
        """Join trained models that share architecture, sampling, classes and normalisation."""
        first = models[0].config
        for i, m in enumerate(models):
            c = m.config
            if (c.architecture, c.pixel_size_A, c.class_names, c.normalization, c.contrast) != (
                first.architecture,
                first.pixel_size_A,
                first.class_names,
                first.normalization,
                first.contrast,
            ):
                raise ValueError(
                    f"model {i} differs from model 0 in architecture, sampling, classes, "
                    "normalisation or contrast; members must share them."
                )
        prov: dict[str, Any] = {"members": len(models)}
        mats = [tuple((m.config.provenance or {}).get("materials") or ()) for m in models]
        if mats[0] and all(m == mats[0] for m in mats):
            # what the members were trained on: ELIT's plausibility checks compare against it
            prov["materials"] = list(mats[0])
        sims = [(m.config.provenance or {}).get("simulation") for m in models]
        if sims[0] and all(x == sims[0] for x in sims):
            # the simulated conditions they were trained on: adapt's simulated share uses them
            prov["simulation"] = sims[0]
        config = replace(first, provenance=prov)
        return cls([m.network for m in models], config, [m.config.provenance for m in models])

    def __len__(self) -> int:
        return len(self.networks)

    def __repr__(self) -> str:
        c = self.config
        return (
            f"Ensemble({len(self)} members, classes={list(c.class_names)}, "
            f"pixel_size_A={c.pixel_size_A})"
        )

    @property
    def n_maps(self) -> int:
        """Probability maps predicted per frame: members × (classes + 1)."""
        return len(self) * (self.config.architecture.n_classes + 1)

    def member(self, i: int, /) -> Model:
        """Member ``i`` as a plain :class:`Model`."""
        return Model(self.networks[i], replace(self.config, provenance=self.member_provenance[i]))

    # ------------------------------------------------------------------ files
    def save(self, path: str | PathLike[str], /, *, overwrite: bool = False) -> Path:
        """Write one model directory: ``config.json`` (shared config, one record per member)
        and ``weights.safetensors`` (``members.{i}.{parameter}``), atomically."""
        final = Path(path)
        with atomic_directory(final, overwrite=overwrite) as tmp:
            write_model_files(tmp, self.networks, self.config, self.member_provenance)
            if self.calibration is not None:
                self.calibration.save(tmp)
        return final

    @classmethod
    def load(cls, path: str | PathLike[str], /, *, device: str | torch.device = "cpu") -> Ensemble:
        """Read an ensemble directory, or a single-model directory as an ensemble of one.

        Nothing is unpickled. A missing, tampered or pickled file raises
        :class:`atomlens.ensemble.ModelFileError` naming it.
        """
        d = model_directory(path)
        config, members = read_model_config(d)
        nets = read_networks(d, config, members, device=device)
        if members is None:
            prov = [config.provenance]
        else:
            prov = [m.get("provenance", {}) for m in members]
        ens = Ensemble(nets, config, prov)
        ens.calibration = Calibration.load(d)
        return ens

    # ------------------------------------------------------------- prediction
    def prepare(self, image: np.ndarray, /, *, pixel_size: float) -> tuple[np.ndarray, float]:
        """Normalise and resample ``image`` to the model's sampling.

        Returns
        -------
        ndarray of shape (C, h, w), float32
            The network input.
        float
            The resampling factor (model pixels per image pixel).

        Raises
        ------
        ValueError
            A resampling the model cannot use (:func:`atomlens.inference.check_resampling`),
            refused before anything is allocated.
        """
        ps = validate_pixel_size(pixel_size)
        a = np.asarray(image)
        if a.ndim == 2:
            a = a[None]
        c = self.config.architecture.in_channels
        if a.ndim != 3 or a.shape[0] != c:
            raise ValueError(
                f"this model takes {c} channel(s) of shape (H, W); got an array of shape "
                f"{np.shape(image)}."
            )
        check_resampling(a.shape, ps, self.config.pixel_size_A, n_maps=self.n_maps)
        norm = self.config.normalization(a)
        factor = ps / self.config.pixel_size_A
        return resample(norm, factor=factor), factor

    def _vectorized(self, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
        from torch.func import functional_call, stack_module_state, vmap

        if self._stacked is None or self._stacked[0] != device:
            params, buffers = stack_module_state([n.to(device).eval() for n in self.networks])
            base = copy.deepcopy(self.networks[0]).to("meta")

            def one(p: dict, b: dict, x: torch.Tensor) -> torch.Tensor:
                return functional_call(base, (p, b), (x,))

            self._stacked = (device, params, buffers, vmap(one, in_dims=(0, 0, None)))
        _, params, buffers, fn = self._stacked
        return lambda x: fn(params, buffers, x)

    def _sequential(self, device: torch.device) -> list[torch.nn.Module]:
        """The members for inference on ``device``: on a CPU, their
        :meth:`atomlens.nn.UNet.for_inference` copies (channels-last, no concatenations:
        ``benchmarks/speed.py``), made again when a weight has changed."""
        nets = [net.to(device).eval() for net in self.networks]
        if device.type != "cpu":
            return nets
        key = tuple((id(p), p._version) for net in nets for p in net.parameters())
        if self._fast is None or self._fast[0] != key:
            self._fast = (key, [net.for_inference() for net in nets])
        return self._fast[1]

    def predict_members(
        self,
        image: np.ndarray,
        /,
        *,
        pixel_size: float,
        device: str | torch.device = "cpu",
        mode: Mode = "auto",
        precision: Precision = "auto",
        tile: int | None = None,
        overlap: int | None = None,
        batch_size: int = 8,
        progress: bool | Callable[..., object] = False,
    ) -> np.ndarray:
        """Every member's class probabilities on the image grid, ``(N, K + 1, H, W)``.

        ``mode="vectorized"`` evaluates all members in one batched call
        (``torch.func.vmap`` over stacked weights); ``"sequential"`` runs them one after
        the other on each tile batch (no weights are reloaded). ``"auto"`` picks vectorised
        on CUDA and sequential on CPU, where batching members does not reduce the
        arithmetic and measured slower (``benchmarks/ensemble_speed.py``).

        ``precision`` is the forward passes' arithmetic: ``"auto"`` is bfloat16 on CUDA and
        on CPUs with AMX bfloat16 units, float32 elsewhere
        (:func:`atomlens._shared.device.inference_dtype`); ``"float32"`` keeps them float32
        on every machine.

        ``tile`` is the tile side [px at the model's sampling]; None (the default) takes
        the whole image up to 512 px a side and otherwise the fewest tiles of at most that
        (:func:`atomlens.inference.auto_tile`). ``overlap`` [px] defaults to the network's
        receptive field.
        """
        dev = resolve_device(device)
        if mode not in ("auto", "vectorized", "sequential"):
            raise ValueError(f"mode must be 'auto', 'vectorized' or 'sequential', got {mode!r}.")
        if mode == "auto":
            mode = "vectorized" if dev.type == "cuda" else "sequential"
        with stage("normalise"):
            x, _ = self.prepare(image, pixel_size=pixel_size)
        arch = self.config.architecture
        k1 = arch.n_classes + 1
        n = len(self)
        amp = inference_dtype(precision, dev)
        if mode == "vectorized":
            forward = self._vectorized(dev)
        else:
            nets = self._sequential(dev)
            fmt = torch.channels_last if dev.type == "cpu" else torch.contiguous_format

            def forward(batch: torch.Tensor) -> torch.Tensor:
                batch = batch.contiguous(memory_format=fmt)
                return torch.stack([net(batch).contiguous() for net in nets])

        def run(batch: torch.Tensor) -> torch.Tensor:
            with torch.autocast(dev.type, enabled=amp is not None, dtype=amp or torch.bfloat16):
                logits = forward(batch).float()  # (N, B, K + 1, T, T)
            p = torch.softmax(logits, dim=2)
            return p.transpose(0, 1).reshape(batch.shape[0], n * k1, *batch.shape[-2:])

        probs, _ = self._on_image_grid(
            x,
            run,
            n_out=n * k1,
            image_shape=np.shape(image)[-2:],
            tile=tile,
            overlap=overlap if overlap is not None else arch.receptive_field_px(),
            batch_size=batch_size,
            device=dev,
            progress=progress,
        )
        probs = probs.reshape(n, k1, *probs.shape[-2:])
        probs /= probs.sum(axis=1, keepdims=True)
        return probs

    def _on_image_grid(
        self,
        x: np.ndarray,
        run: Callable[[torch.Tensor], torch.Tensor],
        /,
        *,
        n_out: int,
        image_shape: tuple[int, ...],
        tile: int | None,
        overlap: int,
        batch_size: int,
        device: torch.device,
        progress: bool | Callable[..., object],
    ) -> tuple[np.ndarray, bool]:
        """``run`` over overlapping tiles of the network input ``x``, its ``n_out`` maps
        resampled back to the image's ``(H, W)``; and whether they were resampled."""
        with stage("network"), torch.inference_mode():  # no autograd records: less memory
            probs = predict_tiled(
                x,
                predict_batch=run,
                n_out=n_out,
                multiple=self.config.architecture.multiple,
                tile=tile,
                overlap=overlap,
                batch_size=batch_size,
                device=device,
                progress=progress,
            )
        h, w = (int(v) for v in image_shape)
        if probs.shape[-2:] == (h, w):
            return probs, False
        with stage("normalise"):
            return resize_to(probs, (h, w)), True

    def predict(
        self,
        image: np.ndarray,
        /,
        *,
        pixel_size: float,
        keep_members: bool = False,
        **kwargs: Any,
    ) -> Prediction:
        """Mean probabilities and uncertainty maps (see :class:`Prediction`); keyword
        arguments as in :meth:`predict_members`."""
        maps = self.predict_members(image, pixel_size=pixel_size, **kwargs)
        return decompose(maps, class_names=self.config.class_names, keep_members=keep_members)


class Model(Ensemble):
    """One network plus its :class:`ModelConfig`: an ensemble of one member whose
    :meth:`predict` returns the class probabilities directly.

    Parameters
    ----------
    network : UNet
        The network (its weights are used as they are).
    config : ModelConfig
        Sampling, classes and normalisation.
    """

    def __init__(self, network: UNet, config: ModelConfig) -> None:
        if network.config != config.architecture:
            raise ValueError("network architecture differs from config.architecture.")
        super().__init__([network], config, [config.provenance])

    @property
    def network(self) -> UNet:
        """The network."""
        return self.networks[0]

    @classmethod
    def from_models(cls, models: Sequence[Model], /) -> Ensemble:
        """Join models into an :class:`Ensemble` (as :meth:`Ensemble.from_models`: a
        :class:`Model` holds one network)."""
        return Ensemble.from_models(models)

    def __repr__(self) -> str:
        c = self.config
        return (
            f"Model(classes={list(c.class_names)}, pixel_size_A={c.pixel_size_A}, "
            f"parameters={self.network.n_parameters()})"
        )

    # ----------------------------------------------------------------- files
    def save(self, path: str | PathLike[str], /, *, overwrite: bool = False) -> Path:
        """Write ``config.json`` and ``weights.safetensors`` into the directory ``path``.

        The directory is built under a temporary name and moved into place, so an
        interrupted save leaves nothing half-written. An existing non-empty directory is
        refused unless ``overwrite``.
        """
        final = Path(path)
        with atomic_directory(final, overwrite=overwrite) as tmp:
            write_model_files(tmp, self.network, self.config)
            if self.calibration is not None:
                self.calibration.save(tmp)
        return final

    @classmethod
    def load(cls, path: str | PathLike[str], /, *, device: str | torch.device = "cpu") -> Model:
        """Read a model directory written by :meth:`save`, or an ensemble directory of one
        member (no unpickling).

        Raises
        ------
        ModelFileError
            The directory or one of its files is missing or invalid, or it holds several
            members; the message says which.
        """
        d = model_directory(path)
        config, members = read_model_config(d)
        if members is not None and len(members) != 1:
            raise ModelFileError(
                f"{d} holds an ensemble of {len(members)} members; load it with "
                "atomlens.ensemble.Ensemble.load (atomlens find does)."
            )
        (net,) = read_networks(d, config, members, device=device)
        if members is not None:
            config = replace(config, provenance=members[0].get("provenance", {}))
        model = cls(net, config)
        model.calibration = Calibration.load(d)
        return model

    # ------------------------------------------------------------ prediction
    def predict(  # type: ignore[override]  # one member: its probabilities, not a Prediction
        self,
        image: np.ndarray,
        /,
        *,
        pixel_size: float,
        device: str | torch.device = "cpu",
        precision: Precision = "auto",
        tile: int | None = None,
        overlap: int | None = None,
        batch_size: int = 8,
        progress: bool | Callable[..., object] = False,
    ) -> np.ndarray:
        """Class probabilities on the image's own pixel grid.

        The image is normalised (percentiles), resampled to the model's sampling,
        predicted in overlapping blended tiles, and the probabilities are resampled back.

        Parameters
        ----------
        image : ndarray of shape (H, W) or (C, H, W)
            The raw image.
        pixel_size : float
            Its pixel size [Å/px].
        device : str or torch.device
            ``"cpu"``, ``"cuda"`` or ``"auto"``.
        precision : {"auto", "float32", "bfloat16"}
            The forward pass's arithmetic (:meth:`Ensemble.predict_members`).
        tile, overlap : int
            Tile side and overlap at the model's sampling [px]; the tile defaults to the
            whole image up to 512 px a side, else the fewest tiles of at most that
            (:func:`atomlens.inference.auto_tile`), the overlap to the receptive field
            (capped at half a tile).
        batch_size : int
            Tiles per forward pass.
        progress : bool or callable
            Progress bar over tile batches.

        Returns
        -------
        ndarray of shape (K + 1, H, W), float32
            Background first, then ``config.class_names``.
        """
        with stage("normalise"):
            x, _factor = self.prepare(image, pixel_size=pixel_size)
        dev = resolve_device(device)
        (net,) = self._sequential(dev)
        arch = self.config.architecture
        ov = overlap if overlap is not None else arch.receptive_field_px()
        amp = inference_dtype(precision, dev)
        fmt = torch.channels_last if dev.type == "cpu" else torch.contiguous_format

        def run(batch: torch.Tensor) -> torch.Tensor:
            with torch.autocast(dev.type, enabled=amp is not None, dtype=amp or torch.bfloat16):
                logits = net(batch.contiguous(memory_format=fmt)).float().contiguous()
                return torch.softmax(logits, dim=1)

        probs, resized = self._on_image_grid(
            x,
            run,
            n_out=arch.n_classes + 1,
            image_shape=np.shape(image)[-2:],
            tile=tile,
            overlap=ov,
            batch_size=batch_size,
            device=dev,
            progress=progress,
        )
        if resized:
            probs /= probs.sum(axis=0, keepdims=True)
        return probs


def as_ensemble(
    model: Ensemble | str | PathLike[str], /, *, device: str | torch.device = "cpu"
) -> Ensemble:
    """Whatever names a model, as an :class:`Ensemble`.

    Parameters
    ----------
    model : Ensemble, Model, path or str
        An ensemble (returned as it is), a single :class:`Model` (its ensemble of one,
        sharing the network and calibration), or a model directory or bundled name
        (loaded).
    device : str or torch.device
        Where loaded weights go.

    Returns
    -------
    Ensemble
    """
    if isinstance(model, Model):
        one = Ensemble(model.networks, model.config, model.member_provenance)
        one.calibration = model.calibration
        return one
    if isinstance(model, Ensemble):
        return model
    if not isinstance(model, str | PathLike):
        raise TypeError(
            "model must be an Ensemble, a Model, a model directory or a bundled name, got "
            f"{type(model).__name__}."
        )
    return Ensemble.load(model, device=device)
