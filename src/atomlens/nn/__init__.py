"""Network architectures (no training code: see :mod:`atomlens.train`)."""

from atomlens.nn.unet import UNet, UNetConfig

__all__ = ["UNet", "UNetConfig"]
