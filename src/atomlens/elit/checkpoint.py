"""Finished rounds of an adaptation on disk, so that an interrupted
:func:`atomlens.elit.adapt.adapt` resumes after its last finished round.

``adapt(…, checkpoint=DIR)`` keeps every finished round in ``DIR``; the same call run again
(same ensemble, frames, pixel size and settings) reads them back instead of training them
again, and any other call is refused the directory. :func:`default_checkpoint` is where
``atomlens adapt --out OUT`` keeps them, and :func:`finished_rounds` what a directory holds
so far.

Examples
--------
>>> ckpt = default_checkpoint("runs/adapted")
>>> ckpt.name
'.adapted.adapt-checkpoint'
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from atomlens._shared.config import json_default
from atomlens.elit.config import AdaptConfig
from atomlens.ensemble import Ensemble

__all__ = ["AdaptCheckpoint", "default_checkpoint", "finished_rounds"]

STATE_FILE = "state.json"


def default_checkpoint(out: str | PathLike[str]) -> Path:
    """The checkpoint directory of an adaptation whose result is saved to ``out``: the
    hidden directory ``.{name}.adapt-checkpoint`` beside it, as ``atomlens adapt --out``
    keeps it.

    Parameters
    ----------
    out : path
        Where the adapted ensemble will be saved.

    Returns
    -------
    Path
        ``out.parent / f".{out.name}.adapt-checkpoint"``; remove it once ``out`` is written.
    """
    out = Path(out)
    return out.parent / f".{out.name}.adapt-checkpoint"


def finished_rounds(path: str | PathLike[str]) -> pd.DataFrame | None:
    """The history of the rounds finished in the checkpoint at ``path`` so far (the rows of
    :attr:`AdaptResult.history`, round 0 first), or None when it holds none. Read as it is,
    without checking which adaptation it belongs to.

    Parameters
    ----------
    path : path
        A checkpoint directory (``adapt(…, checkpoint=path)``).

    Returns
    -------
    pandas.DataFrame or None
    """
    state_file = Path(path) / STATE_FILE
    if not state_file.exists():
        return None
    state = json.loads(state_file.read_text())
    return pd.DataFrame(_history_rows(state))


def history_records(history: pd.DataFrame) -> list[dict[str, Any]]:
    """The history as JSON-ready records (NaN → None)."""
    return [
        {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in row.items()}
        for row in history.astype(object).to_dict("records")
    ]


def _history_rows(state: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: (np.nan if v is None else v) for k, v in row.items()} for row in state["history"]]


class AdaptCheckpoint:
    """The finished rounds of one :func:`atomlens.elit.adapt.adapt` run, in a directory.

    ``state.json`` holds what the run is (a fingerprint of the ensemble's weights, the
    frames, the pixel size and the settings), the history and the round whose ensemble is
    kept, and ``round{k}/`` that ensemble (safetensors + JSON). The ensemble is written
    first and the state last, each atomically, so an interruption leaves the previous
    round's state valid. ``adapt(…, checkpoint=path)`` makes one of these itself; build one
    to read a run's rounds back as ``adapt`` does.

    Parameters
    ----------
    path : path
        The directory (created on the first :meth:`save`).
    ensemble : Ensemble
        The ensemble being adapted (before any round).
    frames : list of ndarray (H, W)
        All frames given to ``adapt``, held-out ones included.
    pixel_size : float
        [Å/px].
    config : AdaptConfig
        The settings.

    Attributes
    ----------
    path : Path
        The directory.
    fingerprint : str
        SHA-256 of the frames, the ensemble's weights, the pixel size and the settings:
        the run the directory belongs to.
    """

    def __init__(
        self,
        path: str | PathLike[str],
        /,
        *,
        ensemble: Any,
        frames: list[np.ndarray],
        pixel_size: float,
        config: AdaptConfig,
    ) -> None:
        self.path = Path(path)
        h = hashlib.sha256()
        for f in frames:
            h.update(np.ascontiguousarray(f, dtype=np.float32).tobytes())
        for net in ensemble.networks:
            for v in net.state_dict().values():
                h.update(v.detach().cpu().numpy().tobytes())
        h.update(json.dumps([pixel_size, asdict(config)], sort_keys=True, default=str).encode())
        self.fingerprint = h.hexdigest()
        self.kept_round: int | None = None  # the round whose ensemble is on disk

    def load(self) -> tuple[Any, list[dict[str, Any]], bool] | None:
        """What was saved, or None when nothing was saved yet.

        Returns
        -------
        ensemble : Ensemble or None
            The ensemble of the last kept round (None: no round was kept).
        history : list of dict
            One row per finished round (round 0 first; NaN where the JSON has null).
        done : bool
            The adaptation finished (all rounds, stable, or a round undone).

        Raises
        ------
        ValueError
            The directory is not empty but holds no adapt state, or belongs to another
            adaptation (other ensemble, frames, pixel size or settings).
        """
        state_file = self.path / STATE_FILE
        if not state_file.exists():
            if self.path.exists() and any(self.path.iterdir()):
                raise ValueError(
                    f"checkpoint {self.path} is not empty and holds no adapt state; give an "
                    "empty or new directory."
                )
            return None
        state = json.loads(state_file.read_text())
        if state.get("fingerprint") != self.fingerprint:
            raise ValueError(
                f"checkpoint {self.path} belongs to another adaptation (other ensemble, frames, "
                "pixel size or settings); remove it to start over, or give another "
                "`checkpoint`."
            )
        history = _history_rows(state)
        self.kept_round = state.get("ensemble_round")
        ens = Ensemble.load(self.path / f"round{self.kept_round}") if self.kept_round else None
        return ens, history, bool(state.get("done"))

    def save(self, ensemble: Any, history: list[dict[str, Any]], *, done: bool) -> None:
        """Keep ``ensemble`` as the last round's (None: keep the previous round's) and the
        history.

        Parameters
        ----------
        ensemble : Ensemble or None
            The ensemble of the round just finished, or None when it was undone.
        history : list of dict
            The history so far; its last row is the round just finished.
        done : bool
            No round will follow.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        state_file = self.path / STATE_FILE
        prev = self.kept_round
        rnd = int(history[-1]["round"]) if ensemble is not None else prev
        if ensemble is not None:
            ensemble.save(self.path / f"round{rnd}", overwrite=True)
        state = {
            "fingerprint": self.fingerprint,
            "ensemble_round": rnd,
            "done": done,
            "history": history_records(pd.DataFrame(history)),
        }
        tmp = state_file.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(state, indent=1, default=json_default))
        os.replace(tmp, state_file)
        self.kept_round = rnd
        if prev and prev != rnd:  # the older round's ensemble is no longer needed
            shutil.rmtree(self.path / f"round{prev}", ignore_errors=True)
