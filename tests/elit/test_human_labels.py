"""A person's labels over the pseudo-labels: false atoms become background, missed atoms
label disks, and they win where they overlap."""

from __future__ import annotations

import numpy as np
import pytest

from atomlens.elit.adapt import adapt
from atomlens.elit.config import AdaptConfig
from atomlens.elit.pseudo_labels import apply_human_labels


def test_false_and_missed_atoms_replace_the_pseudo_labels():
    masks = np.zeros((3, 40, 40), np.float32)
    masks[0] = 1.0
    yy, xx = np.indices((40, 40))
    atom = (xx - 10) ** 2 + (yy - 10) ** 2 <= 4  # a pseudo-label disk of class 1
    masks[:, atom] = 0.0
    masks[1, atom] = 1.0
    masks[:, 25:35, 25:35] = 0.0  # an ignored patch
    labels = [
        {"kind": "false", "x_px": 10.0, "y_px": 10.0},
        {"kind": "missed", "x_px": 30.0, "y_px": 30.0, "class": "B"},
        {"kind": "missed", "x_px": 80.0, "y_px": 3.0},  # outside the frame: not applied
    ]
    out, n = apply_human_labels(
        masks,
        labels,
        class_names=("A", "B"),
        pixel_size=0.5,
        label_radius_A=1.0,
        ignore_radius_A=1.5,
    )
    assert n == 2
    false_disk = (xx - 10) ** 2 + (yy - 10) ** 2 <= (1.5 / 0.5) ** 2
    assert (out[0, false_disk] == 1).all() and (out[1:, false_disk] == 0).all()
    missed = (xx - 30) ** 2 + (yy - 30) ** 2 <= (1.0 / 0.5) ** 2
    assert (out[2, missed] == 1).all() and (out[[0, 1]][:, missed] == 0).all()
    # the rest of the ignored patch stays ignored, the rest of the frame untouched
    rest = np.zeros((40, 40), bool)
    rest[25:35, 25:35] = True
    rest &= ~missed
    assert (out[:, rest] == 0).all()
    untouched = ~false_disk & ~missed & ~rest
    np.testing.assert_array_equal(out[:, untouched], masks[:, untouched])
    assert (masks[1, atom] == 1).all()  # the input is not modified
    with pytest.raises(ValueError, match="`kind` must be false or missed"):
        apply_human_labels(
            masks, [{"kind": "maybe", "x_px": 1, "y_px": 1}], class_names=("A",), pixel_size=0.5
        )
    with pytest.raises(ValueError, match="class 'C' is not one of"):
        apply_human_labels(
            masks,
            [{"kind": "missed", "x_px": 1, "y_px": 1, "class": "C"}],
            class_names=("A", "B"),
            pixel_size=0.5,
        )


def test_adapt_wants_one_list_of_labels_per_frame(tiny_model):
    frames = [np.zeros((96, 96), np.float32)] * 2
    with pytest.raises(ValueError, match="`human_labels` has 1 lists for 2 frames"):
        adapt(
            tiny_model,
            frames,
            pixel_size=0.25,
            config=AdaptConfig(rounds=1, steps=1),
            human_labels=[[]],
        )
    with pytest.raises(ValueError, match="human_weight must be an int ≥ 1"):
        AdaptConfig(human_weight=0)
