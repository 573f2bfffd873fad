"""Reading images with their calibration (``.npy``, ``.npz``, ``.tif``); more formats later."""

from atomlens.io.read import Image, read_image

__all__ = ["Image", "read_image"]
