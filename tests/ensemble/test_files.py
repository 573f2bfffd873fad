import json

import numpy as np
import pytest

from atomlens.ensemble import Model, ModelFileError
from atomlens.simulate import simulate_image


def test_round_trip_gives_identical_predictions(tiny_model, tmp_path):
    tiny_model.save(tmp_path / "copy")
    again = Model.load(tmp_path / "copy")
    im = simulate_image("graphene", shape=96, pixel_size=0.1, rng=0).image
    np.testing.assert_array_equal(
        tiny_model.predict(im, pixel_size=0.1), again.predict(im, pixel_size=0.1)
    )
    assert sorted(p.name for p in (tmp_path / "copy").iterdir()) == [
        "config.json",
        "weights.safetensors",
    ]
    with pytest.raises(FileExistsError):
        tiny_model.save(tmp_path / "copy")


def test_model_dir_holds_no_pickle(tiny_model_dir):
    raw = (tiny_model_dir / "weights.safetensors").read_bytes()
    assert b"\x80\x04" not in raw[:16]  # not a pickle protocol header
    cfg = json.loads((tiny_model_dir / "config.json").read_text())
    assert cfg["format"] == "atomlens-model" and cfg["pixel_size_A"] == 0.25


def test_broken_model_dirs_say_what_is_wrong(tiny_model_dir, tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        Model.load(tmp_path / "nope")
    d = tmp_path / "m"
    d.mkdir()
    (d / "config.json").write_text((tiny_model_dir / "config.json").read_text())
    with pytest.raises(ModelFileError, match=r"weights\.safetensors is missing"):
        Model.load(d)
    import pickle

    (d / "weights.safetensors").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ModelFileError, match="not a readable safetensors"):
        Model.load(d)
    cfg = json.loads((tiny_model_dir / "config.json").read_text())
    cfg["colour"] = "blue"
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFileError, match="unknown keys"):
        Model.load(d)
