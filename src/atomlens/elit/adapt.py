"""Adapt an ensemble to new frames without labels: iterative training on its own confident
atoms (the "iterative training" of ELIT).

Each round:

1. the ensemble finds atoms on every frame;
2. **pseudo-labels**: the atoms every member found (``p_detect ≥ p_keep``) become label
   disks; **ignored**: disks around the candidates only some members found, and pixels
   whose epistemic uncertainty exceeds ``epistemic_max`` — they teach nothing reliable and
   could teach errors, so the loss does not see them (target channels all zero);
3. every member is fine-tuned (or retrained from a new seed) on crops of the training
   frames with those masks, with the usual augmentation;
4. the round is checked on **held-out frames** (never trained on): if more of the
   consensus atoms there have an implausible nearest neighbour (closer or further than
   ``nn_tolerance`` × any nearest-neighbour distance of the material the model was trained
   for, from a noise-free simulation), the round is undone and adaptation stops. A share of
   implausible atoms, not a distance between distributions, because position noise at low
   dose widens the distribution without any atom being wrong, whereas invented atoms
   between columns and merged neighbours are exactly the errors self-training amplifies;
5. adaptation stops when the consensus on the training frames stops changing (F1 between
   consecutive rounds ≥ ``stop_f1``), and a round that would change it by more than
   ``max_change`` is not accepted (a cap on how far one round can move the labels).

The guards answer the known failure of self-training, confirmation of early errors: the
ignore mask keeps disputed sites out of the labels, the hold-out frames measure the effect
on data the round did not see, and physical plausibility is a check the pseudo-labels
cannot satisfy by agreeing with themselves.

What no guard can fix is an error every member shares (an amorphous film, a much wider
probe): the pseudo-labels carry it. ``simulated_share`` mixes simulated images with exact
labels into every batch; with ``simulated_background="frames"`` they carry the frames' own
background and noise (:mod:`atomlens.elit.restyle`), and with ``simulated_share=1`` the
members learn from those alone. There are then no pseudo-labels and no guard is applied.
"""

from __future__ import annotations

import copy
import logging
import numbers
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from atomlens._shared.config import json_default
from atomlens.elit.recalibrate import styled_validation
from atomlens.elit.select import _nn, _reference_nns
from atomlens.elit.sources import MixedSource, simulated_source
from atomlens.ensemble import Ensemble, Model, as_ensemble
from atomlens.inference import resample
from atomlens.metrics import match_points
from atomlens.nn import UNet
from atomlens.pipeline import find
from atomlens.simulate.labels import render_masks
from atomlens.train import PairSource, TrainConfig, Trainer, fit_calibration
from atomlens.train.trainer import lr_factor

__all__ = ["AdaptConfig", "AdaptResult", "adapt", "pseudo_labels"]

