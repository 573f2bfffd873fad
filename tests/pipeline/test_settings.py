"""FindSettings: the locate settings, validated once and serialisable."""

import json

import numpy as np
import pytest

from atomlens.pipeline import FindSettings


def test_defaults_are_those_of_find():
    s = FindSettings()
    assert (s.threshold, s.min_separation_A, s.p_min, s.p_real_min, s.refine, s.positions) == (
        0.5,
        None,
        0.5,
        None,
        True,
        "auto",
    )
    assert s.is_default() and not FindSettings(p_min=0.75).is_default()


def test_every_bad_setting_is_named_at_once():
    with pytest.raises(ValueError) as err:
        FindSettings(threshold=0.0, p_min=1.5, p_real_min="sometimes", positions="centroid")
    msg = str(err.value)
    for part in ("threshold must be within (0, 1)", "p_min must be within (0, 1]"):
        assert part in msg
    assert "p_real_min must be within [0, 1] or 'auto', got 'sometimes'" in msg
    assert "positions must be one of 'auto', 'network', 'fit', 'mean', got 'centroid'" in msg
    with pytest.raises(ValueError, match="min_separation_A must be positive"):
        FindSettings(min_separation_A=-1.0)
    with pytest.raises(ValueError, match="refine must be True or False"):
        FindSettings(refine="yes")  # type: ignore[arg-type]


def test_numpy_numbers_are_numbers_and_frozen():
    s = FindSettings(threshold=np.float32(0.4), p_min=np.float64(1.0), min_separation_A=np.int64(1))
    assert s.p_min == 1.0
    with pytest.raises(AttributeError):
        s.p_min = 0.2  # type: ignore[misc]


def test_json_round_trip_and_unknown_keys():
    s = FindSettings(threshold=0.3, min_separation_A=1.1, p_real_min="auto", positions="fit")
    again = FindSettings.from_dict(json.loads(json.dumps(s.to_dict())))
    assert again == s
    with pytest.raises(ValueError, match=r"unknown FindSettings keys \['treshold'\]"):
        FindSettings.from_dict({"treshold": 0.3})


def test_resolve_takes_settings_or_keywords_not_both():
    s = FindSettings(p_min=0.75)
    assert FindSettings.resolve(s, threshold=0.5) is s  # keywords at their defaults
    assert FindSettings.resolve(None, p_min=0.25) == FindSettings(p_min=0.25)
    with pytest.raises(ValueError, match="either settings or the separate keywords"):
        FindSettings.resolve(s, p_min=0.25)
    with pytest.raises(TypeError, match="settings must be a FindSettings"):
        FindSettings.resolve({"p_min": 0.25}, p_min=0.5)  # type: ignore[arg-type]
