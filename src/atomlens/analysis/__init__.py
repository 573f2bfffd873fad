"""From atoms to physics: neighbour graphs, bonds and angles, rings, lattice fitting and
strain, and the ASE bridge.

Positions in Å, with the atoms' σ carried into bond lengths and strain. Local descriptors,
polarisation and tracking follow.
"""

from atomlens.analysis.ase_bridge import from_ase, to_ase, write_structure
from atomlens.analysis.graph import (
    bond_angles,
    bond_table,
    coordination,
    neighbour_graph,
    pair_cutoffs,
)
from atomlens.analysis.lattice import (
    LatticeFit,
    fit_lattice,
    homogeneous_strain,
    local_strain,
    reference_basis,
)
from atomlens.analysis.rings import RingStats, find_rings

__all__ = [
    "LatticeFit",
    "RingStats",
    "bond_angles",
    "bond_table",
    "coordination",
    "find_rings",
    "fit_lattice",
    "from_ase",
    "homogeneous_strain",
    "local_strain",
    "neighbour_graph",
    "pair_cutoffs",
    "reference_basis",
    "to_ase",
    "write_structure",
]
