"""What one round of :func:`atomlens.elit.adapt.adapt` trains, and how: the training frames
with their pseudo-labels (mixed with simulated images with exact labels when
``simulated_share > 0``), the round's learning-rate schedule, and the members' training
(together in one batched pass per step on a GPU, as ``train --members`` trains them; see
:func:`train_members`)."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from atomlens._shared.device import resolve_device
from atomlens.elit.config import AdaptConfig
from atomlens.elit.pseudo_labels import apply_human_labels, pseudo_labels
from atomlens.elit.sources import MixedSource, simulated_source
from atomlens.ensemble import Ensemble, Model
from atomlens.inference import resample
from atomlens.nn import UNet
from atomlens.train import PairSource, TrainConfig, Trainer
from atomlens.train.recipe import TrainingSetup
from atomlens.train.together import together_matches_alone, train_together
from atomlens.train.trainer import lr_factor

__all__ = ["freeze_encoder", "round_schedule", "styled_source", "train_members", "train_round"]

logger = logging.getLogger(__name__)


def round_schedule(config: AdaptConfig, rnd: int) -> tuple[float, int, float]:
    """Peak learning rate, warm-up steps and final/peak ratio of round ``rnd`` (1-based).

    With pseudo-labels each round learns from new labels and starts its own warm-up +
    cosine schedule. With simulated images only (``simulated_share=1``) the data do not
    change from round to round, so the rounds are segments of one cosine decay over all of
    them, as one training of ``rounds × steps`` would be (a short warm-up for each round's
    fresh optimiser state). What restarting the schedule every round cost instead:
    ``docs/elit.md``, "Errors every member shares", item 6.
    """

    cfg = config
    warm = min(20, cfg.steps // 5)
    if cfg.simulated_share < 1:
        return cfg.lr, warm, TrainConfig.min_lr_ratio
    # the trainer's own cosine over all rounds (no warm-up: each round has its own)
    whole = TrainConfig(steps=cfg.rounds * cfg.steps, warmup_steps=0)
    start = lr_factor((rnd - 1) * cfg.steps, whole)
    end = lr_factor(rnd * cfg.steps, whole)
    return float(cfg.lr * start), warm if rnd == 1 else min(5, warm), float(end / start)


def styled_source(
    frames: list[np.ndarray],
    *,
    config: AdaptConfig,
    model_config: Any,
    pixel_size: float,
    crop: int,
    seed: int,
    simulated: Any,
) -> tuple[Any, dict[str, Any]]:
    """The simulated share's images in the look of the training ``frames``
    (``simulated_background="frames"``): their source (split from the frames once; each
    round reseeds it) and what it read off the frames, for the provenance."""
    c = model_config
    at_model = [resample(f, factor=pixel_size / c.pixel_size_A) for f in frames]
    styled = simulated_source(
        c,
        simulated,
        crop,
        seed,
        at_model,
        config.pixel_noise,
        config.match_blur,
        config.match_sampling,
        config.film,
    )
    look = _styled_record(styled)
    # only a drawn film has a thickness: an estimated one is the frames' own background
    # (the log said "estimated film [0, 0, 0] Å" on frames under 10 Å of film)
    film = (
        f"drawn film {look['film_thickness_A']} Å"
        if look["film"] == "drawn"
        else f"{look['film']} film (the frames' own background, no thickness read)"
    )
    logger.info(
        "adapt: %d frame(s) lend their look; extra blur %s px; %s; noise "
        "models %s; simulated at %s Å/px (the frames' sampling over the model's: %s)",
        look["frames"],
        look["extra_blur_px"],
        film,
        look["noise_models"] or "borrowed",
        look["pixel_size_A"],
        look["sampling"],
    )
    return styled, look


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


def _labels(
    found: list[Any],
    frames: list[np.ndarray],
    config: AdaptConfig,
    model_config: Any,
    human: list[Any] | None = None,
    pixel_size: float | None = None,
    crystal: list[np.ndarray] | None = None,
    ref_nn: np.ndarray | None = None,
) -> tuple[list[np.ndarray], dict[str, Any]]:
    """The frames' label masks, and the history's ``pseudo_labels`` and ``ignored_share``.
    With simulated images only there are no pseudo-labels to make (the masks are empty).
    ``crystal`` (one mask per frame) and ``ref_nn``: where labels may be drawn and the
    material's nearest-neighbour distances (:func:`atomlens.elit.pseudo_labels.pseudo_labels`)."""
    c = model_config
    if config.simulated_share >= 1:
        k1 = len(c.class_names) + 1
        labels = [np.zeros((k1, *f.shape), dtype=np.float32) for f in frames]
        return labels, {"pseudo_labels": np.nan, "ignored_share": float("nan")}
    labels, n_pseudo, ignored = [], 0, []
    for i, r in enumerate(found):
        extra: dict[str, Any] = {}
        if crystal is not None:
            extra["crystal"] = crystal[i]
        if ref_nn is not None:
            extra["ref_nn"] = ref_nn
        m, info = pseudo_labels(
            r,
            n_classes=len(c.class_names),
            class_names=tuple(c.class_names),
            config=config,
            label_radius_A=c.label_radius_A,
            **extra,
        )
        labels.append(m)
        n_pseudo += info["pseudo"]
        ignored.append(info["ignored"])
    n_human = 0
    for i, marks in enumerate(human or []):
        if marks:
            labels[i], n = apply_human_labels(
                labels[i],
                marks,
                class_names=tuple(c.class_names),
                pixel_size=float(pixel_size if pixel_size is not None else found[i].pixel_size),
                label_radius_A=c.label_radius_A,
                ignore_radius_A=config.ignore_radius_A,
            )
            n_human += n
    counts = {"pseudo_labels": n_pseudo, "ignored_share": float(np.mean(ignored))}
    return labels, {**counts, "human_labels": n_human}


