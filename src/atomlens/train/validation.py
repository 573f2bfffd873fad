"""Validation on atoms, not pixels: detection F1 and localisation RMSE against the truth."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from atomlens.metrics import score_atoms
from atomlens.pipeline.contrast import model_polarity
from atomlens.pipeline.finder import find_atoms
from atomlens.simulate.dataset import ConditionRanges, SimulatedDataset

__all__ = ["ValidationSet", "with_hidden"]


def with_hidden(
    truth: pd.DataFrame, /, *, hidden: pd.DataFrame | None
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The positions (``x_px, y_px``) of the truth's columns and then of the hidden ones,
    and which rows are hidden (the ``ignore`` of :func:`atomlens.metrics.score_atoms`);
    without hidden columns the truth as it is and None."""
    if hidden is None or len(hidden) == 0:
        return truth, None
    both = pd.concat([truth[["x_px", "y_px"]], hidden[["x_px", "y_px"]]], ignore_index=True)
    return both, np.r_[np.zeros(len(truth), bool), np.ones(len(hidden), bool)]


@dataclass
class ValidationSet:
    """Images with known atoms, scored through the whole find pipeline.

    Parameters
    ----------
    images : list of ndarray of shape (H, W)
        Raw images.
    truths : list of pandas.DataFrame
        Atoms tables (``x_px, y_px, class``) of the true columns.
    pixel_sizes : list of float
        Pixel size of each image [Å/px].
    match_radius_A : float
        A detection within this distance of a true column counts [Å].
    hidden : list of pandas.DataFrame, optional
        Per image, columns that are there but not in the truth (simulated below
        ``label_min_share``: :attr:`atomlens.simulate.SimulatedImage.hidden`); a detection
        on one counts neither way.
    """

    images: list[np.ndarray]
    truths: list[pd.DataFrame]
    pixel_sizes: list[float]
    match_radius_A: float = 0.5
    hidden: list[pd.DataFrame] | None = None

    def __post_init__(self) -> None:
        if self.hidden is not None and len(self.hidden) != len(self.images):
            raise ValueError(
                f"hidden must hold one table per image ({len(self.images)}), got "
                f"{len(self.hidden)}; pass None when no columns are left out."
            )

    @classmethod
    def simulated(
        cls, ranges: ConditionRanges, *, n_images: int = 4, shape: int = 192, seed: int = 10_000
    ) -> ValidationSet:
        """``n_images`` simulated with conditions drawn from ``ranges`` (its own seed)."""
        from dataclasses import replace

        ds = SimulatedDataset(replace(ranges, shape=shape), seed=seed)
        sims = [ds.sample(i) for i in range(n_images)]
        return cls(
            images=[s.image for s in sims],
            truths=[s.truth for s in sims],
            pixel_sizes=[s.pixel_size for s in sims],
            hidden=[s.hidden for s in sims],
        )

    @classmethod
    def from_pairs(
        cls, images: Sequence[np.ndarray], tables: Sequence[pd.DataFrame], *, pixel_size: float
    ) -> ValidationSet:
        """User images with their atoms tables, all at one pixel size [Å/px]."""
        return cls(list(images), list(tables), [float(pixel_size)] * len(images))

    def evaluate(self, model, /, *, device: str = "cpu") -> dict[str, float]:
        """F1, precision, recall and RMSE [pm] of ``model`` over all images together.

        Atoms whose truth column lies within 1 Å of the border are not counted either way
        (they are partly outside the image), nor are atoms on ``hidden`` columns.
        """

        tp = fp = fn = 0
        sq: list[np.ndarray] = []
        hidden = self.hidden or [None] * len(self.images)
        for im, truth, ps, hid in zip(
            self.images, self.truths, self.pixel_sizes, hidden, strict=True
        ):
            # simulated in the model's own contrast: no guessing (a blurred graphene
            # HAADF honeycomb skews negative, see atomlens.pipeline.contrast)
            found = find_atoms(
                im,
                model=model,
                pixel_size=ps,
                device=device,
                contrast=model_polarity(model.config.contrast),
            )
            truth, ignore = with_hidden(truth, hidden=hid)
            c = score_atoms(
                found,
                truth,
                shape=np.shape(im)[-2:],
                pixel_size=ps,
                radius_A=self.match_radius_A,
                ignore=ignore,
            )
            tp, fp, fn = tp + c["tp"], fp + c["fp"], fn + c["fn"]
            sq.append(c["sq_err_A2"])
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        all_sq = np.concatenate(sq) if sq else np.zeros(0)
        rmse_pm = float(np.sqrt(all_sq.mean()) * 100) if all_sq.size else float("nan")
        return {
            "f1": f1,
            "precision": prec,
            "recall": rec,
            "rmse_pm": rmse_pm,
            "tp": tp,
            "fp": fp,
            "fn": fn,
        }
