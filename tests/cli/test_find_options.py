"""``atomlens find`` reports a bad option before torch is imported (seconds)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.common import run_cli_in_fresh_python


@pytest.mark.parametrize(
    ("option", "says"),
    [
        (["--device", "tpu"], "--device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"),
        (["--precision", "fp16"], "--precision must be 'auto', 'float32' or 'bfloat16'"),
        (["--threshold", "2"], "threshold must be within (0, 1), got 2.0"),
        (["--p-min", "0"], "p_min must be within (0, 1]"),
        (["--positions", "peak"], "--positions must be one of"),
        (["--contrast", "grey"], "--contrast must be 'auto', 'bright'"),
        (["--pixel-size", "-1"], "--pixel-size must be a positive, finite size in Å/px"),
        (["--model", "no-model"], "model directory no-model does not exist"),
    ],
)
def test_a_bad_option_is_reported_before_torch_is_imported(tmp_path, option, says):
    np.save(tmp_path / "scan.npy", np.zeros((8, 8), np.float32))
    args = ["find", "scan.npy", "--model", "graphene", "--out", "out", *option]
    code, torch_imported, output = run_cli_in_fresh_python(args, cwd=tmp_path)
    assert (code, torch_imported) == (2, False), output
    assert "error:" in output and says in " ".join(output.split()), output
