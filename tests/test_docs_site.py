"""The documentation site builds without a warning, and its CLI reference (docs/cli.md) is
the help of the current command line (ATOMLENS_UPDATE_DOCS=1 rewrites it)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CLI_DOC = ROOT / "docs" / "cli.md"
WIDTH = 88  # columns of the help text, fixed so that the page does not depend on the terminal


def _help(command, name: str, parent=None):
    """Click's plain help of ``command`` (Typer's rich panels would need a terminal)."""
    command.rich_markup_mode = None  # plain click formatting; help text shown verbatim
    ctx = type(command).context_class(
        command,
        info_name=name,
        parent=parent,
        terminal_width=WIDTH,
        max_content_width=WIDTH,
        **command.context_settings,
    )
    return ctx, command.get_help(ctx).rstrip()


def cli_reference() -> str:
    """docs/cli.md: every command's ``--help``, generated from ``atomlens.cli.app``."""
    from typer.main import get_command

    from atomlens.cli import app

    root = get_command(app)
    ctx, text = _help(root, "atomlens")
    parts = [
        "# Command line\n\n"
        "Every command of `atomlens` with its `--help`. Generated from the code by "
        "`tests/test_docs_site.py`, which fails when this page is out of date; rerun it with "
        "`ATOMLENS_UPDATE_DOCS=1` after changing the command line. The global options "
        "(`--verbose`, `--quiet`, `--debug`) go before the command: "
        "`atomlens --debug find …`.\n\n"
        f"```text\n$ atomlens --help\n{text}\n```\n"
    ]
    for name in root.list_commands(ctx):
        command = root.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        _, text = _help(command, name, parent=ctx)
        parts.append(f"## `atomlens {name}`\n\n```text\n$ atomlens {name} --help\n{text}\n```\n")
    return "\n".join(parts)


def test_cli_reference_is_current():
    text = cli_reference()
    if os.environ.get("ATOMLENS_UPDATE_DOCS"):
        CLI_DOC.write_text(text, encoding="utf-8")
    if not CLI_DOC.exists() or CLI_DOC.read_text(encoding="utf-8") != text:
        pytest.fail(
            "docs/cli.md is out of date: run ATOMLENS_UPDATE_DOCS=1 python -m pytest "
            "tests/test_docs_site.py"
        )


def test_site_builds_strict(tmp_path):
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("mkdocs is not installed: pip install -c constraints.txt -e '.[docs]'")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # Material's end-of-life banner
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, f"mkdocs build --strict failed:\n{run.stdout}\n{run.stderr}"
    for page in ("index.html", "cli/index.html", "api/pipeline/index.html"):
        assert (tmp_path / "site" / page).is_file(), page
