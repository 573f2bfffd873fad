"""The error handling the commands share: the library's messages name Python parameters, the
command line's name flags; and no library message names a flag."""

import ast
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from atomlens.cli import app
from atomlens.cli.app import exposed_flags, flag_names
from tests.common import run_cli_in_fresh_python

SRC = Path(__file__).resolve().parents[2] / "src" / "atomlens"


def test_flag_names_translates_the_quoted_parameters_only():
    flags = {"pixel_size": "--pixel-size", "out": "--out", "overwrite": "--overwrite"}
    assert (
        flag_names("`pixel_size`=500.0 Å/px is outside", flags)
        == "--pixel-size=500.0 Å/px is outside"
    )
    assert flag_names("(e.g. `pixel_size=0.1`)", flags) == "(e.g. --pixel-size 0.1)"
    assert flag_names("pass `overwrite=True`.", flags) == "pass --overwrite."
    assert flag_names("another `out` or `overwrite`", flags) == "another --out or --overwrite"
    plain = "pixel_size of the model; out of range; `atomlens train`; `model`"
    assert flag_names(plain, flags) == plain  # unquoted, or not an option of the command


def test_each_command_translates_the_options_it_has():
    from typer.main import get_command

    root = get_command(app)
    ctx = root.make_context("atomlens", ["find"], resilient_parsing=True)
    find = exposed_flags(root.get_command(ctx, "find"))
    assert find["pixel_size"] == "--pixel-size" and find["p_real_min"] == "--p-real-min"
    assert find["out"] == "--out" and find["model"] == "--model"
    assert "images" not in find  # an argument has no flag
    evaluate = exposed_flags(root.get_command(ctx, "evaluate"))
    assert "pixel_size" not in evaluate and evaluate["radius_A"] == "--radius-A"


def test_python_gets_parameter_names_and_the_command_line_gets_flags(tiny_model_dir, tmp_path):
    from atomlens.pipeline import find_files

    noise = tmp_path / "noise.npy"
    np.save(noise, np.random.default_rng(1).poisson(50, (128, 128)).astype(np.float32))
    with pytest.raises(ValueError, match="does not say its pixel size") as err:
        find_files([noise], model=tiny_model_dir, out=tmp_path / "o")
    assert "pass `pixel_size` in Å/px (e.g. `pixel_size=0.1`)" in str(err.value)
    assert "--" not in str(err.value)
    r = CliRunner().invoke(
        app, ["find", str(noise), "--model", str(tiny_model_dir), "--out", str(tmp_path / "o")]
    )
    assert r.exit_code == 2
    assert "pass --pixel-size in Å/px (e.g. --pixel-size 0.1)." in r.output
    assert "pixel_size" not in r.output and "`" not in r.output

    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    image = tmp_path / "image.npy"
    np.save(image, np.load(noise)[:96, :96])
    with pytest.raises(FileExistsError) as err:
        find_files([image], model=tiny_model_dir, out=full, pixel_size=0.12)
    assert str(err.value).endswith("pass `overwrite=True`.")
    args = ["find", str(image), "--pixel-size", "0.12", "--model", str(tiny_model_dir)]
    r = CliRunner().invoke(app, [*args, "--out", str(full)])
    assert r.exit_code == 2 and r.output.rstrip().endswith("pass --overwrite.")


def _messages(path: Path):
    """The string constants of a module that are not docstrings, with their line."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docs.add(id(body[0].value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            yield node.lineno, node.value


# modules whose messages may name flags (none)
STILL_NAMING_FLAGS: set[str] = set()


def test_the_library_does_not_name_command_line_flags():
    import re

    flag = re.compile(r"(?<![\w-])--[a-z][a-z-]*")
    found = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith("cli/") or rel in STILL_NAMING_FLAGS:
            continue
        found += [f"{rel}:{line}: {text!r}" for line, text in _messages(path) if flag.search(text)]
    assert not found, "\n".join(found)


@pytest.mark.parametrize(
    "args",
    [
        ["find", "missing.tif", "--out", "res"],
        ["find", "scan.npy", "--out", "full"],
        ["adapt", "missing/*.tif", "--out", "adapted"],
        ["select", "missing.tif"],
    ],
)
def test_a_wrong_path_is_reported_before_torch_is_imported(tmp_path, args):
    """A typo in a path costs no wait for torch (seconds): the error comes first."""
    np.save(tmp_path / "scan.npy", np.zeros((8, 8), np.float32))
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    code, torch_imported, output = run_cli_in_fresh_python(args, cwd=tmp_path)
    assert (code, torch_imported) == (2, False), output
    assert "error:" in output and ("missing" in output or "--overwrite" in output), output


def test_find_writes_next_to_the_user_by_default_named_after_the_input(tmp_path, monkeypatch):
    from atomlens.cli.parse import default_out

    monkeypatch.chdir(tmp_path)
    (tmp_path / "run3").mkdir()
    assert default_out(["data/scan.dm4"], "atoms") == Path("scan-atoms")
    assert default_out(["run3"], "atoms") == Path("run3-atoms")
    assert default_out(["run3/"], "atoms") == Path("run3-atoms")
    assert default_out(["*.tif"], "atoms") == Path("atomlens-atoms")
    assert default_out(["a.tif", "b.tif"], "atoms") == Path("atomlens-atoms")
    assert default_out(["."], "atoms") == Path("atomlens-atoms")
