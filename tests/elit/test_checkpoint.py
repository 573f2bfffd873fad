"""The adapt checkpoint: finished rounds on disk, tied to one adaptation (no training here;
tests/elit/test_adapt.py resumes a real run through it)."""

import numpy as np
import pytest
import torch

from atomlens.elit import AdaptCheckpoint, AdaptConfig, default_checkpoint, finished_rounds
from atomlens.ensemble import Ensemble, ModelConfig
from atomlens.nn import UNet, UNetConfig

ARCH = UNetConfig(width=4, depth=2, n_classes=1)
CONFIG = ModelConfig(architecture=ARCH, pixel_size_A=0.25, class_names=("C",))
FRAMES = [np.random.default_rng(i).random((64, 64), dtype=np.float32) for i in range(3)]
PS = 0.12


def _ensemble(seed: int) -> Ensemble:
    torch.manual_seed(seed)
    return Ensemble([UNet(ARCH).eval(), UNet(ARCH).eval()], CONFIG)


def _row(rnd: int, kept: bool = True) -> dict:
    return {"round": rnd, "pseudo_labels": np.nan if rnd == 0 else 100 + rnd, "kept": kept}


def _checkpoint(path, ens, config=None) -> AdaptCheckpoint:
    cfg = config or AdaptConfig(rounds=3)
    return AdaptCheckpoint(path, ensemble=ens, frames=FRAMES, pixel_size=PS, config=cfg)


def _assert_same_weights(a: Ensemble, b: Ensemble) -> None:
    for x, y in zip(a.networks, b.networks, strict=True):
        for (k, v), (_, w) in zip(x.state_dict().items(), y.state_dict().items(), strict=True):
            torch.testing.assert_close(v, w, rtol=0, atol=0, msg=k)


def test_default_checkpoint_is_hidden_beside_the_output(tmp_path):
    assert default_checkpoint(tmp_path / "adapted") == tmp_path / ".adapted.adapt-checkpoint"
    assert default_checkpoint("adapted").name == ".adapted.adapt-checkpoint"


def test_finished_rounds_are_read_back_with_the_last_kept_ensemble(tmp_path):
    original, round1, round2 = _ensemble(0), _ensemble(1), _ensemble(2)
    path = tmp_path / "ck"
    assert _checkpoint(path, original).load() is None  # nothing saved yet
    assert finished_rounds(path) is None
    ck = _checkpoint(path, original)
    ck.save(round1, [_row(0), _row(1)], done=False)
    ens, hist, done = _checkpoint(path, original).load()  # as a new run would read it
    _assert_same_weights(ens, round1)
    assert [h["round"] for h in hist] == [0, 1] and np.isnan(hist[0]["pseudo_labels"])
    assert not done
    ck.save(round2, [_row(0), _row(1), _row(2)], done=False)
    assert not (path / "round1").exists()  # only the last kept round's ensemble is kept
    ck.save(None, [_row(0), _row(1), _row(2), _row(3, kept=False)], done=True)  # undone
    ens, hist, done = _checkpoint(path, original).load()
    _assert_same_weights(ens, round2)
    assert done and [h["kept"] for h in hist] == [True, True, True, False]
    rounds = finished_rounds(path)
    assert list(rounds["round"]) == [0, 1, 2, 3] and rounds["pseudo_labels"].isna().sum() == 1


def test_a_checkpoint_belongs_to_one_adaptation(tmp_path):
    ens = _ensemble(0)
    _checkpoint(tmp_path / "ck", ens).save(_ensemble(1), [_row(0), _row(1)], done=False)
    others = [
        _checkpoint(tmp_path / "ck", ens, AdaptConfig(rounds=4)),  # other settings
        _checkpoint(tmp_path / "ck", _ensemble(5)),  # another ensemble
        AdaptCheckpoint(
            tmp_path / "ck", ensemble=ens, frames=FRAMES[:2], pixel_size=PS, config=AdaptConfig()
        ),
    ]
    for other in others:
        with pytest.raises(ValueError, match="another adaptation"):
            other.load()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="holds no adapt state"):
        _checkpoint(tmp_path / "busy", ens).load()
