"""``atomlens adapt``, ``select`` and ``stream``: ELIT on unlabeled frames."""

from __future__ import annotations

import logging
import shutil
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from atomlens.cli.app import STATE, USER_ERRORS, fail, flag_names, stop
from atomlens.cli.parse import model_or_default, p_real_cut

#: ``--model`` of adapt, select and stream: the same default as ``find`` (model_or_default)
ModelOption = Annotated[
    Path | None,
    typer.Option("--model", help="Ensemble directory or bundled name (default: haadf-generic)."),
]


def adapt(
    frames: Annotated[list[str], typer.Argument(help="Unlabeled frames: files, folders, globs.")],
    out: Annotated[Path, typer.Option("--out", help="Directory for the adapted ensemble.")],
    model: ModelOption = None,
    pixel_size: Annotated[
        float | None, typer.Option(help="Pixel size [Å/px]; overrides the files' calibration.")
    ] = None,
    rounds: Annotated[int, typer.Option(help="At most this many ELIT rounds.")] = 3,
    steps: Annotated[int, typer.Option(help="Optimiser steps per member per round.")] = 150,
    mode: Annotated[
        str, typer.Option(help="finetune (from the members' weights) or retrain (new seeds).")
    ] = "finetune",
    p_keep: Annotated[
        float, typer.Option(help="Share of members that must find an atom to label it.")
    ] = 0.99,
    simulated_share: Annotated[
        float,
        typer.Option(
            help="Share of each batch from simulated images of the model's material "
            "(exact labels); 1: simulated images only, no pseudo-labels."
        ),
    ] = 0.0,
    simulated_background: Annotated[
        str,
        typer.Option(
            help="Background and noise of the simulated share: 'simulated' (the "
            "simulation's) or 'frames' (the FRAMES' own, Bragg-filtered out of them; "
            "frames of a crystal of the model's material)."
        ),
    ] = "simulated",
    pixel_noise: Annotated[
        str,
        typer.Option(
            help="With --simulated-background frames: 'borrowed' (the frames' own noise) or "
            "'modelled' (drawn for each simulated image from a Poisson–Gaussian model "
            "fitted to the frames)."
        ),
    ] = "modelled",
    match_blur: Annotated[
        bool,
        typer.Option(
            help="With --simulated-background frames: blur the simulated images as much "
            "more as the FRAMES' Bragg reflections fade (a wider or aberrated probe)."
        ),
    ] = True,
    match_sampling: Annotated[
        bool,
        typer.Option(
            help="With --simulated-background frames: simulate at the FRAMES' own pixel "
            "size, read off their lattice, not across the model's training range (a "
            "--pixel-size more than 3 % off the lattice is reported)."
        ),
    ] = True,
    film: Annotated[
        str,
        typer.Option(
            help="With --simulated-background frames and modelled noise: 'estimated' (crops "
            "of the FRAMES' own film, Wiener-filtered out of them) or 'drawn' (a new "
            "amorphous carbon film for each simulated image, at the thickness fitted to the "
            "FRAMES' background; for a carbon film on a crystal the simulation renders "
            "faithfully)."
        ),
    ] = "estimated",
    background_max: Annotated[
        float | None,
        typer.Option(
            help="Teach background only where the members' mean foreground probability is "
            "at most this (other unlabelled pixels are left out of the loss)."
        ),
    ] = None,
    calibration_images: Annotated[
        int,
        typer.Option(
            help="Simulated images in the FRAMES' look (exact atoms) on which the adapted "
            "ensemble is calibrated, so that `atomlens find` reports p_real for the new "
            "conditions; 0: keep the old calibration."
        ),
    ] = 12,
    regions: Annotated[
        bool,
        typer.Option(
            help="Read each frame's regions (crystal, amorphous contamination, vacuum, "
            "saturated): pseudo-labels only from the crystal, the rest left out of the loss, "
            "and a round that adds atoms outside the crystal of the held-out frames is undone."
        ),
    ] = True,
    min_styled_gain: Annotated[
        float,
        typer.Option(
            help="A round is kept only when its F1 on the calibration images rises by at "
            "least this many standard errors of the change (a smaller rise does not tell "
            "its sign); 0: keep any round that does not lower it."
        ),
    ] = 1.0,
    first_member_guard: Annotated[
        bool,
        typer.Option(
            help="Where the members train one after the other (CPU): undo a round as soon "
            "as its first member alone falls clearly (2 standard errors) on the calibration "
            "images, or rises by less than --first-member-min-gain, without training the "
            "others."
        ),
    ] = True,
    first_member_min_gain: Annotated[
        float,
        typer.Option(
            help="With --first-member-guard and 3 or more calibration images: the least "
            "rise of the first member's F1, in standard errors of its change, for the round "
            "to go on (a first member that barely moves foretells a round the ensemble's "
            "guard undoes); a negative number switches this rule off."
        ),
    ] = 0.25,
    train_layers: Annotated[
        str,
        typer.Option(
            help="all: fine-tune every layer; decoder: the decoder and head only (the "
            "encoder frozen; about 0.7× the time per step on a CPU)."
        ),
    ] = "all",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out.")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
) -> None:
    """Adapt an ensemble to unlabeled FRAMES by training on its own confident atoms (ELIT).

    Writes the adapted ensemble to --out (its provenance holds the settings and the history
    of the rounds) and prints the history. Finished rounds are kept in a hidden directory
    beside --out until it is written: the same command run again after an interruption
    resumes from the last finished round.
    """
    ckpt = None  # where finished rounds are kept, once known
    try:
        # paths first, before torch is imported (seconds): a typo is reported at once
        from atomlens._shared.atomic import check_output_directory
        from atomlens.io import expand_inputs

        expand_inputs(frames)
        check_output_directory(out, overwrite=overwrite)

        from atomlens.elit import AdaptConfig, default_checkpoint, finished_rounds
        from atomlens.elit import adapt as adapt_ensemble
        from atomlens.ensemble import Ensemble
        from atomlens.pipeline import read_frame_list

        ens = Ensemble.load(model_or_default(model, frames))
        images, ps = read_frame_list(frames, model=ens, pixel_size=pixel_size)
        cfg = AdaptConfig(
            rounds=rounds,
            steps=steps,
            mode=mode,
            p_keep=p_keep,
            simulated_share=simulated_share,
            simulated_background=simulated_background,
            pixel_noise=pixel_noise,
            match_blur=match_blur,
            match_sampling=match_sampling,
            film=film,
            background_max=background_max,
            calibration_images=calibration_images,
            regions=regions,
            min_styled_gain=min_styled_gain,
            first_member_guard=first_member_guard,
            first_member_min_gain=None if first_member_min_gain < 0 else first_member_min_gain,
            train_layers=train_layers,
            device=device,
        )
        if simulated_background != "frames" and (
            pixel_noise != "modelled" or not match_blur or not match_sampling or film != "estimated"
        ):
            typer.echo(
                "note: --pixel-noise, --no-match-blur, --no-match-sampling and --film only "
                "apply with --simulated-background frames; ignored"
            )
        # finished rounds are kept beside --out, so that the same command run again after
        # an interruption resumes; removed once --out is written
        ckpt = default_checkpoint(out)
        STATE["flags"]["checkpoint"] = "--out"  # the checkpoint goes with --out here
        if finished_rounds(ckpt) is not None:
            typer.echo(f"{ckpt} holds finished rounds of an earlier run: resuming from them")
        res = adapt_ensemble(ens, images, pixel_size=ps, config=cfg, progress=True, checkpoint=ckpt)
        if res.ensemble is ens:
            typer.echo("no round was kept; the ensemble is unchanged (see the history)")
        res.ensemble.save(out, overwrite=overwrite)
        shutil.rmtree(ckpt, ignore_errors=True)
    except USER_ERRORS as exc:
        fail(exc)
    except KeyboardInterrupt as exc:
        done = None if ckpt is None else finished_rounds(ckpt)
        stop(
            exc,
            "no round finished yet"
            if done is None
            else f"{len(done) - 1} round(s) finished are kept in {ckpt}; the same command "
            "resumes from them",
        )
    typer.echo(res.summary())
    typer.echo(f"adapted ensemble written to {out}")
    cal = (res.ensemble.config.provenance.get("elit") or {}).get("calibration")
    if cal and res.ensemble is not ens:
        typer.echo(
            f"calibrated on {cal['images']} simulated images in the look of the "
            f"{cal['styled_after']}: `atomlens find … --model {out} --p-real-min auto` rejects "
            "the candidates below the p_real threshold with the best F1 on them"
        )


