"""``atomlens hypotheses``: hypothesis learning over candidate physical models."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from atomlens.cli.app import STATE, USER_ERRORS, fail


class Policy(str, Enum):
    epsilon = "epsilon"
    softmax = "softmax"


class Reward(str, Enum):
    decrease = "decrease"
    lowest = "lowest"
    lowest_stale = "lowest-stale"


def hypotheses(
    data: Annotated[
        Path,
        typer.Argument(
            help="Candidates and their hidden values: .npz (candidates, values) or .csv "
            "(coordinate columns + value)."
        ),
    ],
    models: Annotated[
        Path, typer.Option(help="Python file defining MODELS (name → model) or models(seed).")
    ],
    out: Annotated[Path, typer.Option(help="Output directory (an unfinished run resumes).")],
    steps: Annotated[int, typer.Option(help="Bandit steps after the warm-up.")] = 12,
    seed: Annotated[int, typer.Option(help="Seed of the seed points and the bandit.")] = 0,
    warmup: Annotated[int, typer.Option(help="Warm-up rounds (one measurement per model).")] = 3,
    seed_points: Annotated[int, typer.Option(help="Random points measured first.")] = 4,
    policy: Annotated[Policy, typer.Option(help="Bandit rule.")] = Policy.epsilon,
    epsilon: Annotated[float, typer.Option(help="Exploration probability (epsilon).")] = 0.1,
    temperature: Annotated[float, typer.Option(help="Softmax temperature.")] = 0.5,
    reward: Annotated[
        Reward,
        typer.Option(
            help="Reward rule: lowest (+1 when the model's uncertainty is the lowest of "
            "all, every model refit on the same data), lowest-stale (against the others' "
            "latest fits, cheaper) or decrease (+1 when it fell: the paper's rule, which "
            "paid right and wrong models alike on our benchmark)."
        ),
    ] = Reward.lowest,
    axis_label: Annotated[
        list[str] | None,
        typer.Option(
            help="Label of each input axis in the figures, with its unit, e.g. "
            "--axis-label 'x [Å]' --axis-label 'y [Å]' (once per axis)."
        ),
    ] = None,
    value_label: Annotated[
        str | None,
        typer.Option(help="Label of the measured value in the figures, e.g. 'Ti offset [pm]'."),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace another run in --out.")] = False,
) -> None:
    """Learn which candidate model explains DATA: a bandit spends measurements on the
    model whose uncertainty falls; writes the record, the winner and figures into OUT."""
    try:
        from atomlens.active.hypotheses import HypothesisSettings, run_hypotheses_files

        STATE["flags"]["n_seed"] = "--seed-points"  # the library's name for it
        STATE["flags"]["axis_labels"] = "--axis-label"
        settings = HypothesisSettings(
            steps=steps,
            warmup=warmup,
            n_seed=seed_points,
            policy=policy.value,
            epsilon=epsilon,
            temperature=temperature,
            reward=reward.value,
            seed=seed,
        )
        result = run_hypotheses_files(
            data,
            models=models,
            out=out,
            settings=settings,
            overwrite=overwrite,
            progress=not STATE["quiet"],
            axis_labels=axis_label or None,
            value_label=value_label,
        )
    except USER_ERRORS as exc:
        fail(exc)
    if not STATE["quiet"]:
        params = ", ".join(
            f"{k}={v['estimate']:.4g} [{v['low']:.4g}, {v['high']:.4g}]"
            for k, v in result.parameters.items()
        )
        typer.echo(f"winner: {result.winner} ({params})")
        if result.dropped:
            typer.echo("dropped: " + "; ".join(f"{k}: {v}" for k, v in result.dropped.items()))
        typer.echo(f"wrote {out}/")
