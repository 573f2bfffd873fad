import subprocess
import sys

import pytest
import torch

from atomlens._shared.device import (
    _cpu_has_amx_bf16,
    check_device,
    check_precision,
    inference_dtype,
    resolve_device,
)


@pytest.mark.parametrize("name", ["auto", "cpu", "cuda", "cuda:1", "mps", None])
def test_device_names_torch_knows_pass(name):
    check_device(name)


@pytest.mark.parametrize("name", ["tpu", "CPU", "cuda:x", "gpu"])
def test_unknown_device_names_are_refused_with_the_choices(name):
    with pytest.raises(ValueError, match=r"`device` must be 'auto', 'cpu', 'cuda', 'cuda:N'"):
        check_device(name)
    with pytest.raises(ValueError, match="must be 'auto'"):
        resolve_device(name)
    assert resolve_device("cpu").type == "cpu"


def test_device_names_are_checked_without_importing_torch():
    code = (
        "import sys\nfrom atomlens._shared.device import check_device\n"
        "try:\n    check_device('tpu')\nexcept ValueError:\n    print('torch' in sys.modules)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.stdout.strip() == "False", run.stdout + run.stderr


def test_precision_names_are_checked_without_importing_torch():
    code = (
        "import sys\nfrom atomlens._shared.device import check_precision\n"
        "try:\n    check_precision('fp16')\nexcept ValueError as e:\n"
        "    print('torch' in sys.modules, e)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.stdout.strip() == (
        "False `precision` must be 'auto', 'float32' or 'bfloat16', got 'fp16'."
    ), run.stdout + run.stderr
    for name in ("auto", "float32", "bfloat16"):
        check_precision(name)


def test_auto_precision_is_bfloat16_only_where_the_hardware_computes_it():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert inference_dtype("float32", cpu) is None and inference_dtype("float32", cuda) is None
    assert inference_dtype("bfloat16", cpu) is torch.bfloat16
    assert inference_dtype("auto", cuda) is torch.bfloat16  # as before: CUDA ran bfloat16
    assert inference_dtype("auto", cpu) is (torch.bfloat16 if _cpu_has_amx_bf16() else None)
    assert inference_dtype("auto", torch.device("mps")) is None
    with pytest.raises(ValueError, match="`precision` must be"):
        inference_dtype("half", cpu)