def select_members(
    frames: Annotated[list[str], typer.Argument(help="Frames: files, folders or globs.")],
    model: ModelOption = None,
    pixel_size: Annotated[
        float | None, typer.Option(help="Pixel size [Å/px]; overrides the files' calibration.")
    ] = None,
    n_best: Annotated[
        int | None,
        typer.Option("--n-best", help="Members to choose (default: half, at least 2)."),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
) -> None:
    """Rank the ensemble's members on unlabeled FRAMES: by how physically plausible their
    atoms are (nearest-neighbour distances and coordination against the trained material),
    ties broken by agreement, confidence and stability."""
    try:
        from atomlens.io import expand_inputs  # before torch is imported (seconds)

        expand_inputs(frames)

        from atomlens.elit import select
        from atomlens.ensemble import Ensemble
        from atomlens.pipeline import read_frame_list

        ens = Ensemble.load(model_or_default(model, frames))
        images, ps = read_frame_list(frames, model=ens, pixel_size=pixel_size)
        sel = select(ens, images, pixel_size=ps, n_best=n_best, device=device)
    except USER_ERRORS as exc:
        fail(exc)
    typer.echo(sel.scores.sort_values("rank").to_string(index=False, float_format="%.4f"))
    typer.echo(f"chosen: {sel.chosen}")


class OnDrift(str, Enum):
    select = "select"
    adapt = "adapt"
    both = "both"
    none = "none"


def decision_line(d: dict) -> str:
    """One decision of the stream as a line of its output."""
    keep = (
        "ratio",
        "baseline",
        "drift_ratio",
        "members",
        "cause",
        "seconds",
        "launched_at",
        "p_real_min",
    )
    parts = [
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in d.items() if k in keep
    ]
    if "swapped" in d:
        parts.append("swapped in" if d["swapped"] else "every round undone, not swapped in")
    if d["event"] in ("frame_skipped", "adapt_failed", "p_real_off"):
        parts.append(flag_names(str(d.get("reason") or d.get("error")), STATE["flags"]))
    at = "start" if d["frame"] is None else f"frame {d['frame']}"
    at += ", after the last frame" if d.get("at_end") else ""
    return f"  → {d['event']} ({at}): {', '.join(parts)}"


def stream_frames(
    source: Annotated[
        str, typer.Argument(help="A folder being filled with frames, or a (stack) file.")
    ],
    model: ModelOption = None,
    pixel_size: Annotated[
        float | None, typer.Option(help="Pixel size [Å/px]; overrides the files' calibration.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write atoms.csv, frames.csv, decisions.jsonl.")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Write into a non-empty --out.")] = False,
    on_drift: Annotated[
        OnDrift, typer.Option("--on-drift", help="What to do when the conditions drift.")
    ] = OnDrift.select,
    drift_ratio: Annotated[
        float,
        typer.Option("--drift-ratio", help="Drift when the OOD score exceeds this × the baseline."),
    ] = 2.0,
    patience: Annotated[int, typer.Option(help="Consecutive frames over the threshold.")] = 3,
    n_best: Annotated[
        int | None,
        typer.Option("--n-best", help="Members to switch to (default: half, at least 2)."),
    ] = None,
    idle_timeout: Annotated[
        float, typer.Option("--idle-timeout", help="Stop after this long without a new file [s].")
    ] = 60.0,
    p_real_min: Annotated[
        str | None,
        typer.Option(
            "--p-real-min",
            help="Reject atoms whose calibrated p_real is below this (a number or 'auto', as "
            "for `atomlens find`) while the active members are calibrated.",
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
) -> None:
    """Follow SOURCE as frames arrive: atoms, latency and drift score per frame; on drift,
    switch to the best members and/or adapt in the background."""
    try:
        from atomlens.bundled import resolve_model_path
        from atomlens.elit.stream import StreamConfig, stream
        from atomlens.ensemble import Ensemble

        cfg = StreamConfig(
            drift_ratio=drift_ratio,
            patience=patience,
            window=max(6, patience),
            on_drift=on_drift.value,
            n_best=n_best,
            idle_timeout_s=idle_timeout,
            p_real_min=p_real_cut(p_real_min),
        )
        ens = Ensemble.load(resolve_model_path(str(model_or_default(model))))
        st = stream(
            ens,
            source,
            pixel_size=pixel_size,
            config=cfg,
            out=out,
            overwrite=overwrite,
            device=device,
        )
        # decisions are printed here; the library's log lines would repeat them
        if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
            logging.getLogger("atomlens.elit.stream").setLevel(logging.ERROR)
        shown = 0
        for rec in st:
            new = st.decisions[shown:]
            shown = len(st.decisions)
            for d in new:  # before this frame: the baseline, skipped frames
                if d["frame"] != rec.index:
                    typer.echo(decision_line(d))
            members = ",".join(str(m) for m in rec.members)
            typer.echo(
                f"{rec.index:5d} {rec.name}: {rec.n_atoms} atoms, {rec.latency_s * 1e3:.0f} ms, "
                f"score {rec.score:.3g} (×{rec.ratio:.2f}), members {members}"
                + (f" gen {rec.generation}" if rec.generation else "")
            )
            for d in new:  # on this frame: drift, switch, adaptation
                if d["frame"] == rec.index:
                    typer.echo(decision_line(d))
        for d in st.decisions[shown:]:
            typer.echo(decision_line(d))
    except USER_ERRORS as exc:
        fail(exc)
