"""Training data for ELIT from somewhere other than the frames' pseudo-labels: simulated
images with exact labels, mixed into the batches (:class:`MixedSource`), optionally in the
frames' own look (:class:`FrameStyledSource`).

Self-training cannot fix errors every member shares: under an amorphous film the members
agree on false atoms in the film and miss real ones, and pseudo-labels teach exactly that.
Simulation has exact labels but not the new frames' look. :class:`FrameStyledSource` joins
the two, without labels and without knowing what changed:

1. :func:`atomlens.fourier.bragg_split` separates a frame of a crystal into its **lattice
   part** (the Bragg reflections of its Fourier transform) and its **aperiodic part**
   (everything else: amorphous film, contamination, shot and detector noise, scan noise);
2. :func:`atomlens.elit.style.fit_pixel_noise` fits a Poisson–Gaussian model (variance
   ``a·S + b`` at mean signal ``S``) to the fine-scale residual of the aperiodic part, and
   separates the film from the noise (Wiener filter);
3. :func:`atomlens.elit.style.extra_blur` reads from the decay of the Bragg shells how much
   more the frame's lattice is blurred than a noise-free simulation's (a wider or
   aberrated probe);
4. :func:`atomlens.elit.style.fit_film_thickness` reads how thick an amorphous film
   explains the power spectrum of the frame's background beyond the noise;
5. :class:`FrameStyledSource` adds to noise-free simulated images of the material the
   model was trained for either crops of the aperiodic part, or an amorphous film drawn
   anew at the frames' thickness (or crops of their film estimate) with noise drawn from
   the model for each new image; blurred as the frames are when asked, scaled so that the
   ratio of aperiodic to lattice signal on the reflections the frames show is the frames'
   own, with the simulation's exact labels.

This needs crystalline frames (a lattice in the Fourier transform) and a model trained on
simulated images of the same material; :func:`atomlens.fourier.bragg_split` says when it
finds no lattice.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from scipy import ndimage as ndi

from atomlens.elit.style import (
    PixelNoise,
    _blurred_share,
    _film_references,
    _fit_film,
    _reference_splits,
    extra_blur,
    fit_pixel_noise,
)
from atomlens.fourier import BraggSplit, bragg_split, relative_sampling
from atomlens.simulate import ClassMap, ConditionRanges
from atomlens.simulate.scene import film_counts
from atomlens.train import SimulatedSource
from atomlens.train.recipe import make_ranges

__all__ = ["FrameStyledSource", "MixedSource", "simulated_source"]

logger = logging.getLogger(__name__)

#: Thickest film [Å] a drawn film is believed at: beyond it the background is not an
#: amorphous film (or the lattice's gain is off), and the frame's film estimate is used.
_MAX_FILM_A = 100.0


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
        (:class:`FrameStyledSource`).
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
        ranges = replace(ranges, shape=crop)
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


class FrameStyledSource:
    """Simulated images with exact labels that carry the frames' own aperiodic part.

    Each image is a noise-free simulation (the ranges without film; the simulation's
    expected counts, no shot or read noise) plus a random crop (with a random 90° rotation
    and flip) of one frame's aperiodic part (:func:`bragg_split`). The crop is scaled so
    that its ratio to the lattice signal is the frame's, measured on the shells of
    reflections the frame shows: a film or a wide probe hides higher orders that the
    noise-free simulation still has, and matching the whole lattice signal would make the
    borrowed background too strong. (How much of a simulation's lattice signal lies on
    those shells is measured once, on two 256² px simulations.) Film, contamination and
    noise therefore come from the data; lattice, labels and sampling from the simulation.

    With ``pixel_noise="modelled"`` noise is drawn for each image from the frame's
    Poisson–Gaussian model at the new image's own signal (shot noise is strongest on the
    atoms, and borrowed noise sits on the frame's atoms, not the simulated ones), and the
    film is either drawn anew for each image (``film="drawn"``: amorphous carbon imaged as
    the simulation's columns, :func:`atomlens.simulate.film_counts`, at the thickness
    :func:`atomlens.elit.style.fit_film_thickness` reads off the frame beyond what the
    noise-free simulation has itself) or a crop of the frame's film estimate
    (``film="estimated"``, :attr:`atomlens.elit.style.PixelNoise.film`, which loses the
    film's sharpest speckle). With ``match_blur`` the simulation is blurred by the frame's
    :func:`atomlens.elit.style.extra_blur` first.
    With ``match_sampling`` the simulations are made at the frames' own pixel size
    (:func:`relative_sampling`, the median over frames) instead of across the training
    range (±12 % by default): a model that must accept any lattice spacing in that range
    takes film blobs for atoms more readily, and the frames' spacing is known from their
    Fourier transform. A stated pixel size more than 3 % off the frames' lattice is
    logged.

    Parameters
    ----------
    ranges : ConditionRanges
        What to simulate (the model's own training ranges; ``shape`` is the crop side).
    frames : sequence of ndarray (H, W)
        Frames at the model's sampling.
    seed : int
        Seed of the image stream and the crops.
    pixel_noise : {"borrowed", "modelled"}
        The frames' own noise, or noise drawn from a model fitted to them.
    match_blur : bool
        Blur the simulations as much more as the frames' lattice is blurred.
    match_sampling : bool
        Simulate at the frames' measured pixel size rather than across the ranges'.
    film : {"estimated", "drawn"}
        With modelled pixel noise, crops of the frame's Wiener film estimate, or a film drawn
        anew at each frame's fitted thickness (borrowed noise brings the frame's film with
        it: :attr:`film` is then ``"borrowed"``).

    Attributes
    ----------
    blur_px : list of float
        Each lending frame's extra blur [px at the model's sampling] (0 without
        ``match_blur``).
    frame_sampling : list of float
        Each lending frame's pixel size over the model's [ratio] (NaN where its lattice
        could not be matched; empty without ``match_sampling``).
    sampling : float
        The median of those, at which the simulations are made (1 without
        ``match_sampling`` or when no frame could be matched: the ranges' own).
    film : str
        ``"drawn"``, ``"estimated"`` or ``"borrowed"``.
    film_thickness_A : list of float
        Each lending frame's fitted film thickness [Å of the simulation's amorphous carbon,
        read through the lattice's gain] (0 unless the film is drawn; NaN where it read
        more than 100 Å and the frame's film estimate is used instead).

    Raises
    ------
    ValueError
        When no frame shows a crystal lattice (names the frames).
    """

    in_channels = 1

    def __init__(
        self,
        ranges: Any,
        frames: Sequence[np.ndarray],
        *,
        seed: int = 0,
        pixel_noise: str = "modelled",
        match_blur: bool = True,
        match_sampling: bool = True,
        film: str = "estimated",
    ) -> None:
        if pixel_noise not in ("borrowed", "modelled"):
            raise ValueError(f"pixel_noise must be 'borrowed' or 'modelled', got {pixel_noise!r}.")
        if film not in ("drawn", "estimated"):
            raise ValueError(f"film must be 'drawn' or 'estimated', got {film!r}.")
        self.pixel_noise = pixel_noise
        self.film = film if pixel_noise == "modelled" else "borrowed"
        self.match_blur = bool(match_blur)
        self.match_sampling = bool(match_sampling)
        if not len(frames):
            raise ValueError("FrameStyledSource needs at least one frame.")
        self._clean = replace(ranges, film_thickness_A=(0.0, 0.0))
        self.crop = int(ranges.shape if np.isscalar(ranges.shape) else ranges.shape[0])
        # the frames' split does not depend on the seed: done once (see reseeded)
        self._frames: list[tuple[int, BraggSplit, np.ndarray, PixelNoise | None, float]] = []
        refused = []
        for i, fr in enumerate(frames):
            try:
                s = bragg_split(fr)
            except ValueError as err:
                refused.append(f"frame {i}: {err}")
                continue
            if not (s.lattice_std_at(s.shells) > 0 or s.lattice_std > 0):
                refused.append(f"frame {i}: its lattice signal is below the noise")
                continue
            ap = s.aperiodic - s.aperiodic.mean()
            pad = [(0, max(0, self.crop - n)) for n in ap.shape]
            if any(p for _, p in pad):  # smaller than a crop: mirror it out
                ap = np.pad(ap, pad, mode="symmetric")
            noise = None
            if pixel_noise == "modelled":
                noise = fit_pixel_noise(fr, s)
                film = noise.film - noise.film.mean()
                if any(p for _, p in pad):
                    film = np.pad(film, pad, mode="symmetric")
                noise = replace(noise, film=film.astype(np.float32))
            self._frames.append((i, s, ap.astype(np.float32), noise, float(np.mean(fr))))
        if not self._frames:
            raise ValueError(
                f"none of the {len(refused)} frames shows a crystal lattice, so their "
                f"background cannot be borrowed ({refused[0].rstrip('.')}). Use "
                "`simulated_background='simulated'` or pseudo-labels only."
            )
        if refused:
            logger.warning("frame-styled simulation skips %s", "; ".join(refused))
        self.frame_sampling: list[float] = []
        self.sampling = 1.0
        if self.match_sampling:
            self._match_sampling()
        self._seed(seed)

    def _match_sampling(self) -> None:
        """Simulate at the frames' own sampling: each frame's pixel size against strain-free
        simulations of each material (:func:`relative_sampling`), the median over frames."""
        ps = float(np.mean(self._clean.pixel_size_A))
        refs = []
        for m in self._clean.materials:  # one strain-free reference per material
            one = replace(
                self._clean,
                materials=(m,),
                defects={k: v for k, v in self._clean.defects.items() if k == m},
                max_strain=0.0,
            )
            refs += _reference_splits(one, 0, n=1)
        for _, s, *_ in self._frames:
            r = [relative_sampling(s, [ref]) for ref in refs]
            r = [v for v in r if np.isfinite(v)]
            self.frame_sampling.append(min(r, key=lambda v: abs(v - 1)) if r else float("nan"))
        seen = [v for v in self.frame_sampling if np.isfinite(v)]
        if not seen:
            logger.warning(
                "frame-styled simulation: no frame's lattice matches the model's crystal "
                "within 15 %% of the stated pixel size (7 %% where its first order is "
                "hidden); the simulations keep the training range of pixel sizes "
                "(%.4g–%.4g Å/px)",
                *self._clean.pixel_size_A,
            )
            return
        self.sampling = float(np.median(seen))
        if abs(self.sampling - 1) > 0.03:
            logger.warning(
                "the frames' lattice is %.1f %% %s than the model's crystal at the stated "
                "pixel size: is the pixel size right? The simulations follow the frames.",
                100 * abs(self.sampling - 1),
                "smaller" if self.sampling > 1 else "larger",
            )
        self._clean = replace(self._clean, pixel_size_A=(ps * self.sampling,) * 2)

    def _seed(self, seed: int) -> None:
        """The image stream of ``seed`` and each frame's gain against its references."""

        self.seed = int(seed)
        self._sim = SimulatedSource(self._clean, seed=seed)
        self.class_names = self._sim.class_names
        refs = _reference_splits(self._clean, seed)
        film_refs = _film_references(self._clean, seed) if self.film == "drawn" else []
        self._parts: list[tuple[np.ndarray, float, PixelNoise | None, float, float, float]] = []
        self.blur_px: list[float] = []
        self.film_thickness_A: list[float] = []
        for i, s, ap, noise, level in self._frames:
            blur = extra_blur(s, refs) if self.match_blur else 0.0
            self.blur_px.append(blur)
            # the ratio is matched on the shells the frame shows (a film or a wide probe
            # hides the others, which the noise-free simulation still has)
            shells = s.shells
            sd = s.lattice_std_at(shells)
            ref = [_blurred_share(r, shells, blur) for r in refs] or [0.0]
            if not (sd > 0 and min(ref) > 0):  # the simulation lacks those shells
                sd, ref = (s.lattice_std if s.lattice_std > 0 else sd), [1.0]
                logger.warning(
                    "frame %d: the simulated crystal has no reflections where the frame "
                    "has; matching the whole lattice signal instead",
                    i,
                )
            gain = float(np.mean(ref)) / sd
            thickness = 0.0
            if film_refs and noise is not None:
                thickness = _fit_film(s, film_refs, gain, blur)
                if thickness <= _MAX_FILM_A:
                    # the drawn film carries no noise: the model's whole variance is drawn
                    noise = replace(noise, film_noise_share=0.0)
                else:
                    logger.warning(
                        "frame %d: its background reads as %.3g Å of amorphous carbon, more "
                        "than the %.3g Å a drawn film is believed at (not an amorphous film, "
                        "or a lattice whose contrast the simulation does not match); its film "
                        "estimate is used",
                        i,
                        thickness,
                        _MAX_FILM_A,
                    )
                    thickness = float("nan")
            self.film_thickness_A.append(thickness)
            self._parts.append((ap, gain, noise, level, blur, thickness))
        if film_refs:
            logger.info(
                "frame-styled simulation: amorphous film fitted to the frames' background: %s Å",
                ", ".join(f"{t:.3g}" for t in self.film_thickness_A),
            )

    def reseeded(self, seed: int, /) -> FrameStyledSource:
        """The same frames' background on the image stream of another seed (no new split)."""
        if int(seed) == self.seed:
            return self
        new = copy.copy(self)
        new._seed(seed)
        return new

    def _styled(self, sim: Any, rng: np.random.Generator) -> np.ndarray:
        """``sim``'s noise-free image plus a random crop of one frame's aperiodic part (or,
        with modelled pixel noise, of its film, and noise drawn for the new image)."""
        ap, gain, noise, level, blur, thickness = self._parts[int(rng.integers(len(self._parts)))]
        h, w = sim.expected.shape
        y0 = int(rng.integers(ap.shape[0] - h + 1))
        x0 = int(rng.integers(ap.shape[1] - w + 1))
        turns, flip = int(rng.integers(4)), rng.random() < 0.5

        def crop_of(a: np.ndarray) -> np.ndarray:
            c = np.rot90(a[y0 : y0 + h, x0 : x0 + w], turns)
            return c[:, ::-1] if flip else c

        clean = sim.expected
        if blur > 0:  # the frame's lattice is blurred more than the simulation's
            clean = ndi.gaussian_filter(clean, blur, mode="reflect")
        k = float(clean.std()) * gain  # simulation units per frame unit
        if noise is None:
            return (clean + k * crop_of(ap)).astype(np.float32)
        if self.film == "drawn" and np.isfinite(thickness):  # a new film, imaged as sim was
            film = film_counts(sim, thickness, rng=rng)
            if blur > 0:
                film = ndi.gaussian_filter(film, blur, mode="reflect")
            signal = (clean + film) / k
        else:  # the simulation in the frame's units with the frame's film estimate
            signal = clean / k + crop_of(noise.film)
        signal += level - float(signal.mean())
        return (k * (signal + noise.draw(signal, rng))).astype(np.float32)

    def sample(self, index: int, /) -> tuple[np.ndarray, Any]:
        """One styled image [the simulation's units] and its true atoms (the simulation's
        ``truth`` table): a labelled validation image in the frames' style."""
        image, truth, _, _ = self.labelled(index)
        return image, truth

    def labelled(self, index: int, /) -> tuple[np.ndarray, Any, float, Any]:
        """:meth:`sample` with the image's pixel size [Å/px] (the frames' sampling, or
        drawn from the training range without ``match_sampling``) and the columns left
        out of the truth (:attr:`atomlens.simulate.SimulatedImage.hidden`: below the
        recipe's ``label_min_share``; an atom found on one counts neither way)."""
        sim = self._sim.dataset.sample(int(index))
        image = self._styled(sim, np.random.default_rng([self.seed, 2**31, int(index)]))
        return image, sim.truth, float(sim.pixel_size), sim.hidden

    def batch(self, step: int, /, *, batch_size: int) -> tuple[Any, Any]:
        """``batch_size`` styled images and their exact label masks."""
        ds = self._sim.dataset
        xs, ms = [], []
        for i in range(batch_size):
            sim = ds.sample(step * batch_size + i)
            t = ds._tensors(sim, i)
            x = self._styled(sim, np.random.default_rng([self.seed, int(step), i]))
            xs.append(torch.from_numpy(np.ascontiguousarray(x))[None])
            ms.append(t["masks"])
        return torch.stack(xs), torch.stack(ms)

    def describe(self) -> dict:
        """The simulation, the number of frames lent, what was read off them (noise models,
        extra blur [px], sampling against the model's [ratio] and the pixel sizes simulated
        [Å/px]) and the seed."""
        return {
            "source": "frame-styled simulation",
            "simulated": self._sim.describe(),
            "frames": len(self._parts),
            "pixel_noise": self.pixel_noise,
            "film": self.film,
            "film_thickness_A": [
                round(t, 3) if np.isfinite(t) else None for t in self.film_thickness_A
            ],
            "noise_models": [
                {"a": round(n.a, 6), "b": round(n.b, 6), "poisson_share": round(n.poisson_share, 3)}
                for _, _, _, n, _ in self._frames
                if n is not None
            ],
            "extra_blur_px": [round(b, 3) for b in self.blur_px],
            "sampling": round(self.sampling, 4),
            "frame_sampling": [
                round(v, 4) if np.isfinite(v) else None for v in self.frame_sampling
            ],
            "pixel_size_A": [round(float(v), 5) for v in self._clean.pixel_size_A],
            "seed": self.seed,
        }
