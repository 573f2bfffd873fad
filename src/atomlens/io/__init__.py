"""Reading microscope images and stacks with their calibration.

:func:`read` handles DM3/DM4, EMD, SER, MRC and HyperSpy files (through RosettaSciIO, the
``formats`` extra), HDF5, TIFF (ImageJ/OME calibration), PNG/JPEG and NumPy files.
"""

from atomlens.io.hyperspy_bridge import from_hyperspy, to_hyperspy
from atomlens.io.image import Image
from atomlens.io.paths import expand_inputs
from atomlens.io.read import SUFFIXES, check_frame, read, read_image

__all__ = [
    "SUFFIXES",
    "Image",
    "check_frame",
    "expand_inputs",
    "from_hyperspy",
    "read",
    "read_image",
    "to_hyperspy",
]
