"""One round's training: members trained together (train_together, as ``train --members``
does) end where members trained one after the other do."""

import numpy as np
import pytest
import torch

from atomlens.elit import AdaptConfig
from atomlens.elit.rounds import train_members
from atomlens.ensemble import Ensemble, ModelConfig
from atomlens.nn import UNet, UNetConfig
from atomlens.train import PairSource

ARCH = UNetConfig(width=4, depth=2, n_classes=1)
CONFIG = ModelConfig(architecture=ARCH, pixel_size_A=0.25, class_names=("C",))


def _source() -> PairSource:
    """Pseudo-labelled frames as adapt builds them: one crop stream for every member."""
    rng = np.random.default_rng(0)
    frames = [rng.random((96, 96), dtype=np.float32) for _ in range(2)]
    labels = []
    for f in frames:
        fg = (f > 0.8).astype(np.float32)
        labels.append(np.stack([1 - fg, fg]))
    return PairSource(
        frames, labels, pixel_size=0.25, model_pixel_size=0.25, class_names=("C",), crop=64
    )


@pytest.mark.parametrize("mode", ["finetune", "retrain"])
def test_members_trained_together_match_members_trained_one_after_the_other(
    tmp_path, mode, monkeypatch
):
    import atomlens._shared.device as device

    # in float32: under bfloat16 autocast (CPUs with AMX) the two agree to its rounding only
    monkeypatch.setattr(device, "_cpu_has_amx_bf16", lambda: False)
    torch.manual_seed(0)
    ens = Ensemble([UNet(ARCH).eval() for _ in range(3)], CONFIG)
    before = [{k: v.clone() for k, v in n.state_dict().items()} for n in ens.networks]
    kw = dict(config=AdaptConfig(steps=5, batch_size=4, mode=mode, device="cpu"), rnd=1)
    alone = train_members(
        ens, _source(), model_config=CONFIG, out=tmp_path / "a", together=False, **kw
    )
    together = train_members(
        ens, _source(), model_config=CONFIG, out=tmp_path / "t", together=True, **kw
    )
    # on the CPU the default is one after the other: what adapt did before, to the bit
    default = train_members(ens, _source(), model_config=CONFIG, out=tmp_path / "d", **kw)
    for a, t, d in zip(alone, together, default, strict=True):
        for k, v in a.state_dict().items():
            torch.testing.assert_close(d.state_dict()[k], v, rtol=0, atol=0, msg=k)
            torch.testing.assert_close(t.state_dict()[k], v, rtol=0, atol=2e-5, msg=k)
    heads = [n.state_dict()["head.weight"] for n in together]
    assert not torch.allclose(heads[0], heads[1])  # the members stay distinct
    assert not torch.allclose(heads[0], before[0]["head.weight"])  # and they trained
    for n, w in zip(ens.networks, before, strict=True):  # the ensemble itself is untouched
        for k, v in n.state_dict().items():
            torch.testing.assert_close(v, w[k], rtol=0, atol=0)
