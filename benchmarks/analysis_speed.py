"""Time of the analysis chain on 100,000 atoms: bond graph, rings, lattice fit, local strain.

Graphene positions (ASE, a = 2.46 Å) with 5 pm Gaussian noise and per-atom σ; each step
timed once (these are seconds-long steps) and the total compared with the 10 s target.

    python benchmarks/analysis_speed.py [--atoms N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from atomlens.analysis import (
    find_rings,
    fit_lattice,
    local_strain,
    neighbour_graph,
    reference_basis,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--atoms", type=int, default=100_000)
    args = ap.parse_args()
    from ase.build import graphene

    n = int(np.ceil(np.sqrt(args.atoms / 2)))
    xy = graphene(a=2.46, size=(n, n, 1)).get_positions()[: args.atoms, :2]
    rng = np.random.default_rng(0)
    xy = xy + rng.normal(0, 0.005, xy.shape)
    atoms = pd.DataFrame(
        {"x_A": xy[:, 0], "y_A": xy[:, 1], "class": "C", "sigma_x_A": 0.005, "sigma_y_A": 0.005}
    )
    times = {}
    t = time.perf_counter()
    g = neighbour_graph(atoms)
    times["bond graph"] = time.perf_counter() - t
    t = time.perf_counter()
    rings = find_rings(g)
    times["rings"] = time.perf_counter() - t
    t = time.perf_counter()
    fit = fit_lattice(atoms)
    times["lattice fit"] = time.perf_counter() - t
    t = time.perf_counter()
    strain = local_strain(fit, reference=reference_basis(2.46, 2.46, 60))
    times["local strain (with σ)"] = time.perf_counter() - t
    print(f"{len(atoms)} atoms, {g.number_of_edges()} bonds, rings {rings.counts}")
    for k, v in times.items():
        print(f"  {k:24} {v:7.2f} s")
    total = sum(times.values())
    print(f"  {'total':24} {total:7.2f} s   (target < 10 s: {total / 10:.2f}× the budget)")
    print(
        f"  median |exx| {np.nanmedian(np.abs(strain['exx'])):.5f}, "
        f"median σ_exx {np.nanmedian(strain['sigma_exx']):.5f}"
    )


if __name__ == "__main__":
    main()
