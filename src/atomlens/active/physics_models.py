"""Physical models to start a structured GP or a hypothesis from.

Every model is a mean function ``f(x, params) → y`` for
:class:`~atomlens.active.structured.StructuredGP`: ``x`` a float64 tensor (shape (N,) for
one input, (N, 2) for positions (x, y) [Å]),
``params`` a dict of 0-d tensors, built from torch operations so gradients flow. Units
are whatever your data uses; the docstrings give the usual ones. Give each parameter a
prior in the same units (see the tutorial ``docs/tutorials/hypotheses.md``).

Transitions vs composition (1D):
    :func:`power_law_transition`, :func:`power_law_plateau`,
    :func:`power_law_then_linear`, :func:`threshold_onset`.
Switching (2D: field and sweep direction):
    :func:`switching_loop`.
Domain structures (1D or 2D positions):
    :func:`domain_wall`, :func:`domain_band`, :func:`stripe_domains`, :func:`bubble_domain`.

Powers of ``x`` and of ``x − t`` are taken of ``clamp_min(1e-12)``: ``torch.where`` sends
the gradient of the branch it does not take through too, and ``0**b`` would make it NaN.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

__all__ = [
    "bubble_domain",
    "domain_band",
    "domain_wall",
    "power_law_plateau",
    "power_law_then_linear",
    "power_law_transition",
    "stripe_domains",
    "switching_loop",
    "threshold_onset",
]

_EPS = 1e-12
Params = Mapping[str, torch.Tensor]


def _pos(v: torch.Tensor) -> torch.Tensor:
    return v.clamp_min(_EPS)


def power_law_transition(x: torch.Tensor, p: Params) -> torch.Tensor:
    """Two power laws joined continuously at a transition ``t``.

    ``y = a·x^b1`` for ``x < t`` and ``y = a·t^b1·(x/t)^b2`` for ``x ≥ t``: an order
    parameter or a property vs composition (or temperature, field) whose scaling
    exponent changes at a phase transition.

    Parameters
    ----------
    x : torch.Tensor of shape (N,)
        Composition (fraction), temperature [K] or field; ``x ≥ 0``.
    p : dict
        ``a`` (prefactor, units of y), ``b1``, ``b2`` (exponents, dimensionless),
        ``t`` (transition, units of x).

    Returns
    -------
    torch.Tensor of shape (N,)
    """
    below = p["a"] * _pos(x) ** p["b1"]
    above = p["a"] * _pos(p["t"]) ** p["b1"] * (_pos(x) / _pos(p["t"])) ** p["b2"]
    return torch.where(x < p["t"], below, above)


def power_law_plateau(x: torch.Tensor, p: Params) -> torch.Tensor:
    """A power law that saturates at a transition ``t``.

    ``y = a·x^b`` for ``x < t`` and ``y = a·t^b`` for ``x ≥ t``.

    Parameters
    ----------
    x : torch.Tensor of shape (N,)
        Composition, temperature [K] or field; ``x ≥ 0``.
    p : dict
        ``a`` (units of y), ``b`` (dimensionless), ``t`` (units of x).

    Returns
    -------
    torch.Tensor of shape (N,)
    """
    return p["a"] * _pos(torch.minimum(x, p["t"])) ** p["b"]


def power_law_then_linear(x: torch.Tensor, p: Params) -> torch.Tensor:
    """A power law that turns into a straight line at a transition ``t``.

    ``y = a·x^b`` for ``x < t`` and ``y = a·t^b + c·(x − t)`` for ``x ≥ t`` (``c < 0``:
    the property peaks at the transition and falls beyond it).

    Parameters
    ----------
    x : torch.Tensor of shape (N,)
        Composition, temperature [K] or field; ``x ≥ 0``.
    p : dict
        ``a`` (units of y), ``b`` (dimensionless), ``c`` (slope, units of y per unit of
        x), ``t`` (units of x).

    Returns
    -------
    torch.Tensor of shape (N,)
    """
    peak = p["a"] * _pos(p["t"]) ** p["b"]
    return torch.where(x < p["t"], p["a"] * _pos(x) ** p["b"], peak + p["c"] * (x - p["t"]))


def threshold_onset(x: torch.Tensor, p: Params) -> torch.Tensor:
    """A constant background, then a power-law onset above a threshold ``t``.

    ``y = d`` for ``x < t`` and ``y = d + c·(x − t)^b`` for ``x ≥ t``: a property that
    switches on at a critical composition or field.

    Parameters
    ----------
    x : torch.Tensor of shape (N,)
        Composition, temperature [K] or field.
    p : dict
        ``d`` (background, units of y), ``c`` (amplitude, units of y per (unit of x)^b),
        ``b`` (onset exponent, dimensionless), ``t`` (threshold, units of x).

    Returns
    -------
    torch.Tensor of shape (N,)
    """
    return p["d"] + p["c"] * _pos(x - p["t"]) ** p["b"] * (x > p["t"]).to(x.dtype)


def switching_loop(x: torch.Tensor, p: Params) -> torch.Tensor:
    """A ferroelectric switching loop: the tanh branches of a Landau-type double well.

    ``P = Ps·tanh((E − s·Ec)/δ) + χ·E``, where ``s = +1`` on the rising sweep (switching
    at ``+Ec``) and ``s = −1`` on the falling sweep (at ``−Ec``); ``χ·E`` is the linear
    dielectric response. A piezoresponse loop has the same shape with ``Ps`` in pm/V.

    Parameters
    ----------
    x : torch.Tensor of shape (N, 2)
        Columns: the field E [kV/cm] (or the tip bias [V]) and the sweep direction s
        (+1 rising, −1 falling).
    p : dict
        ``Ps`` (saturation polarisation [µC/cm²]), ``Ec`` (coercive field [kV/cm]),
        ``delta`` (switching width [kV/cm]), ``chi`` (linear term [µC/cm² per kV/cm]).

    Returns
    -------
    torch.Tensor of shape (N,)
    """
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError("switching_loop takes x of shape (N, 2): field and sweep direction ±1.")
    E, s = x[:, 0], torch.sign(x[:, 1])
    return p["Ps"] * torch.tanh((E - s * p["Ec"]) / p["delta"]) + p["chi"] * E


def _across(x: torch.Tensor, p: Params) -> torch.Tensor:
    """The coordinate across the walls: x itself in 1D, x·cos φ + y·sin φ in 2D."""
    if x.ndim == 1:
        return x
    return x[:, 0] * torch.cos(p["phi"]) + x[:, 1] * torch.sin(p["phi"])


def domain_wall(x: torch.Tensor, p: Params) -> torch.Tensor:
    """One straight domain wall: the Ginzburg–Landau profile ``P0·tanh((u − x0)/w)``.

    ``u`` is the position across the wall: ``x`` in 1D, ``x·cos φ + y·sin φ`` in 2D.

    Parameters
    ----------
    x : torch.Tensor of shape (N,) or (N, 2)
        Positions [Å] (``(x, y)`` in 2D).
    p : dict
        ``P0`` (polarisation far from the wall: a B-site displacement [pm] or
        [µC/cm²]), ``x0`` (wall position along u [Å]), ``w`` (half-width [Å]), and in
        2D ``phi`` (direction of the wall normal from the x axis [rad]).

    Returns
    -------
    torch.Tensor of shape (N,)
    """
    return p["P0"] * torch.tanh((_across(x, p) - p["x0"]) / p["w"])


def domain_band(x: torch.Tensor, p: Params) -> torch.Tensor:
    """A band of one polarisation between two parallel walls, in a matrix of the other.

    ``P0·(tanh((u − c + s/2)/w) − tanh((u − c − s/2)/w) − 1)``: ``+P0`` inside the band
    of width ``s`` centred at ``c``, ``−P0`` outside.

    Parameters
    ----------
    x : torch.Tensor of shape (N,) or (N, 2)
        Positions [Å].
    p : dict
        ``P0`` ([pm] or [µC/cm²]), ``c`` (band centre along u [Å]), ``s`` (band width
        [Å]), ``w`` (wall half-width [Å]), and in 2D ``phi`` (wall normal [rad]).

    Returns
    -------
    torch.Tensor of shape (N,)
    """
    u = _across(x, p)
    half = p["s"] / 2
    return p["P0"] * (
        torch.tanh((u - p["c"] + half) / p["w"]) - torch.tanh((u - p["c"] - half) / p["w"]) - 1
    )


def stripe_domains(x: torch.Tensor, p: Params) -> torch.Tensor:
    """Periodic 180° stripe domains with walls of finite width.

    ``P0·tanh(Λ/(2πw)·sin(2π(u − x0)/Λ))``: walls every ``Λ/2``, each with the slope of a
    tanh wall of half-width ``w``.

    Parameters
    ----------
    x : torch.Tensor of shape (N,) or (N, 2)
        Positions [Å].
    p : dict
        ``P0`` ([pm] or [µC/cm²]), ``period`` (Λ, two domains [Å]), ``x0`` (a wall
        position [Å]), ``w`` (wall half-width [Å]), and in 2D ``phi`` (wall normal [rad]).

    Returns
    -------
    torch.Tensor of shape (N,)
    """
    phase = 2 * math.pi * (_across(x, p) - p["x0"]) / p["period"]
    return p["P0"] * torch.tanh(p["period"] / (2 * math.pi * p["w"]) * torch.sin(phase))


def bubble_domain(x: torch.Tensor, p: Params) -> torch.Tensor:
    """A round domain (a bubble) of one polarisation in a matrix of the other.

    ``P0·tanh((R − |r − r0|)/w)``: ``+P0`` inside radius ``R`` around ``(cx, cy)``,
    ``−P0`` outside.

    Parameters
    ----------
    x : torch.Tensor of shape (N, 2)
        Positions (x, y) [Å].
    p : dict
        ``P0`` ([pm] or [µC/cm²]), ``cx``, ``cy`` (centre [Å]), ``R`` (radius [Å]), ``w``
        (wall half-width [Å]).

    Returns
    -------
    torch.Tensor of shape (N,)
    """
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError("bubble_domain takes positions of shape (N, 2) as (x, y) in Å.")
    r = torch.sqrt((x[:, 0] - p["cx"]) ** 2 + (x[:, 1] - p["cy"]) ** 2 + _EPS)
    return p["P0"] * torch.tanh((p["R"] - r) / p["w"])
