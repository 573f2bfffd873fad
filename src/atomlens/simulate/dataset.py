"""An endless, reproducible stream of simulated training images with random conditions."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from atomlens._shared.config import check_keys
from atomlens._shared.validate import validate_range
from atomlens.simulate.classes import ClassMap
from atomlens.simulate.conditions import ImagingConditions
from atomlens.simulate.defects import Defect, Substitution, Vacancy
from atomlens.simulate.distortions import ScanDistortion, default_flyback_decay
from atomlens.simulate.imaging import Background, Detector
from atomlens.simulate.probe import AberratedProbe, GaussianProbe
from atomlens.simulate.scene import SimulatedImage, simulate_image
from atomlens.simulate.structures import load_material

__all__ = ["ConditionRanges", "SimulatedDataset"]

Range = tuple[float, float]


@dataclass(frozen=True)
class ConditionRanges:
    """Ranges from which each training image draws its conditions (uniformly unless noted).

    A single number instead of a pair fixes that quantity.

    Parameters
    ----------
    materials : sequence of str
        Material names; each image picks one at random.
    defects : mapping of str to sequence of defects
        Defects per material name (e.g. ``{"graphene": (Substitution("C", "Si", 0.01),)}``).
    shape : int
        Image side [px].
    pixel_size_A : (float, float)
        Pixel size [Å/px].
    dose_e_per_A2 : (float, float)
        Dose [e⁻/Å²], drawn log-uniformly.
    probe : {"gaussian", "aberrated", "mixed"}
        Probe kind (``"mixed"``: each image picks one with equal odds).
    probe_fwhm_A : (float, float)
        FWHM of the Gaussian probe [Å].
    energy_keV, convergence_mrad, defocus_A, cs_mm, source_fwhm_A : (float, float)
        Aberration-limited probe parameters.
    gamma : (float, float)
        Z-contrast exponent.
    column_sigma_A : (float, float)
        Column spread [Å].
    carbon_cross_section_A2 : (float, float)
        Effective carbon cross-section [Å²], drawn log-uniformly.
    read_noise : (float, float)
        Read noise [counts].
    film_thickness_A, film_gradient, film_variation : (float, float)
        Amorphous film thickness [Å], relative gradient and relative variation.
    line_jitter_px, drift_px, flyback_px : (float, float)
        Scan distortions [px]; drift is drawn in both directions with this magnitude.
    hot_pixel_share, dead_pixel_share : (float, float)
        Share of pixels stuck at the frame's top value / reading 0 [fraction of pixels]
        (:class:`~atomlens.simulate.Detector`); off by default.
    gain_drift_per_100_rows : (float, float)
        Magnitude of the detector gain's relative drift per 100 scan lines [1/(100 rows)],
        drawn in either direction with equal odds; off by default.
    line_gain_jitter : (float, float)
        Relative standard deviation of the gain from one scan line to the next [fraction];
        off by default.
    max_strain : float
        Largest strain component, drawn uniformly in ±max_strain.
    modes : sequence of {"haadf", "bf"}
        Imaging modes to draw from.
    classes : ClassMap
        Class mapping; the class list is the union over materials, in order.
    label_radius_A : float
        Label disk radius [Å].
    label_kind : {"disk", "gaussian"}
        Label shape.
    label_min_share : float
        Columns fainter than this share of the bright ones (Σ Z^γ, 90th percentile) are
        neither labelled nor in the truth (:func:`atomlens.simulate.simulate_image`).
    """

    materials: tuple[str, ...] = ("graphene",)
    defects: Mapping[str, tuple[Defect, ...]] = field(default_factory=dict)
    shape: int = 256
    pixel_size_A: Range = (0.08, 0.14)
    dose_e_per_A2: Range = (1e4, 1e6)
    probe: Literal["gaussian", "aberrated", "mixed"] = "mixed"
    probe_fwhm_A: Range = (0.6, 1.1)
    energy_keV: Range = (60.0, 300.0)
    convergence_mrad: Range = (20.0, 32.0)
    defocus_A: Range = (-20.0, 20.0)
    cs_mm: Range = (0.0, 0.005)
    source_fwhm_A: Range = (0.3, 0.8)
    gamma: Range = (1.6, 2.0)
    column_sigma_A: Range = (0.05, 0.12)
    carbon_cross_section_A2: Range = (0.005, 0.02)
    read_noise: Range = (0.0, 1.0)
    film_thickness_A: Range = (0.0, 5.0)
    film_gradient: Range = (0.0, 0.5)
    film_variation: Range = (0.0, 0.3)
    line_jitter_px: Range = (0.0, 0.3)
    drift_px: Range = (0.0, 3.0)
    flyback_px: Range = (0.0, 2.0)
    hot_pixel_share: Range = (0.0, 0.0)
    dead_pixel_share: Range = (0.0, 0.0)
    gain_drift_per_100_rows: Range = (0.0, 0.0)
    line_gain_jitter: Range = (0.0, 0.0)
    max_strain: float = 0.02
    modes: tuple[str, ...] = ("haadf",)
    classes: ClassMap = field(default_factory=ClassMap)
    label_radius_A: float = 0.5
    label_kind: Literal["disk", "gaussian"] = "disk"
    label_min_share: float = 0.0

    def __post_init__(self) -> None:
        if not self.materials:
            raise ValueError("materials must name at least one material.")
        object.__setattr__(self, "materials", tuple(self.materials))
        object.__setattr__(self, "modes", tuple(self.modes))
        object.__setattr__(self, "defects", {k: tuple(v) for k, v in dict(self.defects).items()})
        unknown = sorted(set(self.defects) - set(self.materials))
        if unknown:
            raise ValueError(
                f"defects given for {unknown}, which are not in materials {self.materials}."
            )
        if self.probe not in ("gaussian", "aberrated", "mixed"):
            raise ValueError(
                f"probe must be 'gaussian', 'aberrated' or 'mixed', got {self.probe!r}."
            )
        for m in self.modes:
            if m not in ("haadf", "bf"):
                raise ValueError(f"modes must hold 'haadf' and/or 'bf', got {m!r}.")
        for name, kw in {
            "pixel_size_A": {},
            "dose_e_per_A2": {},
            "probe_fwhm_A": {},
            "energy_keV": {},
            "convergence_mrad": {},
            "source_fwhm_A": {"allow_zero": True},
            "gamma": {},
            "column_sigma_A": {"allow_zero": True},
            "carbon_cross_section_A2": {},
            "read_noise": {"allow_zero": True},
            "film_thickness_A": {"allow_zero": True},
            "film_gradient": {"allow_zero": True},
            "film_variation": {"allow_zero": True},
            "line_jitter_px": {"allow_zero": True},
            "drift_px": {"allow_zero": True},
            "flyback_px": {"allow_zero": True},
            "hot_pixel_share": {"allow_zero": True},
            "dead_pixel_share": {"allow_zero": True},
            "gain_drift_per_100_rows": {"allow_zero": True},
            "line_gain_jitter": {"allow_zero": True},
            "cs_mm": {"allow_zero": True},
            "defocus_A": {"allow_negative": True, "allow_zero": True},
        }.items():
            object.__setattr__(self, name, validate_range(getattr(self, name), name=name, **kw))
        if not 0.0 <= float(self.label_min_share) < 1.0:
            raise ValueError(
                f"label_min_share must be within [0, 1), got {self.label_min_share!r}."
            )
        for name, top in (
            ("hot_pixel_share", 0.5),
            ("dead_pixel_share", 0.5),
            ("line_gain_jitter", 0.3),
        ):
            if getattr(self, name)[1] >= top:
                raise ValueError(
                    f"{name} must stay below {top}, got {getattr(self, name)!r}; e.g. "
                    f"(0.0, {top / 100:g})."
                )
        if not (0 <= self.max_strain <= 0.1):
            raise ValueError(f"max_strain must be within 0–0.1, got {self.max_strain!r}.")
        if not (16 <= int(self.shape) <= 4096):
            raise ValueError(f"shape must be within 16–4096 px, got {self.shape!r}.")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for a model's provenance); :meth:`from_dict` reads it back."""
        from dataclasses import asdict, fields

        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "defects":
                v = {
                    m: [{"kind": type(d).__name__, **asdict(d)} for d in ds] for m, ds in v.items()
                }
            elif f.name == "classes":
                v = {"by": v.by, "rename": dict(v.rename)}
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], /) -> ConditionRanges:
        """The ranges :meth:`to_dict` wrote (unknown keys are refused)."""
        check_keys(cls, d, "simulation ranges")
        kinds = {"Substitution": Substitution, "Vacancy": Vacancy}
        bad = sorted(
            {str(x.get("kind")) for ds in d.get("defects", {}).values() for x in ds} - set(kinds)
        )
        if bad:
            raise ValueError(
                f"unknown defect kinds {bad} in the simulation ranges; known: {sorted(kinds)}."
            )
        kw: dict[str, Any] = {}
        for k, v in d.items():
            if k == "defects":
                v = {
                    m: tuple(
                        kinds[x["kind"]](**{a: b for a, b in x.items() if a != "kind"}) for x in ds
                    )
                    for m, ds in v.items()
                }
            elif k == "classes":
                v = ClassMap(**v)
            elif isinstance(v, list):
                v = tuple(tuple(x) if isinstance(x, list) else x for x in v)
            kw[k] = v
        return cls(**kw)

    def class_names(self) -> tuple[str, ...]:
        """Union of the class names of all materials, in order of first appearance."""
        names: list[str] = []
        for m in self.materials:
            cell = load_material(m)
            for n in self.classes.class_names(
                np.asarray(cell.counts), cell.elements, self.defects.get(m, ())
            ):
                if n not in names:
                    names.append(n)
        return tuple(names)

    def draw(self, rng: np.random.Generator, /) -> dict[str, Any]:
        """Draw one set of conditions.

        Returns
        -------
        dict
            Keyword arguments for :func:`atomlens.simulate.simulate_image` plus ``material``.
        """

        def u(r: Range) -> float:
            return float(rng.uniform(r[0], r[1])) if r[1] > r[0] else float(r[0])

        def logu(r: Range) -> float:
            return (
                float(math.exp(rng.uniform(math.log(r[0]), math.log(r[1]))))
                if r[1] > r[0]
                else r[0]
            )

        material = self.materials[int(rng.integers(len(self.materials)))]
        kind = (
            self.probe if self.probe != "mixed" else ("gaussian", "aberrated")[int(rng.integers(2))]
        )
        if kind == "gaussian":
            probe: GaussianProbe | AberratedProbe = GaussianProbe(fwhm_A=u(self.probe_fwhm_A))
        else:
            probe = AberratedProbe(
                energy_keV=u(self.energy_keV),
                convergence_mrad=u(self.convergence_mrad),
                defocus_A=u(self.defocus_A),
                cs_mm=u(self.cs_mm),
                source_fwhm_A=u(self.source_fwhm_A),
            )
        sign = rng.choice([-1.0, 1.0], size=2)
        fly = u(self.flyback_px)
        conditions = ImagingConditions(
            mode=self.modes[int(rng.integers(len(self.modes)))],  # type: ignore[arg-type]
            gamma=u(self.gamma),
            probe=probe,
            column_sigma_A=u(self.column_sigma_A),
            dose_e_per_A2=logu(self.dose_e_per_A2),
            carbon_cross_section_A2=logu(self.carbon_cross_section_A2),
            read_noise=u(self.read_noise),
            background=Background(
                film_thickness_A=u(self.film_thickness_A),
                gradient=u(self.film_gradient),
                variation=u(self.film_variation),
            ),
            distortion=ScanDistortion(
                line_jitter_px=u(self.line_jitter_px),
                drift_x_px=sign[0] * u(self.drift_px),
                drift_y_px=sign[1] * u(self.drift_px),
                flyback_px=fly,
                flyback_decay_px=default_flyback_decay(fly),
            ),
            detector=self._draw_detector(u, rng),
        )
        return {
            "material": material,
            "pixel_size": u(self.pixel_size_A),
            "conditions": conditions,
            "strain": tuple(float(s) for s in rng.uniform(-self.max_strain, self.max_strain, 3)),
            "defects": self.defects.get(material, ()),
        }

    def _draw_detector(self, u: Callable[[Range], float], rng: np.random.Generator) -> Detector:
        # Nothing is drawn for a range fixed at one value (u does not draw then, the sign is
        # drawn only for a drift that can be non-zero): streams of ranges that leave the
        # detector off stay the same image for image.
        drift = u(self.gain_drift_per_100_rows)
        if self.gain_drift_per_100_rows[1] > 0:
            drift *= float(rng.choice([-1.0, 1.0]))
        return Detector(
            hot_pixel_share=u(self.hot_pixel_share),
            dead_pixel_share=u(self.dead_pixel_share),
            gain_drift_per_100_rows=drift,
            line_gain_jitter=u(self.line_gain_jitter),
        )


