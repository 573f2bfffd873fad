import numpy as np

from atomlens.locate import find_peaks, locate_atoms, suppress_close
from atomlens.simulate import ImagingConditions, Substitution, simulate_image


def test_suppression_keeps_the_best_of_close_points():
    xy = np.array([[0, 0], [1.5, 0], [3, 0], [10, 0]], float)
    keep = suppress_close(xy, np.array([0.5, 1.0, 0.9, 0.1]), min_distance=2)
    assert sorted(keep.tolist()) == [1, 3]


def test_a_flat_topped_blob_gives_one_peak():
    fg = np.zeros((40, 40))
    fg[10:16, 10:16] = 1.0  # saturated plateau
    fg[25:31, 25:31] = 1.0
    xy, _score = find_peaks(fg, min_distance_px=4, smooth_px=1.0)
    assert len(xy) == 2
    np.testing.assert_allclose(sorted(xy[:, 0]), [12, 27], atol=0.51)


def test_perfect_maps_give_every_atom_near_the_bound():
    sim = simulate_image(
        "graphene",
        shape=192,
        pixel_size=0.1,
        rng=3,
        conditions=ImagingConditions(dose_e_per_A2=1e5),
        defects=[Substitution("C", "Si", 0.03)],
    )
    atoms = locate_atoms(sim.masks, sim.image, pixel_size=0.1, class_names=sim.class_names)
    from atomlens.metrics import score_atoms

    s = score_atoms(atoms, sim.truth, shape=sim.image.shape, pixel_size=0.1)
    assert s["fp"] == 0 and s["fn"] == 0
    rmse_pm = np.sqrt(s["sq_err_A2"].mean()) * 100
    crlb_pm = np.sqrt(np.mean(sim.crlb_A() ** 2)) * 100
    assert rmse_pm < 1.6 * crlb_pm
    # classes come from the maps: the Si atoms are found as Si
    si_true = (sim.truth["class"] == "Si").sum()
    assert si_true > 0 and (atoms["class"] == "Si").sum() == si_true
    # columns cut by the border are kept and flagged when their centre is inside
    assert atoms["near_edge"].any()
    assert {"score", "intensity", "fit_sigma_x_A", "fit_sigma_y_A"} <= set(atoms.columns)


def test_positions_from_the_fit_the_network_or_their_mean():
    """Under an 8 Å amorphous film the Gaussian fit is pulled by the film's blobs; maps
    that mark the true columns (as a good network's would) keep them. ``positions``
    chooses; the atoms found are the same in all."""
    import pytest

    from atomlens.locate.atoms import detect_starts
    from atomlens.metrics import score_atoms
    from atomlens.simulate import Background

    sim = simulate_image(
        "graphene",
        shape=160,
        pixel_size=0.1,
        rng=5,
        conditions=ImagingConditions(dose_e_per_A2=1e5, background=Background(8.0)),
    )
    kw = {"pixel_size": 0.1, "class_names": sim.class_names}
    found = {
        p: locate_atoms(sim.masks, sim.image, positions=p, **kw) for p in ("fit", "network", "mean")
    }
    assert len(found["fit"]) == len(found["network"]) == len(found["mean"])
    score = {
        p: score_atoms(atoms, sim.truth, shape=sim.image.shape, pixel_size=0.1)
        for p, atoms in found.items()
    }
    missed = {p: s["fn"] for p, s in score.items()}
    rmse = {p: np.sqrt(s["sq_err_A2"].mean()) * 100 for p, s in score.items()}
    # the fit drags columns out of the 0.5 Å match radius (18 of 76 here)
    assert missed["network"] == 0 and missed["fit"] > 0.1 * score["fit"]["tp"]
    assert missed["network"] <= missed["mean"] < missed["fit"]
    assert rmse["network"] < 5 and rmse["network"] < rmse["mean"] < rmse["fit"]  # pm
    # columns whose disks the border cuts take the mean of the fit's centre and the cut
    # disk's; all others, near the border or not, sit on the maps' centroids
    net = found["network"]
    starts, _ = detect_starts(
        1.0 - sim.masks[0], min_distance_px=9, threshold=0.5, label_radius_px=5
    )
    xy = net[["x_px", "y_px"]].to_numpy()
    dist = np.hypot(*(xy[:, None] - starts[None]).transpose(2, 0, 1))
    d, own = dist.min(axis=1), starts[dist.argmin(axis=1)]
    # a disk (radius 5 px) the border cuts: its centroid within the radius + 1 px of it
    cut = np.minimum.reduce([own[:, 0], 159 - own[:, 0], own[:, 1], 159 - own[:, 1]]) < 6
    assert cut.any() and (net["near_edge"] & ~cut).any()
    assert d[~cut].max() < 1e-6
    assert d[cut].max() > 0.3
    with pytest.raises(
        ValueError, match="positions must be one of 'auto', 'network', 'fit', 'mean'"
    ):
        locate_atoms(sim.masks, sim.image, positions="peak", **kw)


def test_columns_centred_outside_the_image_are_left_out():
    """A network draws its disk around every column whose disk reaches into the image,
    also around one centred just outside (the training masks include them); how far a
    cut disk reaches inwards says on which side of the border its centre lies, and where."""
    from scipy import ndimage

    from atomlens.locate.atoms import detect_starts
    from atomlens.simulate.labels import render_masks

    inner = [(x, y) for x in (16.0, 32.0, 48.0) for y in (16.0, 32.0, 48.0)]
    # the image spans −0.5 … 63.5 px: centred outside by 2.5, 1.2 and 1.2 px …
    outside = [(-3.0, 24.0), (24.0, -1.7), (64.7, 40.0)]
    # … and inside by 1.0, 0.6 and 1.5 px, their disks cut by the border as well
    edge = [(0.5, 40.0), (40.0, 0.1), (62.0, 24.0)]
    xy = np.array(inner + outside + edge)
    masks = render_masks(
        xy, class_index=np.zeros(len(xy), int), n_classes=1, shape=(64, 64), radius_px=5.0
    )
    fg = ndimage.gaussian_filter(masks[1], 0.7)  # a network's soft disks
    probs = np.stack([1.0 - fg, fg])
    yy, xx = np.mgrid[:64, :64]
    image = 5.0 + sum(
        100.0 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 2.0**2)) for x, y in xy
    )
    image = image + np.random.default_rng(0).normal(0, 1.0, image.shape)
    want = list(range(len(inner))) + list(range(len(inner) + len(outside), len(xy)))
    for kw in ({}, {"image": image}):
        atoms = locate_atoms(probs, pixel_size=0.1, class_names=["C"], **kw)
        found = atoms[["x_px", "y_px"]].to_numpy(float)
        d = np.hypot(*(found[:, None] - xy[None]).transpose(2, 0, 1))
        assert sorted(d.argmin(axis=1).tolist()) == want, kw.keys()
        assert d.min(axis=1).max() < 5.0  # each within the 0.5 Å match radius of its own
        assert ((found >= -0.5) & (found <= 63.5)).all()
        # the columns kept whose disks are cut: where the cut disk (and, with the image, the
        # fit) puts them; their centroids lean 1.0–1.7 px inwards
        err = d[:, len(inner) + len(outside) :].min(axis=0)
        assert err.max() < 0.2, (kw.keys(), err)
    starts, _ = detect_starts(fg, min_distance_px=9, threshold=0.5, label_radius_px=5)
    lean = np.hypot(*(starts[:, None] - np.array(edge)[None]).transpose(2, 0, 1)).min(axis=0)
    assert lean.min() > 0.9, lean