def _source(
    frames: list[np.ndarray],
    labels: list[np.ndarray],
    *,
    config: AdaptConfig,
    model_config: Any,
    pixel_size: float,
    crop: int,
    seed: int,
    styled: Any,
    simulated: Any,
) -> Any:
    """The round's batches: crops of the labelled frames, with ``simulated_share`` of every
    batch from simulated images (``styled`` ones when given)."""
    c = model_config
    source: Any = PairSource(
        frames,
        labels,
        pixel_size=pixel_size,
        model_pixel_size=c.pixel_size_A,
        class_names=c.class_names,
        crop=crop,
        seed=seed,
    )
    if config.simulated_share > 0:
        source = MixedSource(
            source,
            styled.reseeded(seed)
            if styled is not None
            else simulated_source(c, simulated, crop, seed),
            share=config.simulated_share,
        )
    return source


def train_members(
    ensemble: Any,
    source: Any,
    *,
    config: AdaptConfig,
    model_config: Any,
    rnd: int,
    out: Path,
    progress: bool = False,
    together: bool | None = None,
    first_check: Callable[[torch.nn.Module], bool] | None = None,
) -> list[torch.nn.Module] | None:
    """Every member fine-tuned (or retrained from a new seed) on ``source``.

    Parameters
    ----------
    ensemble : Ensemble
        The members to fine-tune (``mode="finetune"``) or to replace.
    source : BatchSource
        The round's batches, the same for every member (the augmentation differs).
    config : AdaptConfig
        Steps, batch size, learning rate, mode, seed and device; member ``i``'s seed is
        ``seed + 1000 i + 17 rnd``.
    model_config : ModelConfig
        The members' architecture, sampling and classes.
    rnd : int
        The round (1-based): its seeds and learning-rate schedule (:func:`round_schedule`).
    out : Path
        Scratch directory of the training runs.
    progress : bool
        Progress bars.
    together : bool, optional
        Train the members together, one batched forward and backward pass per step
        (:func:`atomlens.train.together.train_together`, as ``train --members`` does), or
        one after the other (:class:`atomlens.train.Trainer`): the same weights up to float
        rounding. By default together on a GPU and one after the other on the CPU, the rule
        of :func:`atomlens.train.train_ensemble` (batching was measured slower on the CPU:
        ``benchmarks/ensemble_speed.py``), and one after the other for an architecture that
        trains differently together (:func:`atomlens.train.together.together_matches_alone`).
    first_check : callable, optional
        Where the members train one after the other: called with the first member's
        trained network (in evaluation mode) before the others train; when it returns
        False the others are not trained and None is returned
        (``AdaptConfig.first_member_guard``). Not called when the members train together.

    Returns
    -------
    list of torch.nn.Module or None
        The trained networks, in evaluation mode; None when ``first_check`` stopped the
        round.
    """
    cfg, c = config, model_config
    peak, warm, ratio = round_schedule(cfg, rnd)
    setups = []
    for i in range(len(ensemble)):
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
            net = copy.deepcopy(ensemble.networks[i]).cpu()
            if cfg.train_layers == "decoder":
                freeze_encoder(net)
        else:
            torch.manual_seed(tc.seed)
            net = UNet(c.architecture)
        setups.append(TrainingSetup(Model(net, c), tc, source, None))
    outs = [out / f"member{i}" for i in range(len(setups))]
    if together is None:
        on_gpu = resolve_device(cfg.device).type == "cuda"
        together = on_gpu and together_matches_alone(c.architecture)
    if cfg.mode == "finetune" and cfg.train_layers == "decoder":
        together = False  # the batched members' stacked weights have no frozen part
    if together:
        results = train_together(setups, outs, checkpoint=out / "together", progress=progress)
    else:
        results = []
        for s, o in zip(setups, outs, strict=True):
            results.append(Trainer(s.model, s.config, s.data, out=o, progress=progress).fit())
            if first_check is not None and len(results) == 1 and len(setups) > 1:
                if not first_check(results[0].model.network.eval()):
                    return None
    nets = [r.model.network.eval() for r in results]
    for n in nets:
        n.requires_grad_(True)
    return nets


