"""A trained network with everything needed to apply it: sampling, classes, normalisation.

A model directory holds ``config.json`` (architecture, sampling, classes, normalisation,
training provenance) and ``weights.safetensors``. Loading parses JSON and reads raw tensors:
nothing is unpickled, so a model file cannot run code.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from os import PathLike
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from atomlens._atomic import atomic_directory
from atomlens._validate import validate_pixel_size
from atomlens.inference import PercentileNormalizer, predict_tiled, resample
from atomlens.nn import UNet, UNetConfig

__all__ = ["FORMAT", "Model", "ModelConfig", "ModelFileError", "resolve_device"]

logger = logging.getLogger(__name__)

FORMAT = "atomlens-model"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"


class ModelFileError(ValueError):
    """A model directory is missing, incomplete or not an atomlens model."""


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; anything else as given (checked)."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {str(device)!r} was asked for but CUDA is not available here; use "
            "--device cpu (or auto)."
        )
    return dev


@dataclass(frozen=True)
class ModelConfig:
    """What a network was trained for and how to feed it.

    Parameters
    ----------
    architecture : UNetConfig
        The network.
    pixel_size_A : float
        Sampling the network was trained at [Å/px]; images are resampled to it.
    class_names : tuple of str
        The K foreground classes (output channels 1 … K; channel 0 is background).
    normalization : PercentileNormalizer
        Per-image intensity normalisation applied before the network.
    label_radius_A : float
        Radius of the training label disks [Å].
    min_separation_A : float
        Default minimum distance between two atoms when locating [Å].
    contrast : {"haadf", "bf"}
        Imaging mode of the training images (atoms bright or dark).
    provenance : dict
        Training record: material(s), seed, steps, atomlens version, validation scores.
    """

    architecture: UNetConfig
    pixel_size_A: float
    class_names: tuple[str, ...]
    normalization: PercentileNormalizer = field(default_factory=PercentileNormalizer)
    label_radius_A: float = 0.5
    min_separation_A: float = 0.9
    contrast: Literal["haadf", "bf"] = "haadf"
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_pixel_size(self.pixel_size_A, name="pixel_size_A")
        object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))
        if len(self.class_names) != self.architecture.n_classes:
            raise ValueError(
                f"{len(self.class_names)} class names for a network with "
                f"{self.architecture.n_classes} foreground classes."
            )
        if self.contrast not in ("haadf", "bf"):
            raise ValueError(f"contrast must be 'haadf' or 'bf', got {self.contrast!r}.")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (the content of ``config.json``)."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "architecture": {"name": "unet", **self.architecture.to_dict()},
            "pixel_size_A": self.pixel_size_A,
            "class_names": list(self.class_names),
            "normalization": {"kind": "percentile", **self.normalization.to_dict()},
            "label_radius_A": self.label_radius_A,
            "min_separation_A": self.min_separation_A,
            "contrast": self.contrast,
            "provenance": self.provenance,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], /, *, source: str = "config") -> ModelConfig:
        """Inverse of :meth:`to_dict`; unknown keys and wrong formats raise."""
        if d.get("format") != FORMAT:
            raise ModelFileError(f"{source} is not an atomlens model config (format missing).")
        if d.get("format_version") != FORMAT_VERSION:
            raise ModelFileError(
                f"{source} has model format version {d.get('format_version')!r}; this "
                f"atomlens reads version {FORMAT_VERSION}. Upgrade atomlens."
            )
        body = {k: v for k, v in d.items() if k not in ("format", "format_version")}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(body) - known)
        if unknown:
            raise ModelFileError(f"{source} has unknown keys {unknown}.")
        arch = dict(body.pop("architecture"))
        if arch.pop("name", "unet") != "unet":
            raise ModelFileError(f"{source}: only the 'unet' architecture is known.")
        norm = dict(body.pop("normalization", {"kind": "percentile"}))
        if norm.pop("kind", "percentile") != "percentile":
            raise ModelFileError(f"{source}: only percentile normalisation is known.")
        try:
            return cls(
                architecture=UNetConfig.from_dict(arch),
                normalization=PercentileNormalizer(**norm),
                **body,
            )
        except (TypeError, ValueError) as exc:
            raise ModelFileError(f"{source} is invalid: {exc}") from None


class Model:
    """A network plus its :class:`ModelConfig`: image in, class probabilities out.

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
        self.network = network
        self.config = config

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
        return final

    @classmethod
    def load(cls, path: str | PathLike[str], /, *, device: str | torch.device = "cpu") -> Model:
        """Read a model directory written by :meth:`save` (no unpickling).

        Raises
        ------
        ModelFileError
            The directory or one of its files is missing or invalid; the message says which.
        """
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        d = model_directory(path)
        config, members = read_model_config(d)
        w_path = d / WEIGHTS_FILE
        if not w_path.is_file():
            raise ModelFileError(f"{w_path} is missing; {d} is not a complete atomlens model.")
        if members is not None and len(members) != 1:
            raise ModelFileError(
                f"{d} holds an ensemble of {len(members)} members; load it with "
                "atomlens.ensemble.Ensemble.load (atomlens find does)."
            )
        try:
            state = load_file(str(w_path), device=str(device))
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModelFileError(f"{w_path} is not a readable safetensors file: {exc}.") from None
        if members is not None:
            state = {k[len("members.0.") :]: v for k, v in state.items()}
            config = replace(config, provenance=members[0].get("provenance", {}))
        cfg_path = d / CONFIG_FILE
        net = UNet(config.architecture)
        missing, unexpected = net.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ModelFileError(
                f"{w_path} does not match the architecture in {cfg_path}: missing "
                f"{list(missing)[:3]}, unexpected {list(unexpected)[:3]}."
            )
        net.to(device).eval()
        return cls(net, config)

    # ------------------------------------------------------------ prediction
    def prepare(self, image: np.ndarray, /, *, pixel_size: float) -> tuple[np.ndarray, float]:
        """Normalise and resample ``image`` to the model's sampling.

        Returns
        -------
        ndarray of shape (C, h, w), float32
            The network input.
        float
            The resampling factor (model pixels per image pixel).
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
        norm = self.config.normalization(a)
        factor = ps / self.config.pixel_size_A
        return resample(norm, factor=factor), factor

    def predict(
        self,
        image: np.ndarray,
        /,
        *,
        pixel_size: float,
        device: str | torch.device = "cpu",
        tile: int = 256,
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
        tile, overlap : int
            Tile side and overlap at the model's sampling [px]; the overlap defaults to the
            receptive field (capped at half a tile).
        batch_size : int
            Tiles per forward pass.
        progress : bool or callable
            Progress bar over tile batches.

        Returns
        -------
        ndarray of shape (K + 1, H, W), float32
            Background first, then ``config.class_names``.
        """
        x, _factor = self.prepare(image, pixel_size=pixel_size)
        dev = resolve_device(device)
        net = self.network.to(dev).eval()
        arch = self.config.architecture
        ov = overlap if overlap is not None else arch.receptive_field_px()
        use_amp = dev.type == "cuda"

        def run(batch: torch.Tensor) -> torch.Tensor:
            with torch.autocast(device_type=dev.type, enabled=use_amp, dtype=torch.bfloat16):
                return torch.softmax(net(batch).float(), dim=1)

        probs = predict_tiled(
            x,
            predict_batch=run,
            n_out=arch.n_classes + 1,
            multiple=arch.multiple,
            tile=tile,
            overlap=ov,
            batch_size=batch_size,
            device=dev,
            progress=progress,
        )
        h, w = np.shape(image)[-2:]
        if probs.shape[-2:] != (h, w):
            probs = _resize_to(probs, (h, w))
            probs /= probs.sum(axis=0, keepdims=True)
        return probs


