import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from atomlens.simulate import ConditionRanges, SimulatedDataset, Substitution


def _ranges(**kw):
    base = {
        "materials": ("graphene", "mos2"),
        "shape": 64,
        "defects": {"graphene": (Substitution("C", "Si", 0.02),)},
    }
    base.update(kw)
    return ConditionRanges(**base)


def test_stream_is_reproducible_and_indexable():
    ds = SimulatedDataset(_ranges(), seed=3, length=6)
    a = list(ds)
    b = list(SimulatedDataset(_ranges(), seed=3, length=6))
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x["image"], y["image"]) and torch.equal(x["masks"], y["masks"])
    c = list(SimulatedDataset(_ranges(), seed=4, length=6))
    assert not torch.equal(a[0]["image"], c[0]["image"])
    # sample(i) gives the same image as the stream, with its truth.
    sim = ds.sample(2)
    np.testing.assert_array_equal(sim.image, a[2]["image"][0].numpy())
    assert len(sim.truth) > 0


def test_channels_are_the_union_of_classes():
    ds = SimulatedDataset(_ranges(), seed=0, length=8)
    assert ds.class_names == ("C", "Si", "Mo", "S")
    for s in ds:
        m = s["masks"]
        assert m.shape == (5, 64, 64)
        sim = ds.sample(s["index"])
        present = set(sim.truth["class"])
        for k, name in enumerate(ds.class_names):
            if name not in sim.class_names:
                assert m[k + 1].sum() == 0
            elif name in present and (~sim.truth.near_edge).any():
                assert m[k + 1].sum() > 0


def test_dataloader_workers_split_the_stream_without_repeats():
    ds = SimulatedDataset(_ranges(shape=32), seed=1, length=6)
    loader = DataLoader(ds, batch_size=2, num_workers=2)
    indices = sorted(int(i) for batch in loader for i in batch["index"])
    assert indices == list(range(6))


def test_conditions_are_drawn_within_ranges():
    r = _ranges(pixel_size_A=(0.09, 0.11), dose_e_per_A2=(1e3, 1e4), probe="gaussian")
    rng = np.random.default_rng(0)
    for _ in range(50):
        kw = r.draw(rng)
        assert 0.09 <= kw["pixel_size"] <= 0.11
        assert 1e3 <= kw["conditions"].dose_e_per_A2 <= 1e4
        assert kw["conditions"].probe.to_dict()["kind"] == "gaussian"


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"materials": ()}, "materials"),
        ({"dose_e_per_A2": (1e5, 1e3)}, "low <= high"),
        ({"probe": "laser"}, "probe"),
        ({"defects": {"hbn": ()}}, "not in materials"),
        ({"modes": ("tem",)}, "modes"),
        ({"label_min_share": -0.1}, "label_min_share"),
    ],
)
def test_bad_ranges_raise(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        _ranges(**kw)
