"""Tracking atoms through a drifting stack with a dopant that hops."""

import numpy as np
import pandas as pd

from atomlens.analysis import track_atoms


def test_tracks_drift_and_a_class_change():
    from ase.build import graphene

    rng = np.random.default_rng(0)
    xy = graphene(a=2.46, size=(8, 8, 1)).get_positions()[:, :2]
    drift = np.array([[0.0, 0.0], [0.3, -0.1], [0.6, -0.2], [0.9, -0.3], [1.2, -0.4]])
    frames = []
    for f, dr in enumerate(drift):
        cls = np.full(len(xy), "C", dtype=object)
        cls[10 if f < 3 else 11] = "Si"  # the Si swaps onto a neighbour site at frame 3
        keep = np.ones(len(xy), bool)
        if f == 2:
            keep[40] = False  # missed once: memory keeps its track
        p = xy + dr + rng.normal(0, 0.02, xy.shape)
        frames.append(
            pd.DataFrame({"frame": f, "x_A": p[keep, 0], "y_A": p[keep, 1], "class": cls[keep]})
        )
    t = track_atoms(pd.concat(frames, ignore_index=True), search_range_A=0.6, memory=1)
    assert t.atoms["track"].nunique() == len(xy)  # one track per atom, none broken
    np.testing.assert_allclose(t.drift[["drift_x_A", "drift_y_A"]].to_numpy(), drift, atol=0.01)
    moved = t.transitions
    assert len(moved) == 2 and set(moved["frame"]) == {3}
    assert sorted(zip(moved["from_class"], moved["to_class"], strict=True)) == [
        ("C", "Si"),
        ("Si", "C"),
    ]
