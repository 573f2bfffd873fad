"""From atoms to physics: neighbour graphs, bonds and angles, rings, and the ASE bridge.

Positions in Å, with the atoms' σ carried into bond lengths. Lattice fitting and strain,
local descriptors and tracking follow.
"""

from atomlens.analysis.ase_bridge import from_ase, to_ase, write_structure
from atomlens.analysis.graph import (
    bond_angles,
    bond_table,
    coordination,
    neighbour_graph,
    pair_cutoffs,
)
from atomlens.analysis.rings import RingStats, find_rings

__all__ = [
    "RingStats",
    "bond_angles",
    "bond_table",
    "coordination",
    "find_rings",
    "from_ase",
    "neighbour_graph",
    "pair_cutoffs",
    "to_ase",
    "write_structure",
]
