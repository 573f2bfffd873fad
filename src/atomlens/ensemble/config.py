"""What a network was trained for and how to feed it: :class:`ModelConfig`, the content of
a model directory's ``config.json``."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal

from atomlens._shared.validate import validate_pixel_size
from atomlens.inference import PercentileNormalizer
from atomlens.nn import UNetConfig

__all__ = ["FORMAT", "FORMAT_VERSION", "ModelConfig", "ModelFileError"]

FORMAT = "atomlens-model"
FORMAT_VERSION = 1


class ModelFileError(ValueError):
    """A model directory is missing, incomplete or not an atomlens model."""


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
        unknown = sorted(set(body) - {f.name for f in fields(cls)})
        if unknown:  # a file-format error, not check_keys's ValueError
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
