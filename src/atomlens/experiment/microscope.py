"""A simulated microscope: a large simulated sample with a hidden spectrum at every position.

:class:`SimulatedMicroscope` has the interface a real instrument adapter has
(:class:`InstrumentAdapter`): ``overview()`` returns the fast HAADF image,
``measure(x, y)`` returns the spectrum at a pixel (Poisson counts), and the costs of every
measurement (time, dose) are tallied.

The hidden spectrum
-------------------
An EELS-like core-loss window around the Si L₂,₃ edge, on an energy axis ``E`` [eV]. At a
probe position **r** the expected counts per channel are

::

    λ(E; r) = τ · [ b · (E / E₀)^−3  +  a · Σ_{i ∈ Si} w_i(r) · edge(E − E_i) ]

with ``τ = dwell_s / 0.1 s``, the background ``b`` at ``E₀ = energy[0]``, the edge amplitude
``a``, the probe weight ``w_i(r) = exp(−|r − r_i|² / 2 w²)`` of dopant ``i`` (``w =
probe_width_A``), and ``edge(ΔE) = sigmoid(ΔE / 0.6 eV) · exp(−ΔE / 25 eV)``. The onset
follows the dopant's coordination: ``E_i = onset_eV + 0.6 eV · (3 − n_i)``, where ``n_i`` is
the number of atomic columns within 1.9 Å of the Si (3 in the graphene lattice; fewer next
to a vacancy), so a Si beside a vacancy has its edge 0.6 eV higher per missing neighbour.
The recorded spectrum is ``Poisson(λ)``.
"""

from __future__ import annotations

import json
import logging
import os
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from atomlens._shared.atomic import atomic_directory
from atomlens._shared.config import ConfigDict, json_default
from atomlens._shared.validate import validate_pixel_size

logger = logging.getLogger(__name__)

__all__ = [
    "InstrumentAdapter",
    "SimulatedMicroscope",
    "SpectrumModel",
    "load_sample",
    "save_sample",
    "simulate_sample",
]


class InstrumentAdapter(ABC):
    """What a driver of a real microscope implements so :func:`atomlens.active.run` can use
    it; every method here is a stub that raises ``NotImplementedError``.

    Attributes
    ----------
    energy : ndarray of shape (E,)
        The spectrometer's energy axis [eV] (or the axis of whatever is measured).
    pixel_size : float
        Pixel size of the overview image [Å/px].

    Notes
    -----
    A driver must

    - take the overview scan once (``overview``), and keep the scan coordinates fixed so
      that pixel ``(x, y)`` of the overview is where ``measure(x, y)`` puts the probe
      (correct drift itself, e.g. by cross-correlating a fresh overview);
    - block in ``measure`` until the spectrum is read out, and return counts (not
      normalised) so the Poisson noise model holds;
    - raise ``RuntimeError`` on hardware faults, never return NaN;
    - blank the beam between measurements (the dose is part of the cost).
    """

    energy: np.ndarray
    pixel_size: float

    @abstractmethod
    def overview(self) -> np.ndarray:
        """Acquire (once) and return the overview image (H, W)."""
        raise NotImplementedError

    @abstractmethod
    def measure(self, x: float, y: float) -> np.ndarray:
        """Move the probe to overview pixel ``(x, y)``, acquire and return the spectrum
        (E,) in counts."""
        raise NotImplementedError


@dataclass(frozen=True)
class SpectrumModel(ConfigDict):
    """Parameters of the closed-form hidden spectrum (see the module docstring).

    Parameters
    ----------
    energy_start_eV, energy_step_eV : float
        Energy axis: ``energy_start_eV + k · energy_step_eV`` [eV].
    n_channels : int
        Number of channels E.
    background : float
        Background counts per channel at the first channel for a 0.1 s dwell.
    amplitude : float
        Edge counts per channel (at its maximum) for a probe on a Si, 0.1 s dwell.
    onset_eV : float
        Si L₂,₃ onset of a three-fold coordinated Si [eV].
    shift_per_missing_neighbour_eV : float
        Onset shift per missing neighbour [eV].
    probe_width_A : float
        Width ``w`` of the probe weight [Å].
    dwell_s : float
        Acquisition time per spectrum [s].
    dose_per_spectrum : float
        Dose given by one spectrum [e⁻/Å²].
    """

    energy_start_eV: float = 80.0
    energy_step_eV: float = 0.5
    n_channels: int = 100
    background: float = 100.0
    amplitude: float = 60.0
    onset_eV: float = 99.5
    shift_per_missing_neighbour_eV: float = 0.6
    probe_width_A: float = 1.2
    dwell_s: float = 0.1
    dose_per_spectrum: float = 1e6

    @property
    def energy(self) -> np.ndarray:
        """The energy axis (E,) [eV]."""
        return self.energy_start_eV + self.energy_step_eV * np.arange(self.n_channels)


