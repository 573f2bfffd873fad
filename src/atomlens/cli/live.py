"""``atomlens live`` (the live page over a stream of frames and a steered experiment) and
``atomlens replay`` (re-decide a live run from its provenance log)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from atomlens.cli.app import STATE, USER_ERRORS, fail


def live(
    source: Annotated[
        str | None,
        typer.Argument(
            help="A folder being filled with frames, or a (stack) file; omit for "
            "an experiment alone (--explore)."
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", help="Run folder: provenance.jsonl, prov.json.")
    ] = Path("atomlens-live"),
    model: Annotated[str, typer.Option(help="Ensemble directory or bundled name.")] = "graphene",
    explore: Annotated[
        Path | None,
        typer.Option(
            help="Explore configuration (JSON: sample or simulate, scalarizer, settings)."
        ),
    ] = None,
    host: Annotated[
        str,
        typer.Option(
            help="Address to serve on; any but 127.0.0.1, ::1 or "
            "localhost requires the printed token."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8765,
    hold: Annotated[
        float,
        typer.Option(help="Seconds a proposal waits for the operator (negative: until they act)."),
    ] = 2.0,
    pixel_size: Annotated[
        float | None, typer.Option(help="Pixel size [Å/px]; overrides the files' calibration.")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Use a non-empty --out.")] = False,
) -> None:
    """Serve the live page: frames with their atoms and uncertainty, the model's health and
    the automated experiment, with controls; every decision goes to OUT/provenance.jsonl."""
    try:
        from atomlens.live.app import live as start
        from atomlens.live.app import write_prov_json

        session, server = start(
            source,
            model=model,
            out=out,
            explore=explore,
            host=host,
            port=port,
            hold_s=None if hold < 0 else hold,
            pixel_size=pixel_size,
            overwrite=overwrite,
        )
    except USER_ERRORS as exc:
        fail(exc)
    if server.token:
        typer.echo(f"token: {server.token} (needed off localhost; it is in the URL below)")
    typer.echo(f"atomlens live: open {server.url}  (Ctrl-C to stop)")
    try:
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        session.stop()
        server.stop()
        prov = write_prov_json(out)
        if not STATE["quiet"]:
            typer.echo(f"wrote {out / 'provenance.jsonl'} and {prov}")


def replay(
    run: Annotated[
        Path,
        typer.Argument(
            help="A run folder of `atomlens live --explore`, or a run record of "
            "`atomlens explore` (an instrument run) or of `atomlens hypotheses`."
        ),
    ],
    models: Annotated[
        Path | None,
        typer.Option(
            help="The models file of an `atomlens hypotheses` run, if it is no longer where "
            "the run recorded it."
        ),
    ] = None,
) -> None:
    """Re-decide every proposal of a run from its record alone and say whether the path and
    the decisions are reproduced (exit 1 if not): a live run from its provenance log, with
    the logged human actions applied in order; an `atomlens explore` record from its
    run.json, path.csv and overview; an `atomlens hypotheses` record from its measurements
    and the models file it names."""
    try:
        from atomlens.live.provenance import LOG_NAME
        from atomlens.live.steer import replay_record, replay_run

        if not (run / LOG_NAME).is_file() and (run / "run.json").is_file():
            if _records_hypotheses(run):
                _replay_hypotheses(run, models)
                return
            res = replay_record(run)
        else:
            res = replay_run(run)
    except USER_ERRORS as exc:
        fail(exc)
    typer.echo(
        f"{run}: {len(res.indices)} measurements, {res.proposals} agent proposals re-decided, "
        f"{res.human_actions} human actions applied; largest acquisition difference "
        f"{res.max_acquisition_error:.2g} (relative)"
    )
    _verdict(res.exact, "the path and every decision are reproduced exactly", res.mismatches)


def _verdict(exact: bool, ok: str, mismatches: list) -> None:
    """Say the replay reproduced the run, or where it did not (exit 1)."""
    if exact:
        typer.echo(ok)
        return
    typer.echo(f"NOT reproduced: {mismatches[:5]}", err=True)
    raise typer.Exit(code=1)


def _records_hypotheses(run: Path) -> bool:
    try:
        return json.loads((run / "run.json").read_text()).get("kind") == "hypotheses"
    except (OSError, ValueError):
        return False


def _replay_hypotheses(run: Path, models: Path | None) -> None:
    # the active-learning stack (torch, GPyTorch) loads only for a replay
    from atomlens.active.hypotheses import replay_hypotheses

    res = replay_hypotheses(run, models=models)
    typer.echo(
        f"{run}: {len(res.recorded)} measurements recorded, {len(res.indices)} re-decided; "
        f"winner {res.winner} (recorded {res.recorded_winner})"
    )
    _verdict(res.exact, "the path and the winner are reproduced exactly", res.mismatches)
