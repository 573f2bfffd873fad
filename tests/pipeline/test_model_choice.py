"""With no model named, bright-field images get the bundled ``abf-any`` and the user is
told why; everything else keeps the HAADF default."""

import logging

import numpy as np
import pytest

from atomlens.bundled import DEFAULT_BF_MODEL, DEFAULT_MODEL
from atomlens.pipeline import default_model_for


def _hspy(path, title: str) -> None:
    """A small image file whose metadata names its detector, as microscopes write them."""
    from rsciio.hspy import file_writer

    data = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    axes = [
        {"name": n, "size": 64, "scale": 0.01, "offset": 0.0, "units": "nm", "navigate": False}
        for n in "yx"
    ]
    file_writer(
        str(path),
        {
            "data": data,
            "axes": axes,
            "metadata": {"General": {"title": title}, "Signal": {"signal_type": ""}},
            "original_metadata": {},
            "tmp_parameters": {},
            "attributes": {"_lazy": False},
            "package_info": {"name": "atomlens-tests", "version": "0"},
            "learning_results": {},
            "models": {},
        },
    )


def test_bright_field_files_and_contrast_dark_get_abf_any(tmp_path):
    _hspy(tmp_path / "abf.hspy", "ABF")
    _hspy(tmp_path / "haadf.hspy", "HAADF")
    choice = default_model_for(tmp_path / "abf.hspy")
    assert choice.name == DEFAULT_BF_MODEL == "abf-any"
    assert (choice.path / "config.json").is_file()
    assert "bright-field (signal type ABF)" in choice.reason
    assert default_model_for(tmp_path / "haadf.hspy").name == DEFAULT_MODEL
    # the user's setting decides for arrays, which say nothing of their detector
    assert default_model_for(np.zeros((8, 8)), contrast="dark").name == "abf-any"
    assert default_model_for(np.zeros((8, 8))).name == DEFAULT_MODEL
    assert default_model_for(tmp_path / "abf.hspy", contrast="bright").name == DEFAULT_MODEL


def test_files_of_both_kinds_keep_the_haadf_default_and_say_which_are_bf(tmp_path, caplog):
    _hspy(tmp_path / "abf.hspy", "ABF")
    _hspy(tmp_path / "haadf.hspy", "HAADF")
    with caplog.at_level(logging.WARNING):
        choice = default_model_for([tmp_path / "abf.hspy", tmp_path / "haadf.hspy"])
    assert choice.name == DEFAULT_MODEL
    assert "1 of 2 files (abf.hspy)" in caplog.text and "model='abf-any'" in caplog.text


def test_without_abf_any_installed_the_reason_says_so(tmp_path, monkeypatch):
    import atomlens.pipeline.model_choice as mc

    monkeypatch.setattr(mc, "bundled_directory", lambda name: None)
    choice = default_model_for(np.zeros((8, 8)), contrast="dark")
    assert choice.name == DEFAULT_MODEL
    assert "abf-any model is not installed" in choice.reason


def test_find_logs_the_choice(tmp_path, caplog):
    from atomlens.simulate import ImagingConditions, simulate_image

    sim = simulate_image(
        "srtio3[110]",
        shape=96,
        pixel_size=0.1,
        conditions=ImagingConditions(mode="bf", gamma=0.5, dose_e_per_A2=1e5),
        rng=4,
    )
    from atomlens import find

    with caplog.at_level(logging.WARNING):
        atoms = find(sim.image, pixel_size=0.1, contrast="dark")
    assert "no model given: the atoms are dark (contrast 'dark'): using the bundled abf-any" in (
        caplog.text
    )
    assert len(atoms) > 0


@pytest.mark.parametrize("bad", ["nothere.hspy"])
def test_a_missing_file_is_named(tmp_path, bad):
    with pytest.raises(FileNotFoundError, match=bad):
        default_model_for(tmp_path / bad)


def test_adapt_and_select_take_the_same_default_for_their_frames(tmp_path, caplog):
    """The ELIT commands' default (``model_or_default`` with the frames) follows the same
    rule as ``find``; without frames (``stream``: they arrive later) the HAADF default."""
    from atomlens.cli.parse import model_or_default

    _hspy(tmp_path / "abf.hspy", "ABF")
    with caplog.at_level(logging.WARNING):
        assert model_or_default(None, [str(tmp_path / "abf.hspy")]).name == "abf-any"
        assert model_or_default(None).name == DEFAULT_MODEL
    assert "signal type ABF" in caplog.text
