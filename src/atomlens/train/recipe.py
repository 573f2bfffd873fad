"""The default recipe behind ``atomlens train``: simulate, train, validate, save."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from os import PathLike
from typing import Any, NamedTuple

from atomlens._shared.validate import validate_pixel_size
from atomlens.ensemble import Model, ModelConfig
from atomlens.nn import UNet, UNetConfig
from atomlens.simulate.classes import ClassMap
from atomlens.simulate.dataset import ConditionRanges
from atomlens.simulate.defects import Defect
from atomlens.train.data import SimulatedSource
from atomlens.train.trainer import TrainConfig, Trainer, TrainResult
from atomlens.train.validation import ValidationSet

__all__ = ["TrainingSetup", "make_ranges", "prepare_training", "train_model"]


class TrainingSetup(NamedTuple):
    """What one training run starts from."""

    model: Model
    config: TrainConfig
    data: SimulatedSource
    validation: ValidationSet | None


def train_model(
    *,
    out: str | PathLike[str],
    overwrite: bool = False,
    progress: bool | Callable[..., Any] = False,
    **recipe: Any,
) -> TrainResult:
    """Train a model on simulated images and save it to ``out``.

    Parameters
    ----------
    out : path
        Model directory (resumed if an interrupted run left a checkpoint there).
    overwrite : bool
        Replace a finished model at ``out``.
    progress : bool or callable
        Progress bar.
    **recipe
        What to train on and how: the arguments of :func:`prepare_training`
        (``materials``, ``pixel_size``, ``defects``, ``classes``, ``dose_range``,
        ``film_thickness_A``, ``crop``, ``architecture``, ``config``, ``n_validation`` and
        further :class:`atomlens.simulate.ConditionRanges` fields).

    Returns
    -------
    TrainResult
    """
    setup = prepare_training(**recipe)
    trainer = Trainer(
        setup.model,
        setup.config,
        setup.data,
        out=out,
        validation=setup.validation,
        overwrite=overwrite,
        progress=progress,
    )
    return trainer.fit()


def prepare_training(
    *,
    materials: Sequence[str],
    pixel_size: float,
    defects: dict[str, Sequence[Defect]] | None = None,
    classes: ClassMap | None = None,
    dose_range: tuple[float, float] = (5e3, 1e6),
    film_thickness_A: tuple[float, float] = (0.0, 4.0),
    crop: int = 128,
    architecture: UNetConfig | None = None,
    config: TrainConfig | None = None,
    n_validation: int = 4,
    **ranges: Any,
) -> TrainingSetup:
    """Everything :func:`train_model` trains from: initial model, data, validation.

    Parameters
    ----------
    materials : sequence of str
        Material names (see :func:`atomlens.simulate.load_material`).
    pixel_size : float
        The model's sampling [Å/px]; training images are drawn within ±12 % of it.
    defects : dict, optional
        Defects per material.
    classes : ClassMap, optional
        How columns map to classes (by species by default).
    dose_range : (float, float)
        Dose range [e⁻/Å²], drawn log-uniformly.
    film_thickness_A : (float, float)
        Amorphous carbon film thickness range [Å].
    crop : int
        Training image side [px].
    architecture : UNetConfig, optional
        Network; the default U-Net if omitted (``n_classes`` is set from the classes).
    config : TrainConfig, optional
        Hyperparameters.
    n_validation : int
        Simulated validation images (0: no validation, keep the last model).
    **ranges
        Further :class:`atomlens.simulate.ConditionRanges` fields (checked by it).

    Returns
    -------
    TrainingSetup
        The initial model (seeded with ``config.seed``), hyperparameters, the stream of
        simulated training images and the validation set.
    """
    ps = validate_pixel_size(pixel_size)
    cr = make_ranges(
        materials=materials,
        pixel_size=ps,
        defects=defects,
        classes=classes,
        dose_range=dose_range,
        film_thickness_A=film_thickness_A,
        crop=crop,
        **ranges,
    )
    cfg = config if config is not None else TrainConfig()
    source = SimulatedSource(cr, seed=cfg.seed)
    arch = replace(architecture or UNetConfig(), n_classes=len(source.class_names))
    import torch

    torch.manual_seed(cfg.seed)
    net = UNet(arch)
    mc = ModelConfig(
        architecture=arch,
        pixel_size_A=ps,
        class_names=source.class_names,
        label_radius_A=cr.label_radius_A,
        contrast="haadf" if set(cr.modes) == {"haadf"} else "bf",
        provenance={
            "materials": list(materials),
            "seed": cfg.seed,
            "class_map": cr.classes.by,
            # every simulated range it was trained on (adapt's simulated share reuses them)
            "simulation": cr.to_dict(),
        },
    )
    val = (
        ValidationSet.simulated(
            replace(cr, pixel_size_A=(ps * 0.5, ps * 0.8)),
            n_images=n_validation,
            shape=256,
            seed=cfg.seed + 10_000,
        )
        if n_validation > 0
        else None
    )
    return TrainingSetup(Model(net, mc), cfg, source, val)


def make_ranges(
    *,
    materials: Sequence[str],
    pixel_size: float,
    defects: dict[str, Sequence[Defect]] | None = None,
    classes: ClassMap | None = None,
    dose_range: tuple[float, float] = (5e3, 1e6),
    film_thickness_A: tuple[float, float] = (0.0, 4.0),
    crop: int = 128,
    **ranges: Any,
) -> ConditionRanges:
    """The simulated conditions :func:`train_model` draws from (same arguments)."""
    ps = validate_pixel_size(pixel_size)
    allowed = set(ConditionRanges.__dataclass_fields__) - {
        "materials",
        "defects",
        "shape",
        "pixel_size_A",
        "dose_e_per_A2",
        "classes",
        "film_thickness_A",
    }
    unknown = sorted(set(ranges) - allowed)
    if unknown:
        raise TypeError(f"unknown simulation settings {unknown}; allowed: {sorted(allowed)}.")
    return ConditionRanges(
        materials=tuple(materials),
        defects={k: tuple(v) for k, v in (defects or {}).items()},
        shape=crop,
        pixel_size_A=(ps * 0.88, ps * 1.12),
        dose_e_per_A2=tuple(dose_range),
        film_thickness_A=tuple(film_thickness_A),
        classes=classes if classes is not None else ClassMap(),
        **ranges,
    )
