"""Label-free member selection prefers good members over a damaged one."""

import numpy as np
import torch

from atomlens.elit import select
from atomlens.ensemble import Ensemble
from atomlens.nn import UNet
from atomlens.simulate import simulate_image


def test_a_damaged_member_is_ranked_last(tiny_model):
    g = torch.Generator().manual_seed(0)
    nets = []
    for k in range(4):
        net = UNet(tiny_model.config.architecture)
        net.load_state_dict(tiny_model.network.state_dict())
        with torch.no_grad():
            for p in net.parameters():
                # members 0–2 slightly perturbed; member 2 damaged: its weights 40 % noise
                scale = 0.4 if k == 2 else 0.02
                p.mul_(1 + scale * torch.randn(p.shape, generator=g))
        nets.append(net.eval())
    ens = Ensemble(nets, tiny_model.config)
    frames = [simulate_image("graphene", shape=128, pixel_size=0.12, rng=s).image for s in (7, 8)]
    sel = select(ens, frames, pixel_size=0.12, n_best=2)
    s = sel.scores.set_index("member")
    assert s.loc[2, "rank"] == 4, sel.scores
    assert 2 not in sel.chosen and len(sel.chosen) == 2
    good = s.drop(index=2)
    assert (good["agreement_f1"] > s.loc[2, "agreement_f1"]).all()
    assert np.isfinite(s["nn_distance_A"]).all()
