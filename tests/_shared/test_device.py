import subprocess
import sys

import pytest

from atomlens._shared.device import check_device, resolve_device


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