def _coordination(xy: np.ndarray, all_xy: np.ndarray, cutoff_A: float = 1.9) -> np.ndarray:
    d = np.hypot(*(xy[:, None, :] - all_xy[None, :, :]).transpose(2, 0, 1))
    return ((d > 0.1) & (d < cutoff_A)).sum(1)


@dataclass
class SimulatedMicroscope:
    """A simulated instrument over a simulated sample (see the module docstring).

    Parameters
    ----------
    image : ndarray of shape (H, W)
        The overview (HAADF counts).
    truth : pandas.DataFrame
        Atomic columns with ``x_px, y_px, species`` (the truth table of
        :func:`atomlens.simulate.simulate_image`).
    pixel_size : float
        [Å/px].
    spectrum : SpectrumModel
        The hidden spectrum's parameters.
    seed : int
        Seed of the measurement noise (each measurement's noise is keyed on the seed, the
        position and how often it was measured before, so it does not depend on the order
        of measurements).

    Attributes
    ----------
    time_s : float
        Acquisition time spent so far [s].
    visits : dict
        Measurements per position.
    """

    image: np.ndarray
    truth: pd.DataFrame
    pixel_size: float
    spectrum: SpectrumModel = field(default_factory=SpectrumModel)
    seed: int = 0
    time_s: float = 0.0
    visits: dict[tuple[int, int], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.pixel_size = validate_pixel_size(self.pixel_size)
        t = self.truth
        xy = t[["x_px", "y_px"]].to_numpy(float)
        si = (t["species"].astype(str).str.contains("Si")).to_numpy()
        self.dopants_px = xy[si]
        self.onsets_eV = self.spectrum.onset_eV + self.spectrum.shift_per_missing_neighbour_eV * (
            3 - _coordination(xy[si] * self.pixel_size, xy * self.pixel_size)
        )

    @property
    def energy(self) -> np.ndarray:
        """The energy axis (E,) [eV]."""
        return self.spectrum.energy

    def overview(self) -> np.ndarray:
        """The overview image (H, W) [counts]."""
        return self.image

    def expected(self, positions: np.ndarray, /) -> np.ndarray:
        """Noise-free spectra at pixel positions.

        Parameters
        ----------
        positions : ndarray of shape (N, 2)
            ``(x, y)`` [px].

        Returns
        -------
        ndarray of shape (N, E)
            Expected counts per channel.
        """
        sp = self.spectrum
        pos = np.atleast_2d(np.asarray(positions, dtype=np.float64))
        e = sp.energy
        tau = sp.dwell_s / 0.1
        bg = sp.background * (e / e[0]) ** -3.0
        out = np.broadcast_to(bg, (len(pos), len(e))).copy()
        for (dx, dy), onset in zip(self.dopants_px, self.onsets_eV, strict=True):
            r2 = ((pos[:, 0] - dx) ** 2 + (pos[:, 1] - dy) ** 2) * self.pixel_size**2
            w = np.exp(-r2 / (2 * sp.probe_width_A**2))
            de = e - onset
            edge = np.exp(-de / 25.0) / (1.0 + np.exp(-de / 0.6))
            out += sp.amplitude * w[:, None] * edge[None, :]
        return tau * out

    def measure(self, x: float, y: float) -> np.ndarray:
        """Measure the spectrum at pixel ``(x, y)``: Poisson counts (E,).

        Parameters
        ----------
        x, y : float
            Probe position [px] (x = column, y = row).

        Returns
        -------
        ndarray of shape (E,)
        """
        h, w = self.image.shape
        if not (-0.5 <= x < w - 0.5 and -0.5 <= y < h - 0.5):
            raise ValueError(f"position x={x}, y={y} px is outside the {h}×{w} overview.")
        key = (round(float(x) * 1000), round(float(y) * 1000))
        n = self.visits.get(key, 0)
        self.visits[key] = n + 1
        self.time_s += self.spectrum.dwell_s
        gen = np.random.default_rng([self.seed, key[0], key[1], n])
        return gen.poisson(self.expected([[x, y]])[0]).astype(np.float64)

    def property_map(self, positions: np.ndarray, scalarizer: Any, /) -> np.ndarray:
        """The true (noise-free) scalarised property at positions, (N,)."""
        return np.asarray(scalarizer(self.expected(positions), self.energy), dtype=np.float64)

    @property
    def dose_given(self) -> float:
        """Total dose of all measurements so far [e⁻/Å²]."""
        return sum(self.visits.values()) * self.spectrum.dose_per_spectrum


def simulate_sample(
    *,
    shape: int = 280,
    pixel_size: float = 0.2,
    n_dopants: int = 4,
    n_vacancies: int = 0,
    dose_e_per_A2: float = 2e4,
    spectrum: SpectrumModel | None = None,
    seed: int = 0,
) -> SimulatedMicroscope:
    """A graphene sample with Si dopants (and vacancies) and its simulated microscope.

    The dopants sit at random lattice sites at least 8 Å from each other and 5 Å from the
    border; vacancies, if any, at random sites next to them (one neighbour missing) first.

    Parameters
    ----------
    shape : int
        Overview side [px].
    pixel_size : float
        [Å/px].
    n_dopants : int
        Si substitutions.
    n_vacancies : int
        Vacancies placed beside dopants (at most ``n_dopants``).
    dose_e_per_A2 : float
        Dose of the overview [e⁻/Å²].
    spectrum : SpectrumModel, optional
        Hidden spectrum parameters.
    seed : int
        Seed of the sample and of the measurement noise.

    Returns
    -------
    SimulatedMicroscope

    Examples
    --------
    >>> mic = simulate_sample(shape=96, n_dopants=1, seed=0)
    >>> mic.measure(10, 10).shape, len(mic.dopants_px)
    ((100,), 1)
    """
    # the simulator is heavy (ASE, the imaging model): loaded when a sample is made
    from atomlens.simulate import ImagingConditions, Substitution, Vacancy, simulate_image

    px = validate_pixel_size(pixel_size)
    if int(n_dopants) < 0 or int(n_vacancies) < 0 or n_vacancies > max(n_dopants, 0):
        raise ValueError("`n_dopants` must be >= 0 and `n_vacancies` between 0 and `n_dopants`.")
    gen = np.random.default_rng([seed, 4271])
    cond = ImagingConditions(dose_e_per_A2=dose_e_per_A2)
    rot = float(gen.uniform(0, 60))
    base = simulate_image(
        "graphene", shape=shape, pixel_size=px, rotation_deg=rot, conditions=cond, rng=seed
    )
    xy = base.truth[["x_A", "y_A"]].to_numpy(float)
    side = shape * px
    ok = ((xy > 5.0) & (xy < side - 5.0)).all(1)
    chosen: list[int] = []
    for i in gen.permutation(np.flatnonzero(ok)):
        if all(np.hypot(*(xy[i] - xy[j])) > 8.0 for j in chosen):
            chosen.append(int(i))
        if len(chosen) == n_dopants:
            break
    if len(chosen) < n_dopants:
        raise ValueError(
            f"{n_dopants} dopants 8 Å apart do not fit a {shape} px image; enlarge it."
        )
    vac = []
    for i in chosen[: int(n_vacancies)]:
        d = np.hypot(*(xy - xy[i]).T)
        d[i] = np.inf
        vac.append(tuple(xy[int(np.argmin(d))]))
    defects: list[Any] = [Substitution("C", "Si", sites=tuple(tuple(xy[i]) for i in chosen))]
    if vac:
        defects.append(Vacancy("C", sites=tuple(vac)))
    sim = simulate_image(
        "graphene",
        shape=shape,
        pixel_size=px,
        rotation_deg=rot,
        conditions=cond,
        defects=defects,
        rng=seed,
    )
    return SimulatedMicroscope(
        image=sim.image,
        truth=sim.truth,
        pixel_size=px,
        spectrum=spectrum if spectrum is not None else SpectrumModel(),
        seed=seed,
    )


def save_sample(
    microscope: SimulatedMicroscope,
    /,
    out: str | os.PathLike[str],
    *,
    overwrite: bool = False,
) -> Path:
    """Save a simulated sample: ``image.npy``, ``truth.csv`` and ``sample.json`` (pixel size,
    seed, spectrum model). :func:`load_sample` rebuilds the same microscope.

    Parameters
    ----------
    microscope : SimulatedMicroscope
    out : str or path
        New directory (refused if it holds files, unless ``overwrite``).
    overwrite : bool
        Replace it.

    Returns
    -------
    pathlib.Path
    """
    with atomic_directory(out, overwrite=overwrite) as tmp:
        np.save(tmp / "image.npy", np.asarray(microscope.image, np.float32), allow_pickle=False)
        microscope.truth.to_csv(tmp / "truth.csv", index=False)
        meta = {
            "kind": "atomlens simulated sample",
            "pixel_size_A": microscope.pixel_size,
            "seed": microscope.seed,
            "spectrum": asdict(microscope.spectrum),
        }
        (tmp / "sample.json").write_text(json.dumps(meta, indent=2, default=json_default))
    return Path(out)


def load_sample(path: str | os.PathLike[str], /) -> SimulatedMicroscope:
    """Load a sample written by :func:`save_sample`.

    Raises
    ------
    FileNotFoundError
        ``path`` holds no ``sample.json``.
    """
    path = Path(path)
    if not (path / "sample.json").is_file():
        raise FileNotFoundError(
            f"{path} is not a saved simulated sample (no sample.json); make one with "
            "atomlens.experiment.save_sample."
        )
    meta = json.loads((path / "sample.json").read_text())
    return SimulatedMicroscope(
        image=np.load(path / "image.npy", allow_pickle=False),
        truth=pd.read_csv(path / "truth.csv"),
        pixel_size=float(meta["pixel_size_A"]),
        spectrum=SpectrumModel.from_dict(meta["spectrum"]),
        seed=int(meta["seed"]),
    )
