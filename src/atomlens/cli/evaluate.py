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
    figures: Annotated[
        Path | None,
        typer.Option(
            "--figures",
            help="Write reliability.png (p_real) and z_hist.png (error/σ) into this new directory.",
        ),
    ] = None,
    report_html: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="Add the scores, z histogram and p_real reliability diagram to this "
            "report.html of `find` (the file is updated in place).",
        ),
    ] = None,
) -> None:
    """Score predicted atoms against the truth: P/R/F1 (overall and per class, with the
    confusion matrix of the classes) and localisation errors; every atom counts, the border
    band included. A prediction with σ and p_real (from `find`) also gets σ's coverage, the
    AUROC and ECE of p_real, and with --figures (or in find's report.html with
    --report) their diagrams."""
    try:
        from atomlens.metrics import evaluate_files
        from atomlens.metrics.detection import DEFAULT_RADIUS_A

        if (
            figures is not None
            and figures.exists()
            and (not figures.is_dir() or any(figures.iterdir()))
        ):
            raise FileExistsError(
                f"{figures} exists and is not an empty directory; choose a new `figures` directory."
            )
        if report_html is not None:
            # deferred: the report module only when a report is updated; checked before
            # any work, so a wrong path leaves no figures behind
            from atomlens.report.calibration_html import add_evaluation_to_report, check_report

            check_report(report_html)
        if radius_A is None and radius_px is None:
            radius_A = DEFAULT_RADIUS_A
        report = evaluate_files(pred, truth, radius_A=radius_A, radius_px=radius_px)
        written: dict[str, Path] = {}
        if figures is not None:
            # deferred: matplotlib, only when figures are asked for
            from atomlens.report.calibration_figures import save_evaluation_figures

            written = save_evaluation_figures(report, figures)
        if report_html is not None:
            written["report"] = add_evaluation_to_report(report_html, report, truth_name=truth.name)
    except USER_ERRORS as exc:
        fail(exc)
    if json_out:
        import json

        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        typer.echo(report.format())
        for path in written.values():
            typer.echo(f"wrote {path}")
