"""The settings of :func:`atomlens.elit.adapt.adapt`, validated on construction."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Literal

__all__ = ["AdaptConfig"]


@dataclass(frozen=True)
class AdaptConfig:
    """Settings of :func:`adapt`.

    Parameters
    ----------
    rounds : int
        At most this many rounds.
    mode : {"finetune", "retrain"}
        Continue from each member's weights, or train new members (seeds apart) on the
        pseudo-labels.
    steps : int
        Optimiser steps per member per round.
    train_layers : {"all", "decoder"}
        With ``mode="finetune"``, what is fine-tuned: every layer, or the decoder and the
        head only (the encoder frozen: :func:`atomlens.elit.rounds.freeze_encoder`): a step
        of the bundled graphene members took 0.7× the time on one CPU thread.
    lr : float
        Peak learning rate (smaller than training from scratch when fine-tuning).
    batch_size, crop : int
        Crops per step and their side [px at the model's sampling].
    p_keep : float
        Share of members that must find an atom for it to be a pseudo-label.
    epistemic_max : float
        Pixels with more epistemic uncertainty [nats] are ignored by the loss.
    ignore_radius_A : float
        Radius of the ignored disk around a disputed candidate [Å].
    background_max : float or None
        Background is taught only where the ensemble's mean foreground probability is at
        most this; other pixels outside the pseudo-label disks are ignored (a weak response
        every member shares is ambiguous, not background). ``None`` (default): no such rule.
    holdout : float
        Share of frames held out for the guard, below 1 (at least one when there are ≥ 2
        frames, and never all of them).
    nn_tolerance : float
        A nearest-neighbour distance is plausible within this relative tolerance of one of
        the material's.
    max_implausible_rise : float
        Undo a round that raises the share of hold-out consensus atoms with an implausible
        nearest neighbour by more than this plus two standard errors of the share.
    max_change : float
        Undo a round whose consensus on the training frames differs from the previous by
        more than this (1 − F1).
    stop_f1 : float
        Stop when consecutive consensuses agree this well (F1); above 1, never stop early.
    simulated_share : float
        Share of every batch drawn from simulated images with exact labels: an anchor that
        the pseudo-labels cannot pull away from the truth. 0 (default) trains on the frames
        only; 1 on simulated images only (no pseudo-labels; the data then do not change
        between rounds, so the rounds continue one cosine learning-rate decay instead of
        restarting it). What is simulated: see ``adapt(simulated=…)``.
    simulated_background : {"simulated", "frames"}
        Where the simulated share's background and noise come from. ``"simulated"``: the
        simulation's own (film, shot noise). ``"frames"``: the frames' own aperiodic part
        (film, contamination, noise; separated from the lattice by Bragg filtering, see
        :class:`atomlens.elit.sources.FrameStyledSource`) added to noise-free simulations,
        so the exact labels come with the new data's look. Needs frames of a crystal of the
        model's material.
    pixel_noise : {"borrowed", "modelled"}
        With ``simulated_background="frames"``, the pixel noise of the styled images.
        ``"borrowed"``: the frames' own noise, in the crops of their aperiodic part.
        ``"modelled"`` (default): the crops carry the frames' film only, and noise is drawn
        for each simulated image from a Poisson–Gaussian model fitted to the frames
        (:func:`atomlens.elit.style.fit_pixel_noise`), so that it follows the simulated
        atoms as shot noise does (borrowed noise follows the frame's atoms, elsewhere).
        Borrowed noise keeps what the model does not: scan-line noise, detector afterglow.
    match_blur : bool
        With ``simulated_background="frames"``, blur the simulated images as much more as
        the frames' lattice is blurred than the simulation's (from the decay of their Bragg
        shells, :func:`atomlens.elit.style.extra_blur`): a wider or aberrated probe.
        On by default; it is 0 for frames as sharp as the simulation.
    match_sampling : bool
        With ``simulated_background="frames"``, simulate at the frames' own pixel size,
        read off their lattice (:func:`atomlens.fourier.relative_sampling`), instead
        of across the training range of pixel sizes: the members then need not accept
        every lattice spacing in that range, and take fewer film blobs for atoms. On by
        default; a stated pixel size more than 3 % off the frames' lattice is logged.
    film : {"estimated", "drawn"}
        With ``simulated_background="frames"`` and modelled noise, the film of the styled
        images. ``"estimated"`` (default): crops of the frames' own film as the Wiener
        filter estimates it; it keeps whatever the film is made of but loses its sharpest
        speckle. ``"drawn"``: a new film of random carbon atoms for every image, imaged as
        the simulation's columns are, at the thickness that explains the power spectrum of
        the frames' background (:func:`atomlens.elit.style.fit_film_thickness`); for
        an amorphous carbon film on a crystal whose contrast the simulation renders
        faithfully (where it gained and where it lost against ``"estimated"``:
        ``docs/elit.md``, "Measured"). A frame read as more than 100 Å of film keeps its
        estimate.
    calibration_images : int
        Every kept round's ensemble is calibrated (``p_real``, σ scale) on this many
        simulated images in the look of the held-out frames (of the training frames when
        none is held out or the held-out ones show no lattice), with their exact atoms
        (:func:`atomlens.elit.recalibrate.styled_validation`): the old calibration
        described the old members under the old conditions. When those images show too
        few false candidates to fit the logistic ``p_real``, the old one is carried over
        with its intercept refitted (``fit_calibration(prior=…)``), so that ``p_real``
        still tells atoms apart. 0, or frames that show no crystal lattice (with a
        warning), carry the old calibration over unchanged: it is never dropped.
    human_weight : int
        How much a frame with labels from a person (``adapt(human_labels=…)``: atoms marked
        false, atoms added) counts against frames with pseudo-labels only: it is drawn this
        many times as often for the training crops. Where a person labelled, their label
        replaces the pseudo-label and the ignore mask, whatever the weight.
    regions : bool
        Read every frame's regions once (:func:`atomlens.fourier.regions.region_map`:
        crystal, amorphous contamination, vacuum, saturated): pseudo-labels are drawn only
        from the crystal region, shrunk by ``region_margin_A`` (everything else is left out
        of the loss as unknown, not taught as "no atom"); sure atoms whose nearest
        neighbour is at a distance the material does not have are no labels; and the
        guard counts the consensus atoms outside the crystal on the held-out frames
        (``max_outside_rise``). On by default.
    region_margin_A : float
        Pseudo-labels keep this far inside the crystal region [Å] (its edge is only known
        to within the map's window).
    max_outside_rise : float
        Undo a round that raises the consensus atoms outside the crystal regions of the
        held-out frames by more than this per 1000 atoms inside them, plus two Poisson
        standard errors of the count.
    max_styled_drop : float
        Undo a round whose consensus F1 on the calibration images (simulated in the frames'
        look, atoms known: ``calibration_images``) falls by more than this plus
        ``styled_noise`` standard errors of the fall; above 1 never. Without calibration
        images the rule is off.
    styled_noise : float
        How many standard errors of that fall count as noise (paired over the images, which
        both rounds are scored on, from 3 images up; over their atoms below:
        :func:`atomlens.elit.guards.styled_allowance`). 0 (default): any fall undoes the
        round. A kept round that loses costs the frames accuracy and the next rounds learn
        from it; an undone round that would have gained costs only the gain. With 2, the
        rule before 2026-12-06, ``benchmarks/elit_contamination.py`` kept a round that lost
        F1 on its test frames (``docs/elit.md``, "The guard against
        confirming early errors").
    min_styled_gain : float
        Keep a round only when its styled F1 rises by at least this many standard errors
        of the change (paired over the images, :func:`atomlens.elit.guards.styled_change_se`),
        less the fall ``max_styled_drop`` and ``styled_noise`` allow. 1 (default): a rise
        within one error tells nothing of the sign, and the round is undone. On
        ``benchmarks/elit_contamination.py``'s second set of film frames a round raised the
        styled F1 by 0.0030 ± 0.0035 and lowered the test frames' F1 by 0.0052. In that
        benchmark's runs no round that raised the test frames' F1 had raised the styled F1
        at all, so the rule has cost no measured gain. 0: any round that does not lower it
        is kept (the earlier rule).
    first_member_guard : bool
        Where the members train one after the other (the CPU's default,
        :func:`atomlens.elit.rounds.train_members`): once the first member has trained,
        score it alone on the calibration images against its own previous weights (F1 per
        image, paired, as the guard scores the ensemble) and undo the round there, the
        other members untrained, when it falls by more than ``first_member_noise``
        standard errors of its change (``max_styled_drop`` is allowed too). A round that
        will be undone then costs about one member's training instead of all of them;
        ``benchmarks/elit_contamination.py`` measures how often this check undoes a round
        the whole ensemble's guard would have kept (the history's ``first_member_*``
        columns hold its figures, also when it is off). Without calibration images, with
        ``simulated_share=1``, with one member or with members trained together, it is not
        applied.
    first_member_noise : float
        How many standard errors of the first member's change of styled F1 count as noise
        for ``first_member_guard``. 2 (default): only a clear fall stops a round early; the
        ensemble's own rule (``min_styled_gain``) still judges every round that trains in
        full.
    first_member_min_gain : float or None
        With ``first_member_guard`` and at least 3 calibration images (a paired error),
        also stop the round when its first member's styled F1 rises by less than this many
        standard errors of its change (less ``max_styled_drop``): the ensemble's guard keeps
        a round only when the ensemble rises by ``min_styled_gain`` of its errors, and a
        first member that barely moves foretells a round that will be undone.
        ``benchmarks/elit_contamination.py``, nine film rounds trained whole (five sets of
        frames; 75 and 150 steps per member; every layer or the decoder only): the first
        members of the three rounds the ensemble's guard kept rose by 0.49, 0.64 and 1.24
        standard errors; those of the six it undid moved by +0.04, −0.17, −0.74, −1.19,
        −9.5 and −10.6 (the last two stopped by their fall already). 0.25 (default) stops
        the six after one member and none of the three. None: only a fall stops a round
        (``first_member_noise``), the rule before 2026-12-08.
    seed : int
        Seed of crops, augmentation and (retrain) initial weights.
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    """

    rounds: int = 3
    mode: Literal["finetune", "retrain"] = "finetune"
    steps: int = 150
    train_layers: Literal["all", "decoder"] = "all"
    lr: float = 1e-3
    batch_size: int = 8
    crop: int = 128
    p_keep: float = 0.99
    epistemic_max: float = 0.15
    ignore_radius_A: float = 0.8
    background_max: float | None = None
    holdout: float = 0.25
    nn_tolerance: float = 0.35
    max_implausible_rise: float = 0.02
    max_change: float = 0.25
    stop_f1: float = 0.995
    simulated_share: float = 0.0
    simulated_background: Literal["simulated", "frames"] = "simulated"
    pixel_noise: Literal["borrowed", "modelled"] = "modelled"
    match_blur: bool = True
    match_sampling: bool = True
    film: Literal["estimated", "drawn"] = "estimated"
    calibration_images: int = 12
    human_weight: int = 3
    regions: bool = True
    region_margin_A: float = 1.0
    max_outside_rise: float = 1.0
    max_styled_drop: float = 0.0
    styled_noise: float = 0.0
    min_styled_gain: float = 1.0
    first_member_guard: bool = True
    first_member_noise: float = 2.0
    first_member_min_gain: float | None = 0.25
    seed: int = 0
    device: str = "auto"

    def simulated_summary(self) -> str:
        """The simulated share's settings in words, e.g. "simulated share 1.0 with frames
        background and modelled noise, blur and sampling matched"."""
        text = f"simulated share {self.simulated_share} with {self.simulated_background} background"
        if self.simulated_background == "frames":
            on = {"blur": self.match_blur, "sampling": self.match_sampling}
            matched = [w for w, v in on.items() if v]
            text += f" and {self.pixel_noise} noise" + (
                f", {' and '.join(matched)} matched" if matched else ""
            )
            if self.pixel_noise == "modelled":
                text += f", {self.film} film"
        return text

    def __post_init__(self) -> None:
        if self.mode not in ("finetune", "retrain"):
            raise ValueError(f"mode must be 'finetune' or 'retrain', got {self.mode!r}.")
        if not (isinstance(self.rounds, int) and self.rounds >= 1):
            raise ValueError(f"rounds must be an int ≥ 1, got {self.rounds!r}.")
        if not 0 <= self.simulated_share <= 1:
            raise ValueError(
                f"simulated_share must be within [0, 1], got {self.simulated_share!r}."
            )
        if self.simulated_background not in ("simulated", "frames"):
            raise ValueError(
                "simulated_background must be 'simulated' or 'frames', got "
                f"{self.simulated_background!r}."
            )
        if self.train_layers not in ("all", "decoder"):
            raise ValueError(
                f"`train_layers` must be 'all' or 'decoder', got {self.train_layers!r}."
            )
        if self.pixel_noise not in ("borrowed", "modelled"):
            raise ValueError(
                f"pixel_noise must be 'borrowed' or 'modelled', got {self.pixel_noise!r}."
            )
        if self.film not in ("drawn", "estimated"):
            raise ValueError(f"film must be 'drawn' or 'estimated', got {self.film!r}.")
        if self.background_max is not None and not 0 < self.background_max < 1:
            raise ValueError(
                f"background_max must be within (0, 1) or None, got {self.background_max!r}."
            )
        if not 0 < self.p_keep <= 1:
            raise ValueError(f"p_keep must be within (0, 1], got {self.p_keep!r}.")
        if not (isinstance(self.calibration_images, int) and self.calibration_images >= 0):
            raise ValueError(
                f"calibration_images must be an int ≥ 0, got {self.calibration_images!r}."
            )
        for name in ("steps", "batch_size", "crop", "human_weight"):
            v = getattr(self, name)
            if not (isinstance(v, numbers.Integral) and v >= 1):
                raise ValueError(f"{name} must be an int ≥ 1, got {v!r}.")
        if not (isinstance(self.region_margin_A, numbers.Real) and self.region_margin_A >= 0):
            raise ValueError(f"region_margin_A must be a number ≥ 0, got {self.region_margin_A!r}.")
        positive = ("lr", "epistemic_max", "ignore_radius_A", "nn_tolerance")
        for name in positive:
            v = getattr(self, name)
            if not (isinstance(v, numbers.Real) and v > 0):
                raise ValueError(f"{name} must be a number > 0, got {v!r}.")
        if not (isinstance(self.holdout, numbers.Real) and 0 <= self.holdout < 1):
            raise ValueError(f"holdout must be within [0, 1), got {self.holdout!r}.")
        # above 1 they switch their rule off (never stop early, never undo a round)
        for name in (
            "max_implausible_rise",
            "max_change",
            "stop_f1",
            "max_outside_rise",
            "max_styled_drop",
            "styled_noise",
            "min_styled_gain",
            "first_member_noise",
        ):
            v = getattr(self, name)
            if not (isinstance(v, numbers.Real) and v >= 0):
                raise ValueError(f"{name} must be a number ≥ 0, got {v!r}.")
        g = self.first_member_min_gain
        if g is not None and not (isinstance(g, numbers.Real) and math.isfinite(g) and g >= 0):
            raise ValueError(
                f"first_member_min_gain must be a number ≥ 0 (standard errors), or None to "
                f"switch the rule off, got {g!r}."
            )
