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
background and noise (:class:`atomlens.elit.sources.FrameStyledSource`), and with
``simulated_share=1`` the members learn from those alone. There are then no pseudo-labels
and no guard is applied.

This module is the loop over the rounds; the steps are in :mod:`atomlens.elit.pseudo_labels`
(2), :mod:`atomlens.elit.rounds` (3: data, schedule, the members' training),
:mod:`atomlens.elit.guards` (4 and 5) and :mod:`atomlens.elit.checkpoint` (finished rounds
on disk, to resume), the settings in :mod:`atomlens.elit.config`.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from atomlens.elit.checkpoint import AdaptCheckpoint, history_records
from atomlens.elit.config import AdaptConfig
from atomlens.elit.guards import (
    consensus_f1,
    find_candidates,
    first_member_verdict,
    judge_round,
    material_nn_distances,
    mean_f1,
    measure,
    styled_candidates,
    styled_change_se,
    styled_f1_by_image,
)
from atomlens.elit.pseudo_labels import pseudo_labels
from atomlens.elit.recalibrate import styled_validation
from atomlens.elit.rounds import styled_source, train_round
from atomlens.ensemble import Ensemble, as_ensemble
from atomlens.train import fit_calibration

__all__ = ["AdaptConfig", "AdaptResult", "adapt", "pseudo_labels"]

logger = logging.getLogger(__name__)


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
        share of implausible atoms, the hold-out atoms outside the crystal per 1000 inside,
        the F1 of the consensus on the calibration images (``styled_f1``: simulated in the
        frames' look, atoms known; NaN without them) with the standard error of its change
        from the last kept round (``styled_f1_se``, paired over the images:
        :func:`atomlens.elit.guards.styled_change_se`), the first member's F1 alone on
        those images before and after the round with the error of its change
        (``first_member_styled_f1_before``, ``first_member_styled_f1``,
        ``first_member_styled_f1_se``: ``AdaptConfig.first_member_guard``; NaN where the
        check does not apply), whether the round was kept, and why it was undone
        (``undone_because``, "" when kept). A round the first member's check stopped has
        NaN for every measure of the whole ensemble.
    validation : ValidationSet or None
        The simulated images in the frames' look, with their exact atoms, on which every
        kept round was calibrated (``AdaptConfig.calibration_images``); None when there
        were none. Also a labelled check of any other model in that look.
    """

    ensemble: Any
    history: pd.DataFrame
    validation: Any = None

    def summary(self) -> str:
        """The history as a table, then a line per undone round saying why (the
        ``undone_because`` column, left out of the table)."""
        h = self.history
        table = h.drop(columns="undone_because", errors="ignore")
        lines = [table.to_string(index=False, float_format="%.4f")]
        for rnd, why in zip(h["round"], h.get("undone_because", [""] * len(h)), strict=True):
            if isinstance(why, str) and why:  # NaN in a history resumed from before it
                lines.append(f"round {rnd} undone: {why}")
        return "\n".join(lines)


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
    human_labels: Any = None,
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
        An overall bar over the rounds (with its ETA; it ends early when the consensus is
        stable or a round is undone) and the bars of the training runs.
    on_round : callable, optional
        Called after each round with ``(round, candidate ensemble, kept)``, e.g. to score
        every round on labelled data in a benchmark; the candidate is None for a round that
        ``config.first_member_guard`` stopped after its first member.
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
        the history; :class:`atomlens.elit.checkpoint.AdaptCheckpoint`). Run again with the
        same ensemble, frames, pixel size and settings, ``adapt`` resumes after the last
        finished round instead of starting over; with anything else it refuses the
        directory. Nothing is written when omitted. ``default_checkpoint(out)`` is the
        directory beside ``out`` that ``atomlens adapt --out`` uses (remove it once the
        result is saved), and ``finished_rounds(checkpoint)`` the history so far.
    human_labels : sequence of sequence of dict, optional
        One list per frame (in the order of ``frames``) of labels from a person: atoms
        marked ``{"kind": "false", "x_px", "y_px"}`` or added ``{"kind": "missed", "x_px",
        "y_px", "class"}`` in the frame's pixels. They replace the pseudo-labels where they
        are (:func:`atomlens.elit.pseudo_labels.apply_human_labels`) and a labelled frame
        is drawn ``config.human_weight`` times as often; the history's ``human_labels``
        counts them per round. Held-out frames (the last ones) are never trained on, so
        their labels are not used: put labelled frames first.

    Returns
    -------
    AdaptResult
    """
    cfg = config or AdaptConfig()
    ens = as_ensemble(ensemble)
    c = ens.config
    frames = [np.asarray(f, dtype=np.float32) for f in frames]
    train, hold, crop = _split(frames, pixel_size, c, cfg)
    human = _human_for_training(human_labels, len(frames), len(train))
    ref_nn = material_nn_distances(c)
    ckpt = None
    if checkpoint is not None:
        ckpt = AdaptCheckpoint(
            checkpoint, ensemble=ens, frames=frames, pixel_size=pixel_size, config=cfg
        )
    current, hist, first = _resume(ens, ckpt, cfg)
    crystal, hold_regions = _regions(train, hold, pixel_size, cfg)
    if first <= cfg.rounds:  # the next round's pseudo-labels come from these
        found = _find(current, train, hold, pixel_size)
    if hist is None:
        now = measure(*found, ref_nn, cfg.nn_tolerance, hold_regions)
        hist = [_history_row(0, _NO_LABELS, now, np.nan, True)]
    styled, look, cal_set, cal_from = _frames_look(
        ens,
        train,
        hold,
        first=first,
        crop=crop,
        pixel_size=pixel_size,
        cfg=cfg,
        simulated=simulated,
    )
    n_styled = sum(len(t) for t in cal_set.truths) if cal_set is not None else 0
    # the last kept round's F1 per calibration image, for the guard's paired comparison
    # (also after a resume: the checkpoint keeps the mean only)
    kept_images = None
    if cal_set is not None and first <= cfg.rounds:  # not for a finished checkpoint
        kept_images = styled_f1_by_image(current, cal_set)
    if kept_images is not None and not np.isfinite(hist[-1].get("styled_f1", np.nan)):
        hist[-1]["styled_f1"] = mean_f1(kept_images)
    from tqdm.auto import tqdm  # deferred: the bar only when adapting

    bar = tqdm(
        total=cfg.rounds,
        initial=first - 1,
        desc="ELIT rounds",
        unit="round",
        disable=not progress,
        leave=False,
    )
    with bar, tempfile.TemporaryDirectory(prefix="atomlens-adapt-") as tmp:
        for rnd in range(first, cfg.rounds + 1):
            first_member: dict[str, Any] = {}
            candidate, counts = train_round(
                current,
                train,
                found[0],
                rnd=rnd,
                config=cfg,
                model_config=c,
                pixel_size=pixel_size,
                crop=crop,
                styled=styled,
                simulated=simulated,
                out=Path(tmp),
                progress=progress,
                human=human,
                crystal=crystal,
                ref_nn=ref_nn if cfg.regions else None,
                first_check=_first_member_check(current, cal_set, cfg, first_member),
            )
            if candidate is None:  # the first member's check stopped the round
                why = first_member["why"]
                hist.append(
                    _history_row(rnd, counts, _UNMEASURED, np.nan, False, why, first_member)
                )
                logger.info("ELIT round %d: %s", rnd, hist[-1])
                bar.update(1)
                if on_round is not None:
                    on_round(rnd, None, False)
                logger.warning("ELIT round %d undone: %s", rnd, why)
                if ckpt is not None:
                    ckpt.save(None, hist, done=True)
                break
            new = _find(candidate, train, hold, pixel_size)
            change = consensus_f1(new[0], found[0], pixel_size)
            now = measure(*new, ref_nn, cfg.nn_tolerance, hold_regions)
            # how the round does on simulated images in the frames' look, atoms known (the
            # candidates found once, for the guard and for a kept round's calibration)
            cal_found = styled_candidates(candidate, cal_set) if cal_set is not None else None
            images = styled_f1_by_image(candidate, cal_set, found=cal_found)
            now["styled_f1"] = mean_f1(images)
            now["styled_f1_images"] = images
            now["styled_atoms"] = n_styled
            last = {**hist[-1], "styled_f1_images": kept_images}  # hist[-1]: the last kept round
            now["styled_f1_se"] = styled_change_se(now, last) if cal_set is not None else np.nan
            kept, why = judge_round(now, change, last, cfg)
            hist.append(_history_row(rnd, counts, now, change, kept, why, first_member))
            logger.info("ELIT round %d: %s", rnd, hist[-1])
            if kept:
                candidate.calibration = _round_calibration(candidate, ens, cal_set, cal_found)
                kept_images = images
            bar.update(1)
            bar.set_postfix(kept=kept, consensus_f1=f"{change:.3f}")
            if on_round is not None:
                on_round(rnd, candidate, kept)
            if not kept:
                logger.warning("ELIT round %d undone: %s", rnd, why)
                if ckpt is not None:
                    ckpt.save(None, hist, done=True)
                break
            current, found = candidate, new
            stable = change >= cfg.stop_f1
            if ckpt is not None:
                ckpt.save(current, hist, done=stable or rnd == cfg.rounds)
            if stable:
                logger.info("ELIT: consensus stable (F1 %.4f); stopping", change)
                break
    history = pd.DataFrame(hist)
    if current is not ens:
        calibration = (
            {"images": cfg.calibration_images, "styled_after": cal_from}
            if cal_set is not None
            else {"carried_over": True}
        )
        has_cal = current.calibration is not None
        current.config = _adapted_config(
            c, cfg, history, len(frames), look, calibration if has_cal else None
        )
    return AdaptResult(current, history, cal_set)


_NO_LABELS = {"pseudo_labels": np.nan, "ignored_share": np.nan, "human_labels": 0}  # round 0
# the measures of a round stopped after its first member: its ensemble was never whole
_UNMEASURED = {
    k: np.nan
    for k in (
        "consensus_atoms",
        "epistemic_train",
        "epistemic_holdout",
        "holdout_implausible",
        "holdout_outside_per_1000",
    )
}


def _first_member_check(
    current: Any, cal_set: Any, cfg: AdaptConfig, record: dict[str, Any]
) -> Callable[[Any], bool] | None:
    """The round's check of its first member (``AdaptConfig.first_member_guard``): it scores
    the trained network alone on the calibration images against the last kept round's first
    member, writes the figures (and, when it stops the round, ``why``) into ``record``, and
    says whether the round goes on; always on when the guard is off. None where it does not
    apply: no calibration images, one member, or exact labels only."""
    if cal_set is None or len(current) < 2 or cfg.simulated_share >= 1:
        return None

    def one(net: Any) -> Ensemble:
        return Ensemble([net], current.config, current.member_provenance[:1])

    def check(net: Any) -> bool:
        old = styled_f1_by_image(one(current.networks[0]), cal_set)
        new = styled_f1_by_image(one(net), cal_set)
        go_on, why, se = first_member_verdict(new, old, cfg)
        record.update(
            first_member_styled_f1_before=mean_f1(old),
            first_member_styled_f1=mean_f1(new),
            first_member_styled_f1_se=se,
        )
        if go_on or not cfg.first_member_guard:
            return True
        record["why"] = why
        return False

    return check


def _human_for_training(human_labels: Any, n_frames: int, n_train: int) -> list[Any] | None:
    """The human labels of the training frames (None without any); those of held-out
    frames are dropped with a warning."""
    if human_labels is None:
        return None
    human = [list(h or []) for h in human_labels]
    if len(human) != n_frames:
        raise ValueError(
            f"`human_labels` has {len(human)} lists for {n_frames} frames; give one per frame."
        )
    dropped = sum(len(h) for h in human[n_train:])
    if dropped:
        logger.warning(
            "adapt: %d human label(s) are on held-out frames and are not trained on; put "
            "labelled frames first",
            dropped,
        )
    return human[:n_train] if any(human[:n_train]) else None


def _split(
    frames: list[np.ndarray], pixel_size: float, model_config: Any, cfg: AdaptConfig
) -> tuple[list[np.ndarray], list[np.ndarray], int]:
    """Training frames, held-out frames (the last ones) and the crop side [px at the
    model's sampling]."""
    if not frames:
        raise ValueError("adapt needs at least one frame.")
    # at least one frame held out, and at least one left to train on
    n_hold = (
        0 if len(frames) < 2 else min(max(1, round(cfg.holdout * len(frames))), len(frames) - 1)
    )
    hold = frames[len(frames) - n_hold :] if n_hold else []
    train = frames[: len(frames) - n_hold]
    side = min(min(f.shape) for f in train) * pixel_size / model_config.pixel_size_A
    crop = int(min(cfg.crop, side // 8 * 8))
    if crop < 32:
        raise ValueError(
            f"the frames are {side:.0f} px at the model's sampling; adapt needs at least 32."
        )
    return train, hold, crop


def _regions(
    train: list[np.ndarray], hold: list[np.ndarray], pixel_size: float, cfg: AdaptConfig
) -> tuple[list[np.ndarray] | None, list[Any] | None]:
    """Where each training frame's pseudo-labels may be drawn (its crystal region shrunk by
    ``region_margin_A``) and the held-out frames' region maps, read once; ``(None, None)``
    with ``regions=False``."""
    if not cfg.regions:
        return None, None
    from scipy.ndimage import binary_erosion  # deferred: only with regions

    # deferred: the region map's module only with regions
    from atomlens.fourier.regions import region_map

    maps = [region_map(f) for f in train]
    r = int(round(cfg.region_margin_A / pixel_size))
    crystal = [
        binary_erosion(m.labels == 0, iterations=r, border_value=1) if r > 0 else m.labels == 0
        for m in maps
    ]
    for i, (m, c) in enumerate(zip(maps, crystal, strict=True)):
        sh = m.share()
        logger.info(
            "adapt: training frame %d: crystal %.0f %%, amorphous %.0f %%, vacuum %.0f %%, "
            "saturated %.0f %%; labels drawn from %.0f %%",
            i,
            *(100 * sh[k] for k in ("crystal", "amorphous", "vacuum", "saturated")),
            100 * float(c.mean()),
        )
    return crystal, [region_map(f) for f in hold]


def _resume(
    ens: Any, ckpt: AdaptCheckpoint | None, cfg: AdaptConfig
) -> tuple[Any, list[dict[str, Any]] | None, int]:
    """The ensemble to go on from, the history so far (None: nothing saved) and the first
    round to train (``rounds + 1``: none)."""
    saved = ckpt.load() if ckpt is not None else None
    if saved is None:
        return ens, None, 1
    saved_ens, hist, done = saved
    logger.info("adapt: resuming after round %d from %s", hist[-1]["round"], ckpt.path)
    current = saved_ens if saved_ens is not None else ens
    return current, hist, cfg.rounds + 1 if done else int(hist[-1]["round"]) + 1


def _history_row(
    rnd: int,
    counts: dict[str, Any],
    now: dict[str, Any],
    change: float,
    kept: bool,
    why: str = "",
    first_member: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One row of :attr:`AdaptResult.history`."""
    fm = first_member or {}
    return {
        "round": rnd,
        "pseudo_labels": counts["pseudo_labels"],
        "ignored_share": counts["ignored_share"],
        "human_labels": counts.get("human_labels", 0),
        "consensus_atoms": now["consensus_atoms"],
        "consensus_f1_vs_previous": change,
        "epistemic_train": now["epistemic_train"],
        "epistemic_holdout": now["epistemic_holdout"],
        "holdout_implausible": now["holdout_implausible"],
        "holdout_outside_per_1000": now["holdout_outside_per_1000"],
        "styled_f1": now.get("styled_f1", np.nan),
        "styled_f1_se": now.get("styled_f1_se", np.nan),
        "first_member_styled_f1_before": fm.get("first_member_styled_f1_before", np.nan),
        "first_member_styled_f1": fm.get("first_member_styled_f1", np.nan),
        "first_member_styled_f1_se": fm.get("first_member_styled_f1_se", np.nan),
        "kept": kept,
        "undone_because": why,
    }


def _find(
    ens: Any, train: list[np.ndarray], hold: list[np.ndarray], pixel_size: float
) -> tuple[list[Any], list[Any]]:
    """The ensemble's candidates on the training frames and on the held-out frames."""
    return find_candidates(ens, train, pixel_size), find_candidates(ens, hold, pixel_size)


def _frames_look(
    ens: Any,
    train: list[np.ndarray],
    hold: list[np.ndarray],
    *,
    first: int,
    crop: int,
    pixel_size: float,
    cfg: AdaptConfig,
    simulated: Any,
) -> tuple[Any, dict[str, Any] | None, Any, str | None]:
    """What is read off the frames' look once, before the rounds: the simulated share's
    source in the training frames' look (``simulated_background="frames"``, from round
    ``first`` on) and what it read off them, and the styled images on which every kept
    round is calibrated and the frames they were styled after."""
    styled = look = None  # the frames' background is split once; each round reseeds the stream
    if first <= cfg.rounds and cfg.simulated_share > 0 and cfg.simulated_background == "frames":
        styled, look = styled_source(
            train,
            config=cfg,
            model_config=ens.config,
            pixel_size=pixel_size,
            crop=crop,
            seed=cfg.seed + 1000 * first,
            simulated=simulated,
        )
    cal_set = cal_from = None
    if cfg.calibration_images > 0:
        sets = [("held-out frames", hold), ("training frames", train)]
        cal_set, cal_from = _calibration_set(ens, sets, pixel_size, cfg, simulated)
    return styled, look, cal_set, cal_from


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
        "adapt: the adapted ensemble cannot be recalibrated for the frames (%s); it keeps "
        "the calibration of the ensemble it started from%s",
        why,
        ""
        if cfg.simulated_share >= 1
        else ", and rounds are judged without F1 on simulated images in the frames' look "
        "(the other guards do not see a loss of a percent or two: score the result on "
        "frames with truth if you have them)",
    )
    return None, None


def _round_calibration(
    candidate: Any, original: Any, cal_set: Any, found: list[Any] | None = None
) -> Any:
    """A kept round's calibration: refitted on the styled images ``cal_set`` (the logistic
    ``p_real`` carried over from ``original``'s, its intercept refitted, when they show
    too few false candidates to fit one), or ``original``'s carried over unchanged when
    there are none (frames that show no lattice); None only when ``original`` has none.
    ``found``: the candidate's results on ``cal_set`` (:func:`styled_candidates`)."""
    prior = original.calibration
    if cal_set is None:
        return prior
    return fit_calibration(
        candidate,
        cal_set.images,
        cal_set.truths,
        cal_set.pixel_sizes,
        prior=prior,
        found=found,
        hidden=cal_set.hidden,
    )


def _adapted_config(
    c: Any,
    cfg: AdaptConfig,
    history: pd.DataFrame,
    n_frames: int,
    look: dict[str, Any] | None,
    calibration: dict[str, Any] | None,
) -> Any:
    """The adapted ensemble's config: ``c`` with the adaptation in its provenance
    (``"elit"``)."""
    rounds_kept = int(history["kept"].iloc[1:].sum())
    return replace(
        c,
        provenance={
            **dict(c.provenance),
            "elit": {
                "rounds": rounds_kept,
                "config": asdict(cfg),
                "frames": n_frames,
                "history": history_records(history),
                **({"styled": look} if look is not None else {}),
                **({"calibration": calibration} if calibration is not None else {}),
            },
        },
    )
