"""The Typer app, its global options (``--verbose``, ``--quiet``, ``--debug``, ``--version``)
and the error handling every command shares.

User mistakes (bad arguments, missing files) end with a one-line error and exit code 2; pass
``--debug`` for the full traceback. The library's messages name its Python parameters
(```pixel_size```); :func:`flag_names` writes them as the flags of the running command
(``--pixel-size``) in errors and log lines.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
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

#: Set by the global options: ``debug`` and ``quiet``, and ``flags``, the
#: :func:`exposed_flags` of the running command.
STATE: dict[str, Any] = {"debug": False, "quiet": False, "flags": {}}

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

_MARKED = re.compile(r"`(?P<name>[A-Za-z_]\w*)(?:=(?P<value>[^`]+))?`")


def flag_names(message: str, flags: Mapping[str, str]) -> str:
    """``message`` with the parameters it quotes as code written as the command's flags.

    The library's messages name Python parameters; where a message tells the user what to
    pass, it quotes the parameter in backticks, and only those quotes are translated (a
    parameter that is also an ordinary word, such as ``out`` or ``model``, stays a word
    elsewhere, and messages that do not quote stay as they are):

    - ```pixel_size``` becomes ``--pixel-size``;
    - ```pixel_size=0.1``` becomes ``--pixel-size 0.1``, as it is typed;
    - ```overwrite=True``` becomes ``--overwrite``: one syntax per interface, the flag as
      it is typed (a Typer boolean flag takes no value).

    A quoted name that is not in ``flags`` is left as it is.

    Parameters
    ----------
    message : str
        A library message.
    flags : mapping of str to str
        Parameter name → flag, e.g. ``{"pixel_size": "--pixel-size"}``.

    Returns
    -------
    str

    Examples
    --------
    >>> flags = {"pixel_size": "--pixel-size", "out": "--out", "overwrite": "--overwrite"}
    >>> flag_names("pass `pixel_size` in Å/px (e.g. `pixel_size=0.1`).", flags)
    'pass --pixel-size in Å/px (e.g. --pixel-size 0.1).'
    >>> flag_names("choose another `out` or pass `overwrite=True`.", flags)
    'choose another --out or pass --overwrite.'
    >>> flag_names("use `mode='retrain'`", {"mode": "--mode"})
    'use --mode retrain'
    >>> flag_names("the model's pixel_size, out of range", flags)
    "the model's pixel_size, out of range"
    """

    def flag(m: re.Match[str]) -> str:
        name, value = m["name"], m["value"]
        if name not in flags:
            return m[0]
        if value is None:
            return flags[name]
        if value == "True":
            return flags[name]
        return f"{flags[name]} {value.strip(chr(39) + chr(34))}"  # typed without quotes

    return _MARKED.sub(flag, message)


def exposed_flags(command: Any) -> dict[str, str]:
    """Parameter name → flag for the options of ``command`` (a Typer command, or None),
    e.g. ``{"pixel_size": "--pixel-size"}``."""
    flags = {}
    for param in getattr(command, "params", ()):
        long = [o for o in param.opts if o.startswith("--")]
        if param.param_type_name == "option" and param.name and long:
            flags[param.name] = long[0]
    return flags


class _FlagFormatter(logging.Formatter):
    """Log lines of the library with parameter names written as the command's flags."""

    def format(self, record: logging.LogRecord) -> str:
        if record.name.startswith("atomlens") and STATE["flags"]:
            msg = flag_names(record.getMessage(), STATE["flags"])
            record = logging.makeLogRecord({**record.__dict__, "msg": msg, "args": None})
        return super().format(record)


def fail(exc: BaseException) -> NoReturn:
    """End the command on a user error: one line on stderr, exit code 2 (``--debug``: the
    traceback)."""
    if STATE["debug"]:
        raise exc
    msg = flag_names(str(exc) or type(exc).__name__, STATE["flags"])
    typer.echo(f"atomlens: error: {msg}", err=True)
    raise typer.Exit(code=2)


def stop(exc: KeyboardInterrupt, saved: str = "") -> NoReturn:
    """End the command on Ctrl-C: one line on stderr saying what was kept, exit code 130.

    Parameters
    ----------
    exc : KeyboardInterrupt
        Its message, if any, says what the library saved (train: the step it resumes from).
    saved : str
        What the command kept otherwise, e.g. "nothing was written to results".
    """
    said = "; ".join(m for m in (str(exc), saved) if m)
    typer.echo(f"atomlens: interrupted{f': {said}' if said else ''}", err=True)
    raise typer.Exit(code=130)


def _version_callback(value: bool) -> None:
    if value:
        from atomlens import __version__

        typer.echo(f"atomlens {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    ctx: typer.Context,
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
    handler = logging.StreamHandler()
    handler.setFormatter(_FlagFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    logging.getLogger("matplotlib").setLevel(max(level, logging.WARNING))
    STATE["debug"] = debug
    STATE["quiet"] = quiet
    name = ctx.invoked_subcommand
    STATE["flags"] = exposed_flags(None if name is None else ctx.command.get_command(ctx, name))


def main() -> None:
    """Entry point of the ``atomlens`` console script."""
    try:
        app()
    except KeyboardInterrupt as exc:
        # a message says what was saved (train: the step it resumes from)
        typer.echo(f"atomlens: interrupted{f': {exc}' if str(exc) else ''}", err=True)
        sys.exit(130)
