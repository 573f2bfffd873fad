"""Local descriptors and clustering: Si and C in graphene apart without labels."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from atomlens.analysis.descriptors import (
    atom_patches,
    cluster_descriptors,
    radial_profiles,
    reduce_patches,
)
from atomlens.metrics import match_points
from atomlens.simulate import ImagingConditions, Substitution, simulate_image


@pytest.mark.parametrize("dose", [1e4, 1e5])
def test_si_and_c_cluster_apart_from_found_atoms(tiny_model, dose):
    from atomlens.pipeline import find_atoms

    sim = simulate_image(
        "graphene",
        shape=320,
        pixel_size=0.1,
        rng=2,
        defects=[Substitution("C", "Si", density=0.03)],
        conditions=ImagingConditions(dose_e_per_A2=dose),
    )
    found = find_atoms(sim.image, model=tiny_model, pixel_size=0.1)
    m = match_points(
        found[["x_px", "y_px"]].to_numpy(), sim.truth[["x_px", "y_px"]].to_numpy(), radius=5
    )
    atoms = found.iloc[m.pred_index]
    species = sim.truth["class"].to_numpy()[m.true_index]
    inside = atoms[["x_px", "y_px"]].apply(lambda c: c.between(8, 311)).all(axis=1).to_numpy()
    atoms, species = atoms[inside], species[inside]  # whole patches only
    assert (species == "Si").sum() >= 8
    # a column-sized patch (the nearest neighbour is 1.42 Å away), rotation invariant
    feats = radial_profiles(atom_patches(sim.image, atoms, pixel_size=0.1, size_A=1.4))
    c = cluster_descriptors(feats)  # number of clusters by BIC
    assert c.n_clusters == 2
    assert adjusted_rand_score(species, c.labels) >= 0.95


def test_patches_sit_on_the_atom_and_pca_features_have_the_asked_size():
    img = np.zeros((40, 40))
    yy, xx = np.indices(img.shape)
    img += np.exp(-((xx - 20.3) ** 2 + (yy - 17.6) ** 2) / 8)
    import pandas as pd

    p = atom_patches(
        img, pd.DataFrame({"x_px": [20.3], "y_px": [17.6]}), pixel_size=0.1, size_A=1.0
    )
    assert np.unravel_index(np.argmax(p[0]), p[0].shape) == (7, 7)
    f = reduce_patches(
        np.repeat(p, 10, axis=0) + np.random.default_rng(0).normal(0, 0.01, (10, 15, 15)),
        n_components=3,
    )
    assert f.shape == (10, 3)
