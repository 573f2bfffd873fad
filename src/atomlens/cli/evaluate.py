"""``atomlens evaluate``: predicted atoms scored against the truth."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from atomlens.cli.app import USER_ERRORS, fail


def evaluate(
    pred: Annotated[
        Path, typer.Argument(help="Predicted atoms CSV (x_px, y_px[, x_A, y_A, class]).")
    ],
    truth: Annotated[Path, typer.Argument(help="True atoms CSV, e.g. truth.csv from `simulate`.")],
    radius_A: Annotated[
        float | None,
        typer.Option(
            "--radius-A", help="Match radius [Å] (uses x_A, y_A); 0.5 without either radius."
        ),
    ] = None,
    radius_px: Annotated[
        float | None, typer.Option("--radius-px", help="Match radius [px] (uses x_px, y_px).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Score predicted atoms against the truth: P/R/F1 (overall and per class, with the
    confusion matrix of the classes) and localisation errors; every atom counts, the border
    band included."""
    try:
        from atomlens.metrics import evaluate_files
        from atomlens.metrics.detection import DEFAULT_RADIUS_A

        if radius_A is None and radius_px is None:
            radius_A = DEFAULT_RADIUS_A
        report = evaluate_files(pred, truth, radius_A=radius_A, radius_px=radius_px)
    except USER_ERRORS as exc:
        fail(exc)
    if json_out:
        import json

        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        typer.echo(report.format())
