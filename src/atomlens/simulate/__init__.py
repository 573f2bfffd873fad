"""Simulated STEM images with exact ground truth: the source of training data and truth.

The data path: a material (name, ASE ``Atoms`` or CIF + zone axis) is projected into atomic
columns (:mod:`~atomlens.simulate.structures`), tiled over the field of view, rotated and
strained, given defects (:mod:`~atomlens.simulate.defects`) and classes
(:mod:`~atomlens.simulate.classes`), imaged with a probe (:mod:`~atomlens.simulate.probe`)
under a dose with noise, background, detector effects and scan distortions
(:mod:`~atomlens.simulate.imaging`, :mod:`~atomlens.simulate.distortions`), and labelled
(:mod:`~atomlens.simulate.labels`). Two rotated grains and a nanoparticle on a support film
are geometries of the same image (:mod:`~atomlens.simulate.geometry`).
:func:`simulate_image` does all of it for one image; :class:`SimulatedDataset` draws
endless random images for training.
"""

from atomlens.simulate.classes import ClassMap
from atomlens.simulate.conditions import ImagingConditions
from atomlens.simulate.defects import (
    Substitution,
    Vacancy,
    defects_for_materials,
    parse_defect,
)
from atomlens.simulate.distortions import ScanDistortion
from atomlens.simulate.geometry import Bicrystal, Nanoparticle
from atomlens.simulate.imaging import Background, Detector
from atomlens.simulate.io import write_simulation
from atomlens.simulate.probe import AberratedProbe, GaussianProbe
from atomlens.simulate.scene import SimulatedImage, film_counts, simulate_image
from atomlens.simulate.structures import (
    MATERIALS,
    ProjectedCell,
    load_material,
    material_table,
    project,
)

__all__ = [
    "MATERIALS",
    "AberratedProbe",
    "Background",
    "Bicrystal",
    "ClassMap",
    "ConditionRanges",
    "Detector",
    "GaussianProbe",
    "ImagingConditions",
    "Nanoparticle",
    "ProjectedCell",
    "ScanDistortion",
    "SimulatedDataset",
    "SimulatedImage",
    "Substitution",
    "Vacancy",
    "defects_for_materials",
    "film_counts",
    "load_material",
    "material_table",
    "parse_defect",
    "project",
    "simulate_image",
    "write_simulation",
]


def __getattr__(name: str) -> object:
    # The training stream needs torch; import it only when asked for, so that
    # `import atomlens.simulate` stays light.
    if name in ("ConditionRanges", "SimulatedDataset"):
        from atomlens.simulate import dataset

        return getattr(dataset, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