logger = logging.getLogger(__name__)


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
        :mod:`atomlens.elit.restyle`) added to noise-free simulations, so the exact labels
        come with the new data's look. Needs frames of a crystal of the model's material.
    pixel_noise : {"borrowed", "modelled"}
        With ``simulated_background="frames"``, the pixel noise of the styled images.
        ``"borrowed"``: the frames' own noise, in the crops of their aperiodic part.
        ``"modelled"`` (default): the crops carry the frames' film only, and noise is drawn
        for each simulated image from a Poisson–Gaussian model fitted to the frames
        (:func:`atomlens.elit.restyle.fit_pixel_noise`), so that it follows the simulated
        atoms as shot noise does (borrowed noise follows the frame's atoms, elsewhere).
        Borrowed noise keeps what the model does not: scan-line noise, detector afterglow.
    match_blur : bool
        With ``simulated_background="frames"``, blur the simulated images as much more as
        the frames' lattice is blurred than the simulation's (from the decay of their Bragg
        shells, :func:`atomlens.elit.restyle.extra_blur`): a wider or aberrated probe.
        On by default; it is 0 for frames as sharp as the simulation.
    match_sampling : bool
        With ``simulated_background="frames"``, simulate at the frames' own pixel size,
        read off their lattice (:func:`atomlens.elit.restyle.relative_sampling`), instead
        of across the training range of pixel sizes: the members then need not accept
        every lattice spacing in that range, and take fewer film blobs for atoms. On by
        default; a stated pixel size more than 3 % off the frames' lattice is logged.
    film : {"estimated", "drawn"}
        With ``simulated_background="frames"`` and modelled noise, the film of the styled
        images. ``"estimated"`` (default): crops of the frames' own film as the Wiener
        filter estimates it; it keeps whatever the film is made of but loses its sharpest
        speckle. ``"drawn"``: a new film of random carbon atoms for every image, imaged as
        the simulation's columns are, at the thickness that explains the power spectrum of
        the frames' background (:func:`atomlens.elit.restyle.fit_film_thickness`); for
        an amorphous carbon film on a crystal whose contrast the simulation renders
        faithfully (it gained under an 8 Å film and lost under a 20 Å one and at 100×
        lower dose; see the ELIT docs). A frame read as more than 100 Å of film keeps its
        estimate.
    calibration_images : int
        Every kept round's ensemble is calibrated (``p_real``, σ scale) on this many
        simulated images in the look of the held-out frames (of the training frames when
        none is held out or the held-out ones show no lattice), with their exact atoms
        (:func:`atomlens.elit.recalibrate.styled_validation`): the old calibration
        described the old members under the old conditions. 0 drops the calibration
        instead; so does a set of frames that shows no crystal lattice (with a warning).
    seed : int
        Seed of crops, augmentation and (retrain) initial weights.
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    """

    rounds: int = 3
    mode: Literal["finetune", "retrain"] = "finetune"
    steps: int = 150
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
        for name in ("steps", "batch_size", "crop"):
            v = getattr(self, name)
            if not (isinstance(v, numbers.Integral) and v >= 1):
                raise ValueError(f"{name} must be an int ≥ 1, got {v!r}.")
        positive = ("lr", "epistemic_max", "ignore_radius_A", "nn_tolerance")
        for name in positive:
            v = getattr(self, name)
            if not (isinstance(v, numbers.Real) and v > 0):
                raise ValueError(f"{name} must be a number > 0, got {v!r}.")
        if not (isinstance(self.holdout, numbers.Real) and 0 <= self.holdout < 1):
            raise ValueError(f"holdout must be within [0, 1), got {self.holdout!r}.")
        # above 1 they switch their rule off (never stop early, never undo a round)
        for name in ("max_implausible_rise", "max_change", "stop_f1"):
            v = getattr(self, name)
            if not (isinstance(v, numbers.Real) and v >= 0):
                raise ValueError(f"{name} must be a number ≥ 0, got {v!r}.")


@dataclass
class AdaptResult:
    """What :func:`adapt` returns.

    Attributes
    ----------
    ensemble : Ensemble
        The adapted ensemble (provenance records the rounds and settings).
    history : pandas.DataFrame
        One row per round (0 = before adapting): pseudo-labels, ignored share of pixels,
        consensus atoms, F1 of the consensus against the previous round's, mean epistemic
        uncertainty of the training and hold-out frames, the hold-out nearest-neighbour
        share of implausible atoms, and whether the round was kept.
    validation : ValidationSet or None
        The simulated images in the frames' look, with their exact atoms, on which every
        kept round was calibrated (``AdaptConfig.calibration_images``); None when there
        were none. Also a labelled check of any other model in that look.
    """

    ensemble: Any
    history: pd.DataFrame
    validation: Any = None


def pseudo_labels(
    result: Any,
    /,
    *,
    n_classes: int,
    class_names: tuple[str, ...],
    config: AdaptConfig,
    label_radius_A: float = 0.5,
) -> tuple[np.ndarray, dict[str, float]]:
    """Label masks ``(K + 1, H, W)`` from one frame's :class:`FindResult`, zero where
    ignored, and counts.

    Parameters
    ----------
    result : FindResult
        :func:`atomlens.pipeline.finder.find` on the frame with ``p_min`` small (all candidates).
    n_classes : int
        K.
    class_names : tuple of str
        The model's classes.
    config : AdaptConfig
        Thresholds.
    label_radius_A : float
        Radius of the label disks [Å] (the model's ``label_radius_A``).
    """

    ps = result.pixel_size
    cand = pd.concat([result.atoms, result.rejected], ignore_index=True)
    shape = result.prediction.mean.shape[-2:]
    keep = cand["p_detect"].to_numpy(float) >= config.p_keep - 1e-9
    sure = cand[keep]
    idx = np.array([class_names.index(c) for c in sure["class"].astype(str)], dtype=int)
    lab_r = label_radius_A
    masks = render_masks(
        sure[["x_px", "y_px"]].to_numpy(float),
        class_index=idx,
        n_classes=n_classes,
        shape=shape,
        radius_px=lab_r / ps,
    ).astype(np.float32)
    ignore = result.prediction.mutual_information > config.epistemic_max
    disputed = cand[~keep][["x_px", "y_px"]].to_numpy(float)
    if len(disputed):
        yy, xx = np.indices(shape)
        r = config.ignore_radius_A / ps
        from scipy.spatial import cKDTree

        pix = np.column_stack([xx.ravel(), yy.ravel()])
        d, _ = cKDTree(disputed).query(pix, distance_upper_bound=r)
        ignore |= np.isfinite(d).reshape(shape)
    if config.background_max is not None:
        fg = 1.0 - result.prediction.mean[0]
        ignore |= (fg > config.background_max) & (masks[1:].sum(axis=0) == 0)
    masks[:, ignore] = 0.0
    return masks, {"pseudo": int(keep.sum()), "ignored": float(ignore.mean())}


def _round_schedule(cfg: AdaptConfig, rnd: int) -> tuple[float, int, float]:
    """Peak learning rate, warm-up steps and final/peak ratio of round ``rnd`` (1-based).

    With pseudo-labels each round learns from new labels and starts its own warm-up +
    cosine schedule. With simulated images only (``simulated_share=1``) the data do not
    change from round to round, so the rounds are segments of one cosine decay over all of
    them, as one training of ``rounds × steps`` would be (a short warm-up for each round's
    fresh optimiser state): restarting the schedule every round cost 0.015 F1 under an
    8 Å film (0.744 and 0.748 against 0.761 and 0.760, two seeds).
    """

    warm = min(20, cfg.steps // 5)
    if cfg.simulated_share < 1:
        return cfg.lr, warm, TrainConfig.min_lr_ratio
    # the trainer's own cosine over all rounds (no warm-up: each round has its own)
    whole = TrainConfig(steps=cfg.rounds * cfg.steps, warmup_steps=0)
    start = lr_factor((rnd - 1) * cfg.steps, whole)
    end = lr_factor(rnd * cfg.steps, whole)
    return float(cfg.lr * start), warm if rnd == 1 else min(5, warm), float(end / start)


def _consensus_change(a: pd.DataFrame, b: pd.DataFrame, ps: float) -> float:

    if len(a) + len(b) == 0:
        return 1.0
    m = match_points(
        a[["x_px", "y_px"]].to_numpy(float), b[["x_px", "y_px"]].to_numpy(float), radius=0.5 / ps
    )
    return 2 * len(m.pred_index) / (len(a) + len(b))


def _implausible_share(atoms_list: list[pd.DataFrame], ref_nn: np.ndarray, tol: float) -> float:
    """Share of atoms whose nearest-neighbour distance is not within ``tol`` (relative) of
    any of the material's."""

    nn = np.concatenate(
        [_nn(a[["x_A", "y_A"]].to_numpy(float)) for a in atoms_list] or [np.zeros(0)]
    )
    if not len(nn) or not len(ref_nn):
        return float("nan")
    modes = np.unique(np.round(ref_nn, 2))
    rel = np.min(np.abs(nn[:, None] / modes[None, :] - 1.0), axis=1)
    return float(np.mean(rel > tol))


class _Checkpoint:
    """Finished rounds of one :func:`adapt` run on disk: ``state.json`` (what the run is,
    the history, the round whose ensemble is kept) and ``round{k}/`` (that ensemble).
    The ensemble is written first and the state last, each atomically, so an interruption
    leaves the previous round's state valid."""

    def __init__(
        self, path: str | Path, ens: Any, frames: list[np.ndarray], ps: float, cfg: AdaptConfig
    ) -> None:
        import hashlib
        import json

        self.path = Path(path)
        h = hashlib.sha256()
        for f in frames:
            h.update(np.ascontiguousarray(f, dtype=np.float32).tobytes())
        for net in ens.networks:
            for v in net.state_dict().values():
                h.update(v.detach().cpu().numpy().tobytes())
        h.update(json.dumps([ps, asdict(cfg)], sort_keys=True, default=str).encode())
        self.fingerprint = h.hexdigest()
        self.kept_round: int | None = None  # the round whose ensemble is on disk

    def load(self) -> tuple[Any, list[dict[str, Any]], bool] | None:
        """``(ensemble of the last kept round or None, history, finished)``, or None when
        nothing was saved yet."""
        import json

        state_file = self.path / "state.json"
        if not state_file.exists():
            if self.path.exists() and any(self.path.iterdir()):
                raise ValueError(
                    f"checkpoint {self.path} is not empty and holds no adapt state; give an "
                    "empty or new directory."
                )
            return None
        state = json.loads(state_file.read_text())
        if state.get("fingerprint") != self.fingerprint:
            raise ValueError(
                f"checkpoint {self.path} belongs to another adaptation (other ensemble, frames, "
                "pixel size or settings); remove it to start over, or give another directory "
                "(atomlens adapt: another --out)."
            )
        history = [
            {k: (np.nan if v is None else v) for k, v in row.items()} for row in state["history"]
        ]
        self.kept_round = state.get("ensemble_round")
        ens = Ensemble.load(self.path / f"round{self.kept_round}") if self.kept_round else None
        return ens, history, bool(state.get("done"))

    def save(self, ens: Any, history: list[dict[str, Any]], *, done: bool) -> None:
        """Keep ``ens`` (None: keep the previous round's) and the history."""
        import json
        import os

        self.path.mkdir(parents=True, exist_ok=True)
        state_file = self.path / "state.json"
        prev = self.kept_round
        rnd = int(history[-1]["round"]) if ens is not None else prev
        if ens is not None:
            ens.save(self.path / f"round{rnd}", overwrite=True)
        state = {
            "fingerprint": self.fingerprint,
            "ensemble_round": rnd,
            "done": done,
            "history": _history_records(pd.DataFrame(history)),
        }
        tmp = state_file.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(state, indent=1, default=json_default))
        os.replace(tmp, state_file)
        self.kept_round = rnd
        if prev and prev != rnd:  # the older round's ensemble is no longer needed
            import shutil

            shutil.rmtree(self.path / f"round{prev}", ignore_errors=True)


def _styled_record(styled: Any) -> dict[str, Any]:
    """What the frame-styled simulation read off the frames (for the provenance)."""
    d = styled.describe()
    keys = (
        "frames",
        "pixel_noise",
        "noise_models",
        "film",
        "film_thickness_A",
        "extra_blur_px",
        "sampling",
        "pixel_size_A",
    )
    return {k: d[k] for k in keys}


def _calibration_set(
    ens: Any,
    sets: list[tuple[str, list[np.ndarray]]],
    pixel_size: float,
    cfg: AdaptConfig,
    simulated: Any,
) -> tuple[Any, str] | tuple[None, None]:
    """Styled validation images for the adapted rounds' calibration, after the first of
    ``sets`` (``(name, frames)``) that shows a lattice; ``(None, None)`` when none does."""

    why = "no frames"
    for name, fs in sets:
        if not fs:
            continue
        try:
            val = styled_validation(
                ens,
                fs,
                pixel_size=pixel_size,
                images=cfg.calibration_images,
                seed=cfg.seed + 7919,
                simulated=simulated,
                pixel_noise=cfg.pixel_noise,
                match_blur=cfg.match_blur,
                match_sampling=cfg.match_sampling,
                film=cfg.film,
            )
            return val, name
        except ValueError as err:
            why = f"{name}: {err}"
    logger.warning(
        "adapt: the adapted ensemble cannot be recalibrated for the frames (%s); it has no "
        "calibration and find() reports no p_real with it",
        why,
    )
    return None, None


def _history_records(history: pd.DataFrame) -> list[dict[str, Any]]:
    """The history as JSON-ready records (NaN → None)."""
    return [
        {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in row.items()}
        for row in history.astype(object).to_dict("records")
    ]


def adapt(
    ensemble: Any,
    frames: list[np.ndarray] | np.ndarray,
    /,
    *,
    pixel_size: float,
    config: AdaptConfig | None = None,
    progress: bool = False,
    on_round: Callable[[int, Any, bool], None] | None = None,
    simulated: Any = None,
    checkpoint: str | Path | None = None,
) -> AdaptResult:
    """Adapt an ensemble to unlabeled frames by iterative training on its own confident
    atoms (see the module notes for the rounds and the guards).

    Parameters
    ----------
    ensemble : Ensemble or path
        The ensemble (not modified; a new one is returned).
    frames : list of ndarray (H, W), or ndarray (N, H, W)
        Frames of the new conditions, at one sampling.
    pixel_size : float
        [Å/px].
    config : AdaptConfig, optional
        Settings.
    progress : bool
        Progress bars of the training runs.
    on_round : callable, optional
        Called after each round with ``(round, candidate ensemble, kept)``, e.g. to score
        every round on labelled data in a benchmark.
    simulated : ConditionRanges, optional
        Conditions of the simulated share of each batch (``config.simulated_share``). By
        default those the model was trained on, from its provenance (``"simulation"``,
        recorded by :func:`atomlens.train.recipe.train_model` and ``train_ensemble``). Models
        trained before it was recorded fall back to their materials at their sampling with
        the training recipe's default ranges (:func:`atomlens.train.recipe.make_ranges`:
        doses 5·10³–10⁶ e⁻/Å², films up to 4 Å, …), which can be broader than what the
        model saw; a warning says so.
    checkpoint : str or Path, optional
        Directory where every finished round is kept (the ensemble, safetensors + JSON, and
        the history). Run again with the same ensemble, frames, pixel size and settings,
        ``adapt`` resumes after the last finished round instead of starting over; with
        anything else it refuses the directory. Nothing is written when omitted.

    Returns
    -------
    AdaptResult
    """
    import torch

    cfg = config or AdaptConfig()
    ens = as_ensemble(ensemble)
    c = ens.config
    frames = [np.asarray(f, dtype=np.float32) for f in frames]
    if not frames:
        raise ValueError("adapt needs at least one frame.")
    # at least one frame held out, and at least one left to train on
    n_hold = (
        0 if len(frames) < 2 else min(max(1, round(cfg.holdout * len(frames))), len(frames) - 1)
    )
    hold = frames[len(frames) - n_hold :] if n_hold else []
    train = frames[: len(frames) - n_hold]
    refs = _reference_nns(c)
    ref_nn = np.concatenate(refs) if refs else np.zeros(0)
    side = min(min(f.shape) for f in train) * pixel_size / c.pixel_size_A
    crop = int(min(cfg.crop, side // 8 * 8))
    if crop < 32:
        raise ValueError(
            f"the frames are {side:.0f} px at the model's sampling; adapt needs at least 32."
        )

    def run(e: Any, fs: list[np.ndarray]) -> list[Any]:
        out = []
        for f in fs:
            r = find(f, model=e, pixel_size=pixel_size, p_min=1e-6, calibrated=False)
            out.append(r)
        return out

    def accepted_atoms(results: list[Any]) -> list[pd.DataFrame]:
        return [r.atoms[r.atoms["p_detect"] >= 0.5] for r in results]

    def measures(rt: list[Any], rh: list[Any]) -> dict[str, Any]:
        """What the history records of a state: consensus atoms, epistemic uncertainty on
        training and hold-out frames, implausible hold-out atoms (and how many there are)."""
        hold_atoms = accepted_atoms(rh)
        return {
            "consensus_atoms": sum(len(a) for a in accepted_atoms(rt)),
            "epistemic_train": float(np.mean([r.prediction.mutual_information.mean() for r in rt])),
            "epistemic_holdout": float(
                np.mean([r.prediction.mutual_information.mean() for r in rh])
            )
            if rh
            else np.nan,
            "holdout_implausible": _implausible_share(hold_atoms, ref_nn, cfg.nn_tolerance)
            if rh
            else np.nan,
            "n_holdout": sum(len(a) for a in hold_atoms),
        }

    # with simulated images only there are no pseudo-labels: the rounds are fine-tuning on
    # exact labels and the guards against self-training drift do not apply
    self_training = cfg.simulated_share < 1
    current, first = ens, 1
    ckpt = _Checkpoint(checkpoint, ens, frames, pixel_size, cfg) if checkpoint else None
    saved = ckpt.load() if ckpt is not None else None
    if saved is not None:
        saved_ens, hist, done = saved
        logger.info("adapt: resuming after round %d from %s", hist[-1]["round"], ckpt.path)
        current = saved_ens if saved_ens is not None else ens
        first = cfg.rounds + 1 if done else int(hist[-1]["round"]) + 1
    if first <= cfg.rounds:  # the next round's pseudo-labels come from these
        res_train, res_hold = run(current, train), run(current, hold)
    if saved is None:
        m0 = measures(res_train, res_hold)
        hist = [
            {
                "round": 0,
                "pseudo_labels": np.nan,
                "ignored_share": np.nan,
                "consensus_atoms": m0["consensus_atoms"],
                "consensus_f1_vs_previous": np.nan,
                "epistemic_train": m0["epistemic_train"],
                "epistemic_holdout": m0["epistemic_holdout"],
                "holdout_implausible": m0["holdout_implausible"],
                "kept": True,
            }
        ]
    styled = look = None  # the frames' background is split once; each round reseeds the stream
    if first <= cfg.rounds and cfg.simulated_share > 0 and cfg.simulated_background == "frames":
        at_model = [resample(f, factor=pixel_size / c.pixel_size_A) for f in train]
        styled = simulated_source(
            c,
            simulated,
            crop,
            cfg.seed + 1000 * first,
            at_model,
            cfg.pixel_noise,
            cfg.match_blur,
            cfg.match_sampling,
            cfg.film,
        )
        look = _styled_record(styled)
        logger.info(
            "adapt: %d frame(s) lend their look; extra blur %s px; %s film %s Å; noise "
            "models %s; simulated at %s Å/px (the frames' sampling over the model's: %s)",
            look["frames"],
            look["extra_blur_px"],
            look["film"],
            look["film_thickness_A"] or "-",
            look["noise_models"] or "borrowed",
            look["pixel_size_A"],
            look["sampling"],
        )
    cal_set = cal_from = None  # styled images on which every kept round is calibrated
    if cfg.calibration_images > 0:
        cal_set, cal_from = _calibration_set(
            ens,
            [("held-out frames", hold), ("training frames", train)],
            pixel_size,
            cfg,
            simulated,
        )
    with tempfile.TemporaryDirectory(prefix="atomlens-adapt-") as tmp:
        for rnd in range(first, cfg.rounds + 1):
            labels, n_pseudo, ignored = [], 0, []
            if self_training:
                for r in res_train:
                    m, info = pseudo_labels(
                        r,
                        n_classes=len(c.class_names),
                        class_names=tuple(c.class_names),
                        config=cfg,
                        label_radius_A=c.label_radius_A,
                    )
                    labels.append(m)
                    n_pseudo += info["pseudo"]
                    ignored.append(info["ignored"])
            else:  # simulated images only: no pseudo-labels to make
                k1 = len(c.class_names) + 1
                labels = [np.zeros((k1, *f.shape), dtype=np.float32) for f in train]
                n_pseudo, ignored = np.nan, [np.nan]
            source = PairSource(
                train,
                labels,
                pixel_size=pixel_size,
                model_pixel_size=c.pixel_size_A,
                class_names=c.class_names,
                crop=crop,
                seed=cfg.seed + 1000 * rnd,
            )
            if cfg.simulated_share > 0:
                source = MixedSource(
                    source,
                    styled.reseeded(cfg.seed + 1000 * rnd)
                    if styled is not None
                    else simulated_source(c, simulated, crop, cfg.seed + 1000 * rnd),
                    share=cfg.simulated_share,
                )
            nets = []
            peak, warm, ratio = _round_schedule(cfg, rnd)
            for i in range(len(current)):
                tc = TrainConfig(
                    steps=cfg.steps,
                    batch_size=cfg.batch_size,
                    lr=peak,
                    warmup_steps=warm,
                    min_lr_ratio=ratio,
                    val_every=cfg.steps,
                    seed=cfg.seed + 1000 * i + 17 * rnd,
                    device=cfg.device,
                )
                if cfg.mode == "finetune":
                    net = copy.deepcopy(current.networks[i]).cpu()
                else:
                    torch.manual_seed(tc.seed)
                    net = UNet(c.architecture)
                trainer = Trainer(
                    Model(net, c),
                    tc,
                    source,
                    out=Path(tmp) / f"round{rnd}" / f"member{i}",
                    progress=progress,
                )
                nets.append(trainer.fit().model.network.eval())
            candidate = Ensemble(nets, c, current.member_provenance)
            new_train = run(candidate, train)
            new_hold = run(candidate, hold)
            change = float(
                np.mean(
                    [
                        _consensus_change(a, b, pixel_size)
                        for a, b in zip(
                            accepted_atoms(new_train), accepted_atoms(res_train), strict=True
                        )
                    ]
                )
            )
            now = measures(new_train, new_hold)
            drift = now["holdout_implausible"]
            prev_drift = hist[-1]["holdout_implausible"]  # the last round, which was kept
            # the share is a count over a few hundred atoms: a rise within two standard
            # errors of it is noise, not drift
            n_hold = max(now["n_holdout"], 1)
            allowed = cfg.max_implausible_rise + 2 * np.sqrt(
                max(prev_drift, 0.01) * (1 - min(prev_drift, 0.99)) / n_hold
            )
            kept = True
            why = ""
            if not self_training:
                pass  # exact labels only: no early errors to confirm, nothing to guard
            elif np.isfinite(drift) and np.isfinite(prev_drift) and drift > prev_drift + allowed:
                kept, why = (
                    False,
                    f"implausible hold-out atoms rose from {prev_drift:.3f} to {drift:.3f} "
                    f"(allowed +{allowed:.3f})",
                )
            elif 1 - change > cfg.max_change:
                kept, why = False, f"consensus changed by {1 - change:.2f} > {cfg.max_change}"
            hist.append(
                {
                    "round": rnd,
                    "pseudo_labels": n_pseudo,
                    "ignored_share": float(np.mean(ignored)),
                    "consensus_atoms": now["consensus_atoms"],
                    "consensus_f1_vs_previous": change,
                    "epistemic_train": now["epistemic_train"],
                    "epistemic_holdout": now["epistemic_holdout"],
                    "holdout_implausible": drift,
                    "kept": kept,
                }
            )
            logger.info("ELIT round %d: %s", rnd, hist[-1])
            if kept and cal_set is not None:
                candidate.calibration = fit_calibration(
                    candidate, cal_set.images, cal_set.truths, cal_set.pixel_sizes
                )
            if on_round is not None:
                on_round(rnd, candidate, kept)
            if not kept:
                logger.warning("ELIT round %d undone: %s", rnd, why)
                if ckpt is not None:
                    ckpt.save(None, hist, done=True)
                break
            current, res_train, res_hold = candidate, new_train, new_hold
            stable = change >= cfg.stop_f1
            if ckpt is not None:
                ckpt.save(current, hist, done=stable or rnd == cfg.rounds)
            if stable:
                logger.info("ELIT: consensus stable (F1 %.4f); stopping", change)
                break
    history = pd.DataFrame(hist)
    if current is not ens:
        rounds_kept = int(history["kept"].iloc[1:].sum())
        current.config = replace(
            c,
            provenance={
                **dict(c.provenance),
                "elit": {
                    "rounds": rounds_kept,
                    "config": asdict(cfg),
                    "frames": len(frames),
                    "history": _history_records(history),
                    **({"styled": look} if look is not None else {}),
                    **(
                        {
                            "calibration": {
                                "images": cfg.calibration_images,
                                "styled_after": cal_from,
                            }
                        }
                        if current.calibration is not None
                        else {}
                    ),
                },
            },
        )
    return AdaptResult(current, history, cal_set)
