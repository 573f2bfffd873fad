"""Perovskite B-site displacements of 10 pm, recovered from a simulated image."""

import numpy as np
import pandas as pd
from ase import Atoms

from atomlens.analysis import b_site_displacements
from atomlens.locate.refine import refine_gaussian
from atomlens.simulate import ImagingConditions, simulate_image


def test_10_pm_b_site_shift_is_recovered_within_3_pm_at_2_pm_precision():
    a, shift = 3.905, 0.10  # Å: the TiO column moved +10 pm along x
    f = shift / a
    sto = Atoms(
        "SrTiO3",
        scaled_positions=[
            (0, 0, 0),
            (0.5 + f, 0.5, 0.5),
            (0.5 + f, 0.5, 0),
            (0.5, 0, 0.5),
            (0, 0.5, 0.5),
        ],
        cell=[a, a, a],
        pbc=True,
    )
    sim = simulate_image(
        sto,
        shape=256,
        pixel_size=0.1,
        rng=1,
        rotation_deg=0.0,
        zone_axis=(0, 0, 1),
        thickness_A=20.0,
        conditions=ImagingConditions(dose_e_per_A2=5e3),
    )
    cols = sim.truth[sim.truth["class"].isin(["Sr", "TiO"])].reset_index(drop=True)
    start = cols[["x_px", "y_px"]].to_numpy() + np.random.default_rng(0).normal(
        0, 0.5, (len(cols), 2)
    )
    fit = refine_gaussian(sim.image, start, radius_px=6.0, groups=pd.factorize(cols["class"])[0])
    found = pd.DataFrame(
        {
            "x_A": fit.xy[:, 0] * 0.1,
            "y_A": fit.xy[:, 1] * 0.1,
            "class": cols["class"],
            "sigma_x_A": fit.sigma_xy[:, 0] * 0.1,
            "sigma_y_A": fit.sigma_xy[:, 1] * 0.1,
        }
    )
    precision = np.median(found.loc[found["class"] == "TiO", "sigma_x_A"])
    assert 0.015 < precision < 0.025  # the dose gives about 2 pm per column
    d = b_site_displacements(found, a_class="Sr", b_class="TiO")
    assert len(d) >= 20
    assert abs(d["dx_A"].mean() - shift) < 0.03 and abs(d["dy_A"].mean()) < 0.03
    site_err = np.hypot(d["dx_A"] - shift, d["dy_A"])
    assert np.sqrt(np.mean(site_err**2)) < 0.03  # each site within 3 pm (RMS)
    per_axis = np.sqrt(np.mean(site_err**2) / 2)
    assert 0.7 < per_axis / np.median(d["sigma_dx_A"]) < 1.4  # σ says how good each is
