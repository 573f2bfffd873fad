"""From atoms to physics: neighbour graphs, bonds and angles, rings, lattice fitting and
strain, perovskite polarisation, local descriptors and clustering, tracking across frames,
and the ASE bridge.

Positions in Å, with the atoms' σ carried into bond lengths, strain and displacements.
"""

from atomlens.analysis.ase_bridge import from_ase, to_ase, write_structure
from atomlens.analysis.descriptors import (
    Clusters,
    atom_patches,
    cluster_descriptors,
    radial_profiles,
    reduce_patches,
)
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
from atomlens.analysis.point_defects import point_defects
from atomlens.analysis.polarisation import b_site_displacements
from atomlens.analysis.rings import RingStats, find_rings
from atomlens.analysis.tracking import Tracks, track_atoms

__all__ = [
    "Clusters",
    "LatticeFit",
    "RingStats",
    "Tracks",
    "atom_patches",
    "b_site_displacements",
    "bond_angles",
    "bond_table",
    "cluster_descriptors",
    "coordination",
    "find_rings",
    "fit_lattice",
    "from_ase",
    "homogeneous_strain",
    "local_strain",
    "neighbour_graph",
    "pair_cutoffs",
    "point_defects",
    "radial_profiles",
    "reduce_patches",
    "reference_basis",
    "to_ase",
    "track_atoms",
    "write_structure",
]
