"""Every bad input gives a one-line error naming the file and the fix; docs/errors.md
is this test's table (ATOMLENS_UPDATE_DOCS=1 rewrites it)."""

import os
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from atomlens.cli import app
from atomlens.simulate import simulate_image

DOC = Path(__file__).resolve().parents[1] / "docs" / "errors.md"


def _cases(d: Path):
    import tifffile
    from PIL import Image as PILImage

    good = simulate_image("graphene", shape=96, pixel_size=0.12, rng=1).image.astype(np.float32)
    np.save(d / "image.npy", good)
    (d / "empty.tif").write_bytes(b"")
    tifffile.imwrite(d / "full.tif", good)
    raw = (d / "full.tif").read_bytes()
    (d / "truncated.tif").write_bytes(raw[: len(raw) // 2])
    (d / "corrupt.dm4").write_bytes(np.random.default_rng(0).bytes(4096))
    PILImage.fromarray((good / good.max() * 255).astype(np.uint8)).save(d / "really-a-png.png")
    (d / "really-a-png.tif").write_bytes((d / "really-a-png.png").read_bytes())
    (d / "image.xyz").write_bytes(b"P2 2 2 255 0 0 0 0")
    np.save(d / "noise.npy", np.random.default_rng(1).poisson(50, (128, 128)).astype(np.float32))
    np.save(d / "constant.npy", np.full((96, 96), 7.0, np.float32))
    nan = good.copy()
    nan[10, 20] = np.nan
    np.save(d / "nan.npy", nan)
    np.save(d / "rgb.npy", np.random.default_rng(0).random((96, 96, 3)).astype(np.float32))
    np.save(d / "tiny.npy", good[:12, :12])
    # 6000² px, sparse on disk (read memory-mapped): only its shape matters here
    big = np.lib.format.open_memmap(d / "huge.npy", mode="w+", dtype=np.float32, shape=(6000,) * 2)
    big[:96, :96] = good
    big.flush()
    del big
    tifffile.imwrite(
        d / "metres.tif", good, imagej=True, resolution=(0.2, 0.2), metadata={"unit": "micron"}
    )
    stack = np.stack([good, np.zeros_like(good)])
    np.save(d / "stack-with-blank-frame.npy", stack)
    (d / "results").mkdir()
    (d / "results" / "atoms.csv").write_text("x\n")
    px = ["--pixel-size", "0.12"]
    return [
        ("missing file", ["missing.tif", *px]),
        ("empty file (0 bytes)", ["empty.tif", *px]),
        ("truncated file", ["truncated.tif", *px]),
        ("corrupt file", ["corrupt.dm4", *px]),
        ("wrong extension (a PNG named .tif)", ["really-a-png.tif", *px]),
        ("unsupported extension", ["image.xyz", *px]),
        ("constant image", ["constant.npy", *px]),
        ("NaN/inf pixels", ["nan.npy", *px]),
        ("3-channel image", ["rgb.npy", *px]),
        ("image smaller than the model's field of view", ["tiny.npy", *px]),
        (
            "pixel size too coarse for the model (nm taken for Å)",
            ["image.npy", "--pixel-size", "5"],
        ),
        ("frame too large at the model's sampling", ["huge.npy", "--pixel-size", "1"]),
        ("absurd pixel size given", ["image.npy", "--pixel-size", "500"]),
        ("absurd pixel size in the file", ["metres.tif"]),
        ("no pixel size, and no lattice to estimate it from", ["noise.npy"]),
        ("a blank frame in a stack", ["stack-with-blank-frame.npy", *px]),
        ("output folder not empty", ["image.npy", *px, "--out-here", "results"]),
        ("model folder missing", ["image.npy", *px, "--model-here", "no-model"]),
        ("unknown --positions", ["image.npy", *px, "--positions", "peak"]),
    ]


def _stable(text: str) -> str:
    """The doc without what other libraries say about a broken file (their wording and byte
    counts change between versions; ours must not)."""
    return re.sub(
        r"(could not be read as \.\w+)[:( ].*?(\. Is the|; the file may be)", r"\1 …\2", text
    )


def test_bad_inputs_table(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    rows = []
    for what, args in _cases(tmp_path):
        out, model = "out", str(tiny_model_dir)
        if "--out-here" in args:
            out = args[args.index("--out-here") + 1]
            args = args[: args.index("--out-here")]
        if "--model-here" in args:
            model = args[args.index("--model-here") + 1]
            args = args[: args.index("--model-here")]
        r = runner.invoke(app, ["find", *args, "--model", model, "--out", out])
        lines = [
            ln for ln in r.output.replace("\r", "\n").splitlines() if not ln.startswith("frames:")
        ]
        msg = "\n".join(lines).strip()  # a progress bar may have started (stacks)
        assert r.exit_code == 2, (what, r.exit_code, msg)
        assert "Traceback" not in msg and len(msg.splitlines()) == 1, (what, msg)
        assert msg.startswith("atomlens: error: "), (what, msg)
        named = args[0] if what != "model folder missing" else model
        if what == "output folder not empty":
            named = out
        if what == "absurd pixel size given":
            named = "--pixel-size"  # the argument is at fault, not the file
        if what == "unknown --positions":
            named = "--positions"
        assert named in msg, (what, msg)
        assert not (tmp_path / "out").exists(), what  # nothing partial left behind
        shown_model = "MODEL" if model == str(tiny_model_dir) else model
        cmd = " ".join(["atomlens find", *args, "--model", shown_model, "--out", out])
        rows.append((what, cmd, msg.replace(str(tiny_model_dir), "MODEL")))
    table = "\n".join(
        "| {} | `{}` | {} |".format(w, c, m.removeprefix("atomlens: error: ").replace("|", "/"))
        for w, c, m in rows
    )
    text = (
        "# Errors on bad input\n\n"
        "What `atomlens find` says (exit code 2, one line on stderr; `atomlens --debug` shows "
        "the traceback) for each kind of bad input. Generated by `tests/test_errors_doc.py`, "
        "which runs every case; rerun it with `ATOMLENS_UPDATE_DOCS=1` after changing a "
        "message.\n\n"
        "| input | command | message |\n|---|---|---|\n" + table + "\n"
    )
    if os.environ.get("ATOMLENS_UPDATE_DOCS"):
        DOC.parent.mkdir(exist_ok=True)
        DOC.write_text(text, encoding="utf-8")
    if not DOC.exists() or _stable(DOC.read_text(encoding="utf-8")) != _stable(text):
        pytest.fail(
            "docs/errors.md is out of date: run ATOMLENS_UPDATE_DOCS=1 python -m pytest "
            "tests/test_errors_doc.py"
        )
