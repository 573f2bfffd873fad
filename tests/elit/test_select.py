"""Label-free member selection prefers good members over a damaged one."""

import dataclasses

import numpy as np
import torch

from atomlens.elit import select
from atomlens.ensemble import Ensemble
from atomlens.nn import UNet
from atomlens.simulate import simulate_image


def _damaged_ensemble(tiny_model, config=None) -> Ensemble:
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
    return Ensemble(nets, config or tiny_model.config)


def test_a_damaged_member_is_ranked_last(tiny_model):
    ens = _damaged_ensemble(tiny_model)
    frames = [simulate_image("graphene", shape=128, pixel_size=0.12, rng=s).image for s in (7, 8)]
    sel = select(ens, frames, pixel_size=0.12, n_best=2)
    s = sel.scores.set_index("member")
    assert s.loc[2, "rank"] == 4, sel.scores
    assert 2 not in sel.chosen and len(sel.chosen) == 2
    good = s.drop(index=2)
    assert (good["agreement_f1"] > s.loc[2, "agreement_f1"]).all()
    assert np.isfinite(s["nn_distance_A"]).all()


def test_without_a_reference_material_the_other_criteria_rank(tiny_model):
    """A model whose provenance names no material has no plausibility to rank by: agreement,
    confidence and stability then order the members, and still put the damaged one last."""
    prov = {k: v for k, v in tiny_model.config.provenance.items() if k != "materials"}
    ens = _damaged_ensemble(tiny_model, dataclasses.replace(tiny_model.config, provenance=prov))
    frames = [simulate_image("graphene", shape=128, pixel_size=0.12, rng=s).image for s in (7, 8)]
    s = select(ens, frames, pixel_size=0.12).scores.set_index("member")
    assert s["nn_distance_A"].isna().all() and s["coordination_tv"].isna().all()
    assert s.loc[2, "rank"] == 4, s
    # all share one plausibility rank; the tie-break spreads them by less than one rank
    assert s["rank_score"].max() - s["rank_score"].min() < 1, s


class _Painted(Ensemble):
    """Members whose probability maps are painted at given atoms (no network runs)."""

    def __init__(self, base, atoms_per_member: list[np.ndarray], shape: int):
        super().__init__([base.network] * len(atoms_per_member), base.config)
        self._atoms, self._shape = atoms_per_member, shape

    def predict_members(self, image, /, *, pixel_size, device="cpu", **_):
        yy, xx = np.mgrid[: self._shape, : self._shape]
        k1 = self.config.architecture.n_classes + 1
        out = np.zeros((len(self._atoms), k1, self._shape, self._shape), np.float32)
        for m, xy in enumerate(self._atoms):
            p = np.zeros((self._shape, self._shape))
            for x, y in xy:
                p = np.maximum(p, np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 1.5**2)))
            out[m, 1], out[m, 0] = p, 1 - p
        return out


def _graphene_with_sublattices(ps: float, shape: int):
    """A frame of graphene, its atoms [px] and each atom's sublattice (0 or 1)."""
    from scipy.spatial import cKDTree

    sim = simulate_image("graphene", shape=shape, pixel_size=ps, rng=3)
    xy = sim.truth[["x_px", "y_px"]].to_numpy(float)
    tree = cKDTree(xy)
    bond = np.median(tree.query(xy, k=2)[0][:, 1])
    # two-colour the honeycomb: walk its bonds from atom 0
    colour = -np.ones(len(xy), int)
    colour[0], todo = 0, [0]
    while todo:
        i = todo.pop()
        for j in tree.query_ball_point(xy[i], 1.2 * bond):
            if colour[j] < 0:
                colour[j] = 1 - colour[i]
                todo.append(j)
    assert (colour >= 0).all()
    return sim, xy, colour


def test_plausibility_outranks_a_mistake_the_members_share(tiny_model):
    """Three members miss one of graphene's sublattices, so the consensus misses it too and
    they agree with it; the fourth finds both. Only the nearest-neighbour distances and the
    coordination tell that the fourth is right, and select follows them."""
    sim, xy, colour = _graphene_with_sublattices(0.12, 128)
    one = xy[colour == 0]
    ens = _Painted(tiny_model, [one, one, one, xy], 128)
    s = select(ens, [sim.image], pixel_size=0.12).scores.set_index("member")
    assert (s.loc[3, "agreement_f1"] < s.drop(index=3)["agreement_f1"]).all(), s
    assert (s.loc[3, "nn_distance_A"] < s.drop(index=3)["nn_distance_A"] - 0.5).all(), s
    assert s.loc[3, "coordination_tv"] < 0.05 and (s.drop(index=3)["coordination_tv"] > 0.9).all()
    assert s.loc[3, "rank"] == 1, s


def test_coordination_sees_single_atoms_dropped(tiny_model):
    """Dropping every fifth atom leaves nearly every nearest-neighbour distance a bond
    length (the distances alone rank the holed members first here, by 0.0001 Å); the
    coordination numbers show the holes, and select follows them."""
    sim, xy, _ = _graphene_with_sublattices(0.12, 128)
    holed = np.delete(xy, np.arange(0, len(xy), 5), axis=0)
    ens = _Painted(tiny_model, [holed, holed, holed, xy], 128)
    s = select(ens, [sim.image], pixel_size=0.12).scores.set_index("member")
    assert s.loc[3, "coordination_tv"] < 0.05, s
    assert (s.drop(index=3)["coordination_tv"] > 0.3).all(), s
    assert s.loc[3, "rank"] == 1, s
