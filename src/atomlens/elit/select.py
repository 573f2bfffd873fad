"""Label-free choice of ensemble members for new data (ELIT's "programmatic selection").

In an automated experiment nobody can say which network suits the frames now coming in.
What can be measured without labels, per member, on the frames themselves:

- **agreement**: F1 of the member's atoms against the ensemble's consensus (a member that
  sees what the others see);
- **plausibility**: how far the member's nearest-neighbour distances are from those of the
  material it was trained on (Wasserstein distance [Å] to a noise-free simulation; the
  closest material for a model trained on several): a member that invents atoms between
  columns or merges neighbours fails this even when the others share its mistake;
- **confidence**: the member's mean predictive entropy around its atoms [nats] (weighted
  low: an over-confident member is not a good one);
- **stability**: variation of the member's atom count across frames (frames of one
  specimen should not gain or lose atoms wholesale).

Each criterion ranks the members; the weighted mean rank orders them. Plausibility weighs
most (see ``WEIGHTS``): it is the one signal the members cannot satisfy by agreeing.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Selection", "select"]

# Plausibility weighs most: on 22 shifted conditions (benchmarks/elit_shift.py's shifts and
# --harsh ones, two sets of frames) ranking by it alone chose a member +0.009 F1 above the
# median on average, agreement with the consensus +0.001, the earlier weights (agreement 2,
# plausibility 1) +0.003. Agreement, confidence and stability break its near-ties.
WEIGHTS = {"plausibility": 4.0, "agreement": 1.0, "confidence": 0.5, "stability": 0.5}


@dataclass(frozen=True)
class Selection:
    """Members ranked for a set of frames.

    Attributes
    ----------
    scores : pandas.DataFrame
        One row per member: ``agreement_f1`` (higher is better), ``nn_distance_A``,
        ``entropy``, ``count_cv`` (lower is better), the weighted ``rank_score`` (lower is
        better) and ``rank`` (1 = best).
    chosen : list of int
        The ``n_best`` best members.
    """

    scores: pd.DataFrame
    chosen: list[int]


def _reference_nns(config: Any) -> list[np.ndarray]:
    """Nearest-neighbour distances [Å] of every material in the model's provenance, one
    array per material, from a noise-free simulation (empty when the provenance names no
    material)."""
    return [_material_nn(str(m)) for m in (config.provenance or {}).get("materials") or []]


@functools.lru_cache(maxsize=32)
def _material_nn(material: str) -> np.ndarray:
    from atomlens.simulate import ImagingConditions, simulate_image

    sim = simulate_image(
        material, shape=256, pixel_size=0.1, rng=0, conditions=ImagingConditions(dose_e_per_A2=1e9)
    )
    return _nn(sim.truth[["x_A", "y_A"]].to_numpy(float))


def _nn(xy_A: np.ndarray) -> np.ndarray:
    from scipy.spatial import cKDTree

    if len(xy_A) < 2:
        return np.zeros(0)
    return cKDTree(xy_A).query(xy_A, k=2)[0][:, 1]


def select(
    ensemble: Any,
    frames: Sequence[np.ndarray] | np.ndarray,
    /,
    *,
    pixel_size: float,
    n_best: int = 1,
    device: str = "cpu",
) -> Selection:
    """Rank the members of an ensemble on unlabeled frames.

    Parameters
    ----------
    ensemble : Ensemble or path
        The ensemble.
    frames : sequence of ndarray (H, W), or ndarray (N, H, W)
        Frames from the new conditions.
    pixel_size : float
        [Å/px].
    n_best : int
        Members to choose.
    device : str
        Where the members run.

    Returns
    -------
    Selection
    """
    from scipy.stats import wasserstein_distance

    from atomlens.ensemble import consensus_atoms, decompose
    from atomlens.finder import _as_ensemble
    from atomlens.locate.atoms import detect_starts
    from atomlens.metrics import match_points

    ens = _as_ensemble(ensemble)
    n = len(ens)
    if not 1 <= n_best <= n:
        raise ValueError(f"n_best must be within 1–{n}, got {n_best}.")
    frames = [np.asarray(f, dtype=np.float32) for f in frames]
    if not frames:
        raise ValueError("select needs at least one frame.")
    c = ens.config
    min_sep = c.min_separation_A / pixel_size
    lab = max(c.label_radius_A / pixel_size, 1.0)
    refs = [r for r in _reference_nns(c) if len(r)]
    f1 = np.zeros((len(frames), n))
    ent = np.zeros((len(frames), n))
    counts = np.zeros((len(frames), n))
    nn_all: list[list[np.ndarray]] = [[] for _ in range(n)]
    for fi, frame in enumerate(frames):
        maps = ens.predict_members(frame, pixel_size=pixel_size, device=device)
        pred = decompose(maps, class_names=c.class_names)
        cons, _ = consensus_atoms(
            pred,
            maps,
            None,
            pixel_size=pixel_size,
            min_separation_A=c.min_separation_A,
            label_radius_A=c.label_radius_A,
            refine=False,
        )
        cxy = cons[["x_px", "y_px"]].to_numpy(float)
        for m in range(n):
            xy, _ = detect_starts(
                1.0 - maps[m, 0], min_distance_px=min_sep, threshold=0.5, label_radius_px=lab
            )
            counts[fi, m] = len(xy)
            hit = len(match_points(xy, cxy, radius=0.5 / pixel_size).pred_index) if len(xy) else 0
            f1[fi, m] = 2 * hit / max(len(xy) + len(cxy), 1)
            p = np.clip(maps[m], 1e-7, 1.0)
            h = -(p * np.log(p)).sum(axis=0)
            fg = maps[m, 0] < 0.5
            ent[fi, m] = float(h[fg].mean()) if fg.any() else float(h.mean())
            nn_all[m].append(_nn(xy * pixel_size))
    # a model trained on several materials: the distance to the closest one
    plaus = np.array(
        [
            min(wasserstein_distance(np.concatenate(v), r) for r in refs)
            if refs and len(np.concatenate(v))
            else np.nan
            for v in nn_all
        ]
    )
    cv = counts.std(axis=0) / np.maximum(counts.mean(axis=0), 1)
    table = pd.DataFrame(
        {
            "member": np.arange(n),
            "agreement_f1": f1.mean(axis=0),
            "nn_distance_A": plaus,
            "entropy": ent.mean(axis=0),
            "count_cv": cv,
        }
    )
    ranks = {
        "agreement": table["agreement_f1"].rank(ascending=False),
        "plausibility": table["nn_distance_A"].fillna(np.inf).rank(),
        "confidence": table["entropy"].rank(),
        "stability": table["count_cv"].rank(),
    }
    total = sum(WEIGHTS.values())
    table["rank_score"] = sum(WEIGHTS[k] * r for k, r in ranks.items()) / total
    table["rank"] = table["rank_score"].rank(method="first").astype(int)
    chosen = table.sort_values("rank")["member"].head(n_best).astype(int).tolist()
    return Selection(table, chosen)
