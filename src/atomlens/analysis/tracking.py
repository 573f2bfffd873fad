"""Atoms followed across frames with trackpy's linker: trajectories, drift, class changes.

Linking is trackpy's (Crocker–Grier with a search range and memory); atomlens only puts
positions in Å and adds what a microscopist asks of a movie: the specimen drift per frame
and the atoms whose class changes (a dopant hopping, a column losing an atom).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import pandas as pd

__all__ = ["Tracks", "track_atoms"]


@dataclass(frozen=True)
class Tracks:
    """Trajectories of atoms through a stack.

    Attributes
    ----------
    atoms : pandas.DataFrame
        The input table plus ``track`` (one id per trajectory).
    drift : pandas.DataFrame
        ``frame, drift_x_A, drift_y_A``: mean displacement of the tracked atoms relative to
        the first frame.
    transitions : pandas.DataFrame
        ``track, frame, from_class, to_class, x_A, y_A``: each change of class between
        consecutive appearances of a track.
    """

    atoms: pd.DataFrame
    drift: pd.DataFrame
    transitions: pd.DataFrame


def track_atoms(
    atoms: pd.DataFrame, /, *, search_range_A: float, memory: int = 1, drift: bool = True
) -> Tracks:
    """Link the atoms of consecutive frames into trajectories (trackpy).

    Parameters
    ----------
    atoms : pandas.DataFrame
        ``frame, x_A, y_A`` (and ``class``): e.g. ``atoms.csv`` of a stack.
    search_range_A : float
        Largest move of an atom between frames [Å]; below half the nearest-neighbour
        distance, and above the drift per frame plus the localisation error.
    memory : int
        Frames an atom may be missing and keep its track.
    drift : bool
        Estimate the drift (trackpy ``compute_drift``) and link again after removing it,
        so that a steady drift does not need a large search range.

    Returns
    -------
    Tracks
    """
    try:
        import trackpy as tp
    except ImportError:
        raise ImportError("tracking needs trackpy: pip install 'atomlens[analysis]'") from None
    if "frame" not in atoms:
        raise ValueError("the atoms table has no 'frame' column; tracking needs a stack.")
    tp.quiet()
    with warnings.catch_warnings():
        # trackpy 0.7 uses pandas API that pandas 3 deprecates; not the user's concern
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        return _track(tp, atoms, search_range_A, memory, drift)


def _track(
    tp: object, atoms: pd.DataFrame, search_range_A: float, memory: int, drift: bool
) -> Tracks:
    pos = ["x_A", "y_A"]
    table = atoms.reset_index(drop=True).copy()
    linked = tp.link_df(table, search_range_A, memory=memory, pos_columns=pos, t_column="frame")
    frames = sorted(table["frame"].unique())
    d = pd.DataFrame({"frame": frames, "x_A": 0.0, "y_A": 0.0}).set_index("frame")
    if drift and len(frames) > 1:
        d = tp.compute_drift(linked, pos_columns=pos).reindex(frames, fill_value=0.0)
        shifted = table.copy()
        shifted[pos] = table[pos].to_numpy() - d.loc[table["frame"], pos].to_numpy()
        relinked = tp.link_df(
            shifted, search_range_A, memory=memory, pos_columns=pos, t_column="frame"
        )
        linked = table.assign(particle=relinked["particle"].to_numpy())
        d = tp.compute_drift(relinked, pos_columns=pos).reindex(frames, fill_value=0.0) + d
    out = linked.rename(columns={"particle": "track"})
    drift_table = pd.DataFrame(
        {"frame": frames, "drift_x_A": d["x_A"].to_numpy(), "drift_y_A": d["y_A"].to_numpy()}
    )
    rows = []
    if "class" in out:
        for track, g in out.sort_values("frame").groupby("track"):
            cls = g["class"].astype(str).to_numpy()
            for k in range(1, len(g)):
                if cls[k] != cls[k - 1]:
                    r = g.iloc[k]
                    rows.append(
                        {
                            "track": int(track),
                            "frame": int(r["frame"]),
                            "from_class": cls[k - 1],
                            "to_class": cls[k],
                            "x_A": float(r["x_A"]),
                            "y_A": float(r["y_A"]),
                        }
                    )
    transitions = pd.DataFrame(
        rows, columns=["track", "frame", "from_class", "to_class", "x_A", "y_A"]
    )
    return Tracks(out, drift_table, transitions)
