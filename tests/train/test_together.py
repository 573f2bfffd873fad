"""Members trained together (one vmap'd pass per step) follow their solo trajectories."""

from dataclasses import replace

import pytest
import torch

from atomlens.nn import UNetConfig
from atomlens.train import TrainConfig, Trainer
from atomlens.train.recipe import prepare_training
from atomlens.train.together import train_together
from tests.common import EASY

RECIPE = dict(
    materials=["graphene"],
    pixel_size=0.25,
    crop=64,
    architecture=UNetConfig(width=4, depth=2),
    n_validation=0,
    **EASY,
)
# float32 (amp off): the two paths agree to its rounding; under bfloat16 autocast (CUDA, and
# CPUs with AMX) only to bfloat16's
CFG = TrainConfig(steps=5, val_every=2, batch_size=4, device="cpu", grad_clip=0.05, amp=False)


def _setups(n=3):
    return [prepare_training(config=replace(CFG, seed=1000 * i), **RECIPE) for i in range(n)]


def _assert_same_weights(a, b, atol):
    for k, v in a.network.state_dict().items():
        torch.testing.assert_close(b.network.state_dict()[k], v, rtol=0, atol=atol, msg=k)


def test_members_trained_together_match_members_trained_alone(tmp_path):
    """Same data, augmentation, AdamW and per-member clipping (small enough to bind)."""
    alone = []
    for i, s in enumerate(_setups()):
        alone.append(Trainer(s.model, s.config, s.data, out=tmp_path / f"alone{i}").fit().model)
    outs = [tmp_path / f"together{i}" for i in range(3)]
    together = train_together(_setups(), outs, checkpoint=tmp_path / "ck")
    for a, t in zip(alone, together, strict=True):
        _assert_same_weights(a, t.model, atol=2e-5)
    # the members did not collapse into one another
    w = [t.model.network.state_dict() for t in together]
    assert not torch.allclose(w[0]["head.weight"], w[1]["head.weight"])
    assert not (tmp_path / "ck").exists()
    for o in outs:
        assert sorted(p.name for p in o.iterdir()) == [
            "config.json",
            "metrics.jsonl",
            "weights.safetensors",
        ]
    assert together[0].model.config.provenance["trained_together"] == 3


def test_interrupted_together_run_resumes_exactly(tmp_path):
    full = train_together(
        _setups(2), [tmp_path / "f0", tmp_path / "f1"], checkpoint=tmp_path / "fck"
    )
    outs = [tmp_path / "r0", tmp_path / "r1"]
    with pytest.raises(KeyboardInterrupt):
        train_together(_setups(2), outs, checkpoint=tmp_path / "rck", stop_after=3)
    assert (tmp_path / "rck" / "state.json").exists()
    assert not (outs[0] / "config.json").exists()
    resumed = train_together(_setups(2), outs, checkpoint=tmp_path / "rck")
    for a, b in zip(full, resumed, strict=True):
        _assert_same_weights(a.model, b.model, atol=0)
    assert '"resume"' in (outs[1] / "metrics.jsonl").read_text()


def test_members_with_other_settings_or_batch_norm_are_refused(tmp_path):
    a, b = _setups(2)
    b = b._replace(config=replace(b.config, lr=1e-4))
    with pytest.raises(ValueError, match="differ from member 0"):
        train_together([a, b], [tmp_path / "a", tmp_path / "b"], checkpoint=tmp_path / "c")
    bn = prepare_training(
        config=CFG, **{**RECIPE, "architecture": UNetConfig(width=4, depth=2, norm="batch")}
    )
    with pytest.raises(ValueError, match="batch normalisation"):
        train_together([bn], [tmp_path / "a"], checkpoint=tmp_path / "c")
