"""An ensemble of networks sharing one architecture, sampling and class list."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from os import PathLike
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from atomlens._atomic import atomic_directory
from atomlens.ensemble.calibration import Calibration
from atomlens.ensemble.prediction import Prediction, decompose
from atomlens.inference import predict_tiled
from atomlens.model import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    Model,
    ModelConfig,
    ModelFileError,
    _json_default,
    _resize_to,
    model_directory,
    read_model_config,
    resolve_device,
)
from atomlens.nn import UNet

__all__ = ["Ensemble"]

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

    def member(self, i: int, /) -> Model:
        """Member ``i`` as a plain :class:`Model`."""
        return Model(self.networks[i], replace(self.config, provenance=self.member_provenance[i]))

    # ------------------------------------------------------------------ files
    def save(self, path: str | PathLike[str], /, *, overwrite: bool = False) -> Path:
        """Write one model directory: ``config.json`` (shared config, one record per member)
        and ``weights.safetensors`` (``members.{i}.{parameter}``), atomically."""
        from safetensors.torch import save_file

        final = Path(path)
        with atomic_directory(final, overwrite=overwrite) as tmp:
            state = {
                f"members.{i}.{k}": v.detach().cpu().contiguous()
                for i, net in enumerate(self.networks)
                for k, v in net.state_dict().items()
            }
            save_file(state, str(tmp / WEIGHTS_FILE), metadata={"format": "atomlens-model"})
            d = self.config.to_dict()
            d["members"] = [{"provenance": p} for p in self.member_provenance]
            (tmp / CONFIG_FILE).write_text(
                json.dumps(d, indent=2, default=_json_default) + "\n", encoding="utf-8"
            )
            if self.calibration is not None:
                self.calibration.save(tmp)
        return final

    @classmethod
    def load(cls, path: str | PathLike[str], /, *, device: str | torch.device = "cpu") -> Ensemble:
        """Read an ensemble directory, or a single-model directory as an ensemble of one.

        Nothing is unpickled. A missing, tampered or pickled file raises
        :class:`atomlens.model.ModelFileError` naming it.
        """
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        d = model_directory(path)
        config, members = read_model_config(d)
        if members is None:
            m = Model.load(d, device=device)
            one = cls([m.network], m.config, [m.config.provenance])
            one.calibration = Calibration.load(d)
            return one
        w_path = d / WEIGHTS_FILE
        if not w_path.is_file():
            raise ModelFileError(f"{w_path} is missing; {d} is not a complete atomlens model.")
        try:
            state = load_file(str(w_path), device=str(device))
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModelFileError(f"{w_path} is not a readable safetensors file: {exc}.") from None
        nets = []
        for i in range(len(members)):
            prefix = f"members.{i}."
            sub = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            net = UNet(config.architecture)
            missing, unexpected = net.load_state_dict(sub, strict=False)
            if missing or unexpected or not sub:
                raise ModelFileError(
                    f"{w_path} does not hold the weights of member {i} for the architecture "
                    f"in {d / CONFIG_FILE} (missing {list(missing)[:3]}); the files do not "
                    "belong together."
                )
            nets.append(net.to(device).eval())
        n_keys = sum(len(n.state_dict()) for n in nets)
        if n_keys != len(state):
            raise ModelFileError(f"{w_path} holds weights no member uses; it was altered.")
        ens = cls(nets, config, [m.get("provenance", {}) for m in members])
        ens.calibration = Calibration.load(d)
        return ens

    # ------------------------------------------------------------- prediction
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

    def predict_members(
        self,
        image: np.ndarray,
        /,
        *,
        pixel_size: float,
        device: str | torch.device = "cpu",
        mode: Mode = "auto",
        tile: int = 256,
        batch_size: int = 8,
        progress: bool | Callable[..., object] = False,
    ) -> np.ndarray:
        """Every member's class probabilities on the image grid, ``(N, K + 1, H, W)``.

        ``mode="vectorized"`` evaluates all members in one batched call
        (``torch.func.vmap`` over stacked weights); ``"sequential"`` runs them one after
        the other on each tile batch (no weights are reloaded). ``"auto"`` picks vectorised
        on CUDA and sequential on CPU, where batching members does not reduce the
        arithmetic and measured slower (``benchmarks/ensemble_speed.py``).
        """
        dev = resolve_device(device)
        if mode not in ("auto", "vectorized", "sequential"):
            raise ValueError(f"mode must be 'auto', 'vectorized' or 'sequential', got {mode!r}.")
        if mode == "auto":
            mode = "vectorized" if dev.type == "cuda" else "sequential"
        x, _ = self.member(0).prepare(image, pixel_size=pixel_size)
        arch = self.config.architecture
        k1 = arch.n_classes + 1
        n = len(self)
        use_amp = dev.type == "cuda"
        if mode == "vectorized":
            forward = self._vectorized(dev)
        else:
            nets = [net.to(dev).eval() for net in self.networks]

            def forward(batch: torch.Tensor) -> torch.Tensor:
                return torch.stack([net(batch) for net in nets])

        def run(batch: torch.Tensor) -> torch.Tensor:
            with torch.autocast(device_type=dev.type, enabled=use_amp, dtype=torch.bfloat16):
                logits = forward(batch).float()  # (N, B, K + 1, T, T)
            p = torch.softmax(logits, dim=2)
            return p.transpose(0, 1).reshape(batch.shape[0], n * k1, *batch.shape[-2:])

        probs = predict_tiled(
            x,
            predict_batch=run,
            n_out=n * k1,
            multiple=arch.multiple,
            tile=tile,
            overlap=arch.receptive_field_px(),
            batch_size=batch_size,
            device=dev,
            progress=progress,
        )
        h, w = np.shape(image)[-2:]
        if probs.shape[-2:] != (h, w):
            probs = _resize_to(probs, (h, w))
        probs = probs.reshape(n, k1, h, w)
        probs /= probs.sum(axis=1, keepdims=True)
        return probs

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