def model_directory(path: str | PathLike[str], /) -> Path:
    """``path`` as a directory, or the bundled model of that name (``"graphene"``) when no
    such directory exists (:mod:`atomlens.bundled`)."""
    p = Path(path)
    if p.is_dir() or len(p.parts) != 1:  # only a bare name (str or Path) can be bundled
        return p
    from atomlens.bundled import BUNDLED_DIR

    b = BUNDLED_DIR / p.name
    return b if (b / CONFIG_FILE).is_file() else p


def read_model_config(
    directory: str | PathLike[str], /
) -> tuple[ModelConfig, list[dict[str, Any]] | None]:
    """Parse ``config.json`` of a model directory.

    Returns
    -------
    ModelConfig
        The shared configuration.
    list of dict or None
        The per-member records of an ensemble directory; None for a single model.
    """
    d = model_directory(directory)
    if not d.is_dir():
        from atomlens.bundled import bundled_models

        names = ", ".join(bundled_models()) or "none installed"
        raise ModelFileError(
            f"model directory {d} does not exist; pass a directory written by "
            "`atomlens train` (it holds config.json and weights.safetensors) or the name of "
            f"a bundled model ({names})."
        )
    cfg_path = d / CONFIG_FILE
    if not cfg_path.is_file():
        raise ModelFileError(f"{cfg_path} is missing; {d} is not a complete atomlens model.")
    try:
        raw = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{cfg_path} is not valid JSON: {exc}.") from None
    if not isinstance(raw, dict):
        raise ModelFileError(f"{cfg_path} is not an atomlens model config.")
    members = raw.pop("members", None)
    if members is not None and (
        not isinstance(members, list)
        or not members
        or not all(isinstance(m, dict) for m in members)
    ):
        raise ModelFileError(f"{cfg_path}: 'members' must be a non-empty list of records.")
    return ModelConfig.from_dict(raw, source=str(cfg_path)), members


def _resize_to(maps: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(maps))[None]
    down = shape[0] < maps.shape[-2]
    out = F.interpolate(t, size=shape, mode="bilinear", align_corners=False, antialias=down)
    return out[0].numpy()


def write_model_files(directory: Path, network: UNet, config: ModelConfig) -> None:
    """Write ``config.json`` and ``weights.safetensors`` into an existing directory."""
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in network.state_dict().items()}
    save_file(state, str(directory / WEIGHTS_FILE), metadata={"format": FORMAT})
    (directory / CONFIG_FILE).write_text(
        json.dumps(config.to_dict(), indent=2, default=_json_default) + "\n", encoding="utf-8"
    )


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")