class SimulatedDataset(IterableDataset):
    """Endless simulated images for training, reproducible from one seed.

    Image ``i`` is fully determined by ``(seed, i)``, whatever the number of DataLoader
    workers (worker ``k`` of ``n`` yields images ``k, k + n, k + 2n, …``).

    Parameters
    ----------
    ranges : ConditionRanges
        Where conditions are drawn from.
    seed : int
        Seed of the whole stream.
    length : int, optional
        Number of images; endless if ``None``.

    Yields
    ------
    dict
        ``"image"``: float32 tensor (1, H, W) of raw counts; ``"masks"``: float32 tensor
        (K + 1, H, W) with background in channel 0 and ``class_names`` after it;
        ``"index"``: the image index.

    Examples
    --------
    >>> ds = SimulatedDataset(ConditionRanges(shape=64), seed=0, length=2)
    >>> [tuple(s["image"].shape) for s in ds]
    [(1, 64, 64), (1, 64, 64)]
    """

    def __init__(
        self, ranges: ConditionRanges | None = None, *, seed: int = 0, length: int | None = None
    ) -> None:
        super().__init__()
        self.ranges = ranges if ranges is not None else ConditionRanges()
        if not isinstance(self.ranges, ConditionRanges):
            raise TypeError(f"ranges must be ConditionRanges, got {type(self.ranges).__name__}.")
        if length is not None and length < 1:
            raise ValueError(f"length must be a positive number of images or None, got {length!r}.")
        self.seed = int(seed)
        self.length = length
        self.class_names = self.ranges.class_names()

    def sample(self, index: int, /) -> SimulatedImage:
        """The full simulated image (with truth) at position ``index`` of the stream."""
        ss = np.random.SeedSequence([self.seed, int(index)])
        draw_ss, image_ss = ss.spawn(2)
        kw = self.ranges.draw(np.random.default_rng(draw_ss))
        material = kw.pop("material")
        return simulate_image(
            material,
            shape=self.ranges.shape,
            classes=self.ranges.classes,
            label_radius_A=self.ranges.label_radius_A,
            label_kind=self.ranges.label_kind,
            label_min_share=self.ranges.label_min_share,
            rng=image_ss,
            **kw,
        )

    def _tensors(self, sim: SimulatedImage, index: int) -> dict[str, Any]:
        k = len(self.class_names)
        masks = np.zeros((k + 1, *sim.image.shape), dtype=np.float32)
        masks[0] = sim.masks[0]
        for j, name in enumerate(sim.class_names):
            masks[1 + self.class_names.index(name)] = sim.masks[1 + j]
        return {
            "image": torch.from_numpy(sim.image[None].copy()),
            "masks": torch.from_numpy(masks),
            "index": index,
        }

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        i = start
        while self.length is None or i < self.length:
            yield self._tensors(self.sample(i), i)
            i += step

    def __len__(self) -> int:
        if self.length is None:
            raise TypeError("an endless SimulatedDataset has no length; pass length=N.")
        return self.length
