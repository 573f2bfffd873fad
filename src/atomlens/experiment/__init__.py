"""Experiments the active-learning loop drives: a simulated microscope with hidden spectra,
replay of pre-acquired spectrum images, the interface a real instrument implements, and
closed-form objectives for Bayesian optimisation of instrument settings.

- :func:`simulate_sample` / :class:`SimulatedMicroscope`: graphene with Si dopants (from
  :mod:`atomlens.simulate`), an EELS-like spectrum at every position from a documented
  closed-form model (:class:`SpectrumModel`), Poisson noise, time and dose tallied;
  :func:`save_sample` / :func:`load_sample`;
- :class:`SpectrumImageReplay` / :func:`read_spectrum_image`: a pre-acquired ``(H, W, E)``
  cube served one spectrum at a time;
- :class:`InstrumentAdapter`: what a real microscope driver must implement;
- :func:`open_source` / :func:`explore_files`: data files to explore, behind
  ``atomlens explore``;
- :mod:`atomlens.experiment.objectives`: closed-form 2-D objectives with a misleading local
  optimum and a two-objective problem, for benchmarks of Bayesian optimisation.
"""

from atomlens.experiment.files import explore_files, open_source
from atomlens.experiment.microscope import (
    InstrumentAdapter,
    SimulatedMicroscope,
    SpectrumModel,
    load_sample,
    save_sample,
    simulate_sample,
)
from atomlens.experiment.replay import SpectrumImageReplay, read_spectrum_image

__all__ = [
    "InstrumentAdapter",
    "SimulatedMicroscope",
    "SpectrumImageReplay",
    "SpectrumModel",
    "explore_files",
    "load_sample",
    "open_source",
    "read_spectrum_image",
    "save_sample",
    "simulate_sample",
]
