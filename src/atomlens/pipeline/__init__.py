"""Finding atoms, end to end: the settings, the one input reader, the one :func:`find`, the
output files, and the Dask fan-out.

- :class:`FindSettings` -- threshold, minimum separation, ``p_min``, ``p_real_min``,
  refinement, which position is reported and whether atoms are bright or dark, validated
  once (:func:`atom_contrast` decides "auto");
- :func:`read_frames` -- files, folders, globs and stacks → images with a pixel size
  (estimated from the lattice where a file has none);
- :func:`find` -- an image, a stack or files with a model, ensemble or bundled name →
  :class:`FindResult` (``atomlens.find`` returns its atoms table);
- :func:`find_files` -- what ``atomlens find`` runs: tables, maps, figures and a report;
- :func:`find_frames` -- the frames of a stack on a Dask cluster.
"""

from atomlens.pipeline.contrast import ContrastDecision, atom_contrast
from atomlens.pipeline.distributed import find_frames
from atomlens.pipeline.files import BatchResult, find_files, save_find_results
from atomlens.pipeline.finder import (
    FindResult,
    find,
    find_atoms,
    find_frame,
    find_table,
    p_real_threshold,
)
from atomlens.pipeline.inputs import (
    check_field_of_view,
    check_resampling,
    read_frame_list,
    read_frames,
    with_estimated_pixel_size,
)
from atomlens.pipeline.settings import FindSettings

__all__ = [
    "BatchResult",
    "ContrastDecision",
    "FindResult",
    "FindSettings",
    "atom_contrast",
    "check_field_of_view",
    "check_resampling",
    "find",
    "find_atoms",
    "find_files",
    "find_frame",
    "find_frames",
    "find_table",
    "p_real_threshold",
    "read_frame_list",
    "read_frames",
    "save_find_results",
    "with_estimated_pixel_size",
]
