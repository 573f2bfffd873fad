"""Finding atoms, end to end: the settings, the one input reader, the one :func:`find`, the
output files, and the Dask fan-out.

- :class:`FindSettings` -- threshold, minimum separation, ``p_min``, ``p_real_min``,
  refinement, which position is reported and whether atoms are bright or dark, validated
  once (:func:`atom_contrast` decides "auto");
- :func:`read_frames` -- files, folders, globs and stacks → images with a pixel size
  (estimated from the lattice where a file has none);
- :func:`default_model_for` -- the bundled model when none is named (``abf-any`` for
  bright-field images);
- :func:`find` -- an image, a stack or files with a model, ensemble or bundled name →
  :class:`FindResult` (``atomlens.find`` returns its atoms table);
- :func:`find_files` -- what ``atomlens find`` runs: tables, maps, figures and a report;
- :func:`find_frames` -- the frames of a stack on a Dask cluster.
"""

from atomlens._shared.lazy import lazy_exports

# Loaded on first use (as atomlens.active does): the settings and the input checks stay
# light, so that the command line validates its options before torch is imported.
_WHERE = {
    "BatchResult": "files",
    "ModelChoice": "model_choice",
    "ContrastDecision": "contrast",
    "FindResult": "finder",
    "FindSettings": "settings",
    "atom_contrast": "contrast",
    "check_field_of_view": "inputs",
    "check_resampling": "inputs",
    "default_model_for": "model_choice",
    "find": "finder",
    "find_atoms": "finder",
    "find_files": "files",
    "find_frame": "finder",
    "find_frames": "distributed",
    "find_table": "finder",
    "p_real_threshold": "finder",
    "read_frame_list": "inputs",
    "read_frames": "inputs",
    "save_find_results": "files",
    "with_estimated_pixel_size": "inputs",
}

__all__ = sorted(_WHERE)

__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
