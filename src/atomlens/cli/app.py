"""The Typer app, its global options (``--verbose``, ``--quiet``, ``--debug``, ``--version``)
and the error handling every command shares.

User mistakes (bad arguments, missing files) end with a one-line error and exit code 2; pass
``--debug`` for the full traceback.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated, Any, NoReturn

import typer

app = typer.Typer(
    name="atomlens",
    help="Atoms you can trust from atom-resolved microscopy images.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: rich markup would eat the [units] in option help
    context_settings={"help_option_names": ["-h", "--help"]},
)

#: Set by the global options.
STATE: dict[str, Any] = {"debug": False, "quiet": False}

#: The errors that are the user's to fix: one line and exit code 2, no traceback.
USER_ERRORS = (
    ValueError,
    TypeError,
    FileNotFoundError,
    FileExistsError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
    ImportError,
)


def fail(exc: BaseException) -> NoReturn:
    """End the command on a user error: one line on stderr, exit code 2 (``--debug``: the
    traceback)."""
    if STATE["debug"]:
        raise exc
    msg = str(exc) or type(exc).__name__
    typer.echo(f"atomlens: error: {msg}", err=True)
    raise typer.Exit(code=2)


def _version_callback(value: bool) -> None:
    if value:
        from atomlens import __version__

        typer.echo(f"atomlens {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only print errors.")] = False,
    debug: Annotated[bool, typer.Option(help="Show full tracebacks for errors.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version_callback,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """Atoms you can trust from atom-resolved microscopy images."""
    level = logging.DEBUG if verbose else logging.ERROR if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("matplotlib").setLevel(max(level, logging.WARNING))
    STATE["debug"] = debug
    STATE["quiet"] = quiet


def main() -> None:
    """Entry point of the ``atomlens`` console script."""
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("atomlens: interrupted", err=True)
        sys.exit(130)
