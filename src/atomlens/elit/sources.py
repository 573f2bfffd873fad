"""Training data for ELIT from somewhere other than the frames' pseudo-labels: simulated
images with exact labels (optionally in the frames' own look), mixed into the batches."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from atomlens.elit.restyle import FrameStyledSource
from atomlens.simulate import ClassMap, ConditionRanges
from atomlens.train import SimulatedSource
from atomlens.train.recipe import make_ranges

__all__ = ["MixedSource", "simulated_source"]

logger = logging.getLogger(__name__)


class MixedSource:
    """Batches of which ``share`` comes from ``extra`` (e.g. simulated images) and the rest
    from ``main``; ``extra``'s mask channels are mapped onto ``main``'s classes by name.

    Parameters
    ----------
    main, extra : BatchSource
        The two sources (same crop side).
    share : float
        Share of each batch from ``extra``, in [0, 1].
    """

    def __init__(self, main: Any, extra: Any, *, share: float) -> None:
        unknown = sorted(set(extra.class_names) - set(main.class_names))
        if unknown:
            raise ValueError(
                f"the simulated images have classes {unknown} the model does not know "
                f"({list(main.class_names)}); give simulated conditions with the model's classes."
            )
        self.main, self.extra, self.share = main, extra, float(share)
        self.class_names = tuple(main.class_names)
        self.in_channels = main.in_channels
        self._map = [0] + [1 + self.class_names.index(n) for n in extra.class_names]

    def batch(self, step: int, /, *, batch_size: int) -> tuple[Any, Any]:
        """``batch_size`` crops: ``round(share · batch_size)`` of them from ``extra``."""
        import torch

        k = int(round(self.share * batch_size))
        if k == 0:
            return self.main.batch(step, batch_size=batch_size)
        xs, ms = self.extra.batch(step, batch_size=k)
        full = torch.zeros((k, len(self.class_names) + 1, *ms.shape[-2:]), dtype=torch.float32)
        for j, target in enumerate(self._map):
            full[:, target] += ms[:, j].float()
        if k == batch_size:
            return xs.float(), full
        x, m = self.main.batch(step, batch_size=batch_size - k)
        return torch.cat([x, xs.to(x.dtype)]), torch.cat([m, full.to(m.dtype)])

    def describe(self) -> dict:
        """Both sources and the share."""
        return {
            "source": "mixed",
            "share": self.share,
            "main": self.main.describe(),
            "extra": self.extra.describe(),
        }


def simulated_source(
    config: Any,
    ranges: Any,
    crop: int,
    seed: int,
    styled_by: list[np.ndarray] | None = None,
    pixel_noise: str = "modelled",
    match_blur: bool = True,
    match_sampling: bool = True,
    film: str = "estimated",
) -> Any:
    """The simulated share's source: the model's training ranges at ``crop``, restyled by
    ``styled_by`` (frames at the model's sampling, with ``pixel_noise``) when given.

    Parameters
    ----------
    config : ModelConfig
        The model's config: its provenance records the simulated conditions (or at least
        the materials) it was trained on.
    ranges : ConditionRanges, optional
        The conditions to simulate instead of the model's own.
    crop : int
        Side of the simulated images [px].
    seed : int
        Seed of the simulation.
    styled_by : list of ndarray, optional
        Frames at the model's sampling whose background and noise the images take
        (:class:`atomlens.elit.restyle.FrameStyledSource`).
    pixel_noise, match_blur, match_sampling, film
        How the frames' look is carried over (:class:`atomlens.elit.AdaptConfig`).

    Returns
    -------
    BatchSource
    """

    if ranges is None and (config.provenance or {}).get("simulation"):
        ranges = ConditionRanges.from_dict(config.provenance["simulation"])
    if ranges is None:
        logger.warning(
            "adapt: the model's provenance does not record the simulated conditions it was "
            "trained on; its simulated share uses the training recipe's default ranges"
        )
        mats = (config.provenance or {}).get("materials") or []
        if not mats:
            raise ValueError(
                "simulated_share needs the materials the model was trained on; its provenance "
                "has none: pass adapt(simulated=ConditionRanges(…))."
            )
        ranges = make_ranges(
            materials=mats, pixel_size=config.pixel_size_A, crop=crop, classes=ClassMap()
        )
    else:
        from dataclasses import replace as _replace

        ranges = _replace(ranges, shape=crop)
    if styled_by is not None:
        return FrameStyledSource(
            ranges,
            styled_by,
            seed=seed,
            pixel_noise=pixel_noise,
            match_blur=match_blur,
            match_sampling=match_sampling,
            film=film,
        )
    return SimulatedSource(ranges, seed=seed)