def freeze_encoder(net: torch.nn.Module) -> torch.nn.Module:
    """Freeze a U-Net's encoder (its ``down`` blocks and ``bottleneck``) in place: only the
    decoder and the head are fine-tuned. The backward pass then stops at the decoder (a
    step of the bundled graphene members took 0.7× the time on one CPU thread), and what
    the members learned of atoms in general stays as it was; the decoder re-learns how
    those features map to atoms under the new conditions."""
    for name, p in net.named_parameters():
        if name.startswith(("down.", "bottleneck.")):
            p.requires_grad_(False)
    return net


def train_round(
    ensemble: Any,
    frames: list[np.ndarray],
    found: list[Any],
    *,
    rnd: int,
    config: AdaptConfig,
    model_config: Any,
    pixel_size: float,
    crop: int,
    styled: Any,
    simulated: Any,
    out: Path,
    progress: bool = False,
    human: list[Any] | None = None,
    crystal: list[np.ndarray] | None = None,
    ref_nn: np.ndarray | None = None,
    first_check: Callable[[torch.nn.Module], bool] | None = None,
) -> tuple[Ensemble | None, dict[str, Any]]:
    """Round ``rnd``'s candidate ensemble, trained on the training ``frames``.

    Parameters
    ----------
    ensemble : Ensemble
        The last kept round's (round 0: the one being adapted).
    frames : list of ndarray (H, W)
        The training frames.
    found : list of FindResult
        ``ensemble``'s candidates on them (:func:`atomlens.elit.guards.find_candidates`):
        the pseudo-labels.
    rnd : int
        The round (1-based): it seeds the crops, the simulated images and the members.
    config : AdaptConfig
        The settings.
    model_config : ModelConfig
        The adapted ensemble's (classes, sampling, architecture).
    pixel_size : float
        The frames' [Å/px].
    crop : int
        Crop side [px at the model's sampling].
    styled : BatchSource or None
        :func:`styled_source`'s images, or None.
    simulated : ConditionRanges or None
        ``adapt(simulated=…)``.
    out : Path
        A scratch directory for the members' training runs.
    progress : bool
        Progress bars of the training runs.
    human : list of list of dict, optional
        Labels from a person per training frame (:func:`atomlens.elit.adapt.adapt`'s
        ``human_labels``): they replace the pseudo-labels where they are, and a labelled
        frame is drawn ``config.human_weight`` times as often.
    crystal : list of ndarray of bool (H, W), optional
        Where each training frame's pseudo-labels may be drawn (its crystal region); the
        rest is left out of the loss. None: everywhere.
    ref_nn : ndarray, optional
        The material's nearest-neighbour distances [Å]: sure atoms at other distances are
        no labels.
    first_check : callable, optional
        :func:`train_members`'s check of the first member (``AdaptConfig.first_member_guard``).

    Returns
    -------
    candidate : Ensemble or None
        None when ``first_check`` stopped the round after the first member.
    counts : dict
        The history's ``pseudo_labels`` and ``ignored_share`` of the round.
    """
    seed = config.seed + 1000 * rnd
    labels, counts = _labels(
        found, frames, config, model_config, human, pixel_size, crystal, ref_nn
    )
    if human and config.simulated_share < 1:
        # a labelled frame is drawn human_weight times as often (PairSource draws uniformly)
        extra = [i for i, h in enumerate(human) if h] * (config.human_weight - 1)
        frames = list(frames) + [frames[i] for i in extra]
        labels = labels + [labels[i] for i in extra]
    source = _source(
        frames,
        labels,
        config=config,
        model_config=model_config,
        pixel_size=pixel_size,
        crop=crop,
        seed=seed,
        styled=styled,
        simulated=simulated,
    )
    nets = train_members(
        ensemble,
        source,
        config=config,
        model_config=model_config,
        rnd=rnd,
        out=out / f"round{rnd}",
        progress=progress,
        first_check=first_check,
    )
    if nets is None:
        return None, counts
    return Ensemble(nets, model_config, ensemble.member_provenance), counts
