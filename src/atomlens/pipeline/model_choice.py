"""Which bundled model to use when the user names none: the HAADF default, or ``abf-any``
for bright-field images.

A network trained on bright columns can be given a bright-field image inverted
(:mod:`atomlens.pipeline.contrast`), but an ABF image is not an inverted HAADF image: its
contrast grows slowly with Z, so light columns (O, N) show beside heavy ones, and a HAADF
model trained to ignore faint columns misses them. When the user names no model,
:func:`default_model_for` takes ``abf-any`` for images whose atoms are dark by the user's
``contrast="dark"`` or by every file's detector (``signal_type`` BF, ABF), and says why.
The image's own look (skewness) does not decide: it was measured unsafe to act on alone
(:mod:`atomlens.pipeline.contrast`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

from atomlens.bundled import DEFAULT_BF_MODEL, DEFAULT_MODEL, bundled_directory, default_model
from atomlens.io import expand_inputs, read
from atomlens.pipeline.contrast import signal_polarity

__all__ = ["ModelChoice", "default_model_for"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelChoice:
    """The bundled model taken when none was named, and why.

    Attributes
    ----------
    path : Path
        Its directory.
    name : str
        Its bundled name.
    reason : str
        One sentence a user reads: what was chosen and why.
    """

    path: Path
    name: str
    reason: str


def _signal_types(
    inputs: str | PathLike[str] | Sequence[str | PathLike[str]], signal: str | int | None
) -> dict[str, str | None]:
    items = [inputs] if isinstance(inputs, str | PathLike) else list(inputs)
    # headers only: stacks and large files are read lazily
    return {str(f): read(f, signal=signal).signal_type for f in expand_inputs(items)}


def default_model_for(
    image: Any = None,
    /,
    *,
    contrast: str = "auto",
    signal: str | int | None = None,
) -> ModelChoice:
    """The bundled model for ``image`` when no model is named.

    Parameters
    ----------
    image : path, sequence of paths, HyperSpy signal or array, optional
        What will be searched: files are opened (headers only) for their detector's
        ``signal_type``, a HyperSpy signal gives its own; arrays say nothing.
    contrast : {"auto", "bright", "dark"}
        The user's setting: "dark" (BF, ABF) takes ``abf-any``, "bright" the HAADF default;
        "auto" decides by the files' detectors.
    signal : str or int, optional
        Which image of multi-signal files.

    Returns
    -------
    ModelChoice
        ``abf-any`` when the atoms are dark by the setting or by every file's detector and
        the model is installed, else the HAADF default (:data:`atomlens.bundled.DEFAULT_MODEL`).
        Files of both kinds together keep the HAADF default (inverting the BF ones for it)
        with a warning that names the BF files and the fix.
    """
    bf = bundled_directory(DEFAULT_BF_MODEL)
    haadf = ModelChoice(default_model(), DEFAULT_MODEL, f"using the bundled {DEFAULT_MODEL} model")
    if contrast == "dark":
        why = "the atoms are dark (contrast 'dark')"
        return _bf_or_default(bf, haadf, why)
    if contrast != "auto":
        return haadf
    if hasattr(image, "axes_manager") and hasattr(image, "metadata"):  # a HyperSpy signal
        st = image.metadata.get_item("Signal.signal_type", "") or None
        kinds = {"the signal": st}
    elif isinstance(image, str | PathLike) or (
        isinstance(image, Sequence)
        and len(image) > 0
        and all(isinstance(p, str | PathLike) for p in image)
    ):
        kinds = _signal_types(image, signal)
    else:
        return haadf
    dark = [f for f, st in kinds.items() if signal_polarity(st) == "dark"]
    if not dark:
        return haadf
    types = sorted({str(kinds[f]) for f in dark})
    if len(dark) == len(kinds):
        why = f"the detector is bright-field (signal type {', '.join(types)})"
        return _bf_or_default(bf, haadf, why)
    names = ", ".join(Path(f).name for f in dark[:3]) + (" …" if len(dark) > 3 else "")
    logger.warning(
        "%d of %d files (%s) come from a bright-field detector (%s) and the others not: "
        "all are searched with the bundled %s model, the bright-field ones inverted for it; "
        "for light columns (O, N) in ABF, search those files on their own (the bundled %s "
        "model is then taken) or pass `model=%r`.",
        len(dark),
        len(kinds),
        names,
        ", ".join(types),
        DEFAULT_MODEL,
        DEFAULT_BF_MODEL,
        DEFAULT_BF_MODEL,
    )
    return haadf


def _bf_or_default(bf: Path | None, haadf: ModelChoice, why: str) -> ModelChoice:
    if bf is None:
        return ModelChoice(
            haadf.path,
            haadf.name,
            f"{why}, but the bundled {DEFAULT_BF_MODEL} model is not installed: using "
            f"{DEFAULT_MODEL} on the inverted image",
        )
    return ModelChoice(bf, DEFAULT_BF_MODEL, f"{why}: using the bundled {DEFAULT_BF_MODEL} model")
