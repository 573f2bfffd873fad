"""The run record of an automated experiment, written as it happens.

A record directory holds:

- ``run.json``: settings, scalarizer, number of candidates, a checksum of their features;
- ``candidates.npy``: candidate positions ``(N, 2)`` as ``(x, y)`` [px] (instrument runs);
- ``inputs.npy``: the candidates as the models see them ``(N, D)``, in the caller's units
  (hypothesis-learning runs, :mod:`atomlens.active.hypotheses`);
- ``overview.npy``: the overview image (H, W), if any;
- ``energy.npy``: the spectra's energy axis (E,) [eV], if spectra are measured;
- ``path.csv``: one row per measurement, ``step, round, index, x_px, y_px, value,
  best_so_far, acquisition, why``;
- ``steps.jsonl``: one JSON line per measurement, the same plus the model summary and the
  maps file;
- ``raw.npy``: the raw measurements in step order, spectra (S, E) or values (S,);
- ``maps/step-NNNN.npz``: ``mean`` and ``variance`` (N,) over all candidates of the model
  that chose step NNNN (``maps/final.npz``: the last model's);
- ``path.png``, ``best_so_far.png``, ``maps.png``: the figures, when the run ends.

A hypothesis-learning run (``run.json`` with ``"kind": "hypotheses"``) writes the same files;
its ``why`` names the phase and the model (``seed``, ``warmup plateau``, ``greedy peak``,
``explore onset``, ``softmax peak``), its ``acquisition`` is the chosen model's predictive
standard deviation at the point, each ``steps.jsonl`` line holds the bandit's state (see
:func:`atomlens.active.hypotheses.learn_hypotheses`), and ``winner.json`` is written when the
run ends.

Every file is replaced atomically (written beside, then renamed), ``path.csv`` last: a step is
finished when its row is in ``path.csv``, and :meth:`RunRecord.finished` reads only finished
steps, so a run killed at any moment resumes cleanly.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from atomlens._shared.atomic import check_output_directory
from atomlens._shared.atomic import write_atomic as _write_atomic
from atomlens._shared.config import json_default
from atomlens.active.scalarizers import scalarizer_from_dict

__all__ = ["PATH_COLUMNS", "RunRecord"]

#: The columns of ``path.csv``.
PATH_COLUMNS = (
    "step",
    "round",
    "index",
    "x_px",
    "y_px",
    "value",
    "best_so_far",
    "acquisition",
    "why",
)


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


class RunRecord:
    """A run record directory (see the module docstring for its files).

    Use :meth:`open` to start or resume one and :meth:`read` to read one back.
    """

    def __init__(self, path: Path, meta: dict[str, Any]) -> None:
        self.path = path
        self.meta = meta
        self.positions: np.ndarray | None = None
        self.inputs: np.ndarray | None = None
        self.energy: np.ndarray | None = None
        self._rows: list[dict[str, Any]] = []
        self._steps: list[str] = []
        self._raw: list[Any] = []

    # -- opening ---------------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        /,
        *,
        meta: dict[str, Any],
        positions: np.ndarray | None,
        image: np.ndarray | None,
        energy: np.ndarray | None,
        resume: bool = False,
        overwrite: bool = False,
        inputs: np.ndarray | None = None,
    ) -> RunRecord:
        """Start a record in ``path``, or with ``resume`` continue the one there.

        ``inputs`` (N, D), when given, are saved as ``inputs.npy``: the candidates as the
        models see them (hypothesis learning).

        Raises
        ------
        FileExistsError
            ``path`` holds files and neither ``resume`` nor ``overwrite``.
        ValueError
            ``resume`` with settings or candidates other than the recorded ones.
        """
        path = Path(path)
        meta = json.loads(json.dumps(meta, default=json_default))
        if resume and (path / "run.json").is_file():
            rec = cls.read(path)
            if rec.meta != meta:
                diff = sorted(
                    k for k in set(meta) | set(rec.meta) if meta.get(k) != rec.meta.get(k)
                )
                raise ValueError(
                    f"{path} records another run (differs in {', '.join(diff)}); resume with "
                    "the recorded settings or choose another `out`."
                )
            rec._trim()
            return rec
        if resume:
            raise FileNotFoundError(f"{path} holds no run record (run.json) to resume.")
        check_output_directory(path, overwrite=overwrite)
        path.mkdir(parents=True, exist_ok=True)
        for old in ("path.csv", "steps.jsonl", "raw.npy", "run.json", "inputs.npy"):
            (path / old).unlink(missing_ok=True)
        (path / "maps").mkdir(exist_ok=True)
        for old in (path / "maps").glob("*.npz"):  # an overwritten run's maps
            old.unlink()
        rec = cls(path, meta)
        if positions is not None:
            _write_atomic(path / "candidates.npy", _npy_bytes(np.asarray(positions)))
            rec.positions = np.asarray(positions)
        if inputs is not None:
            _write_atomic(path / "inputs.npy", _npy_bytes(np.asarray(inputs, np.float64)))
            rec.inputs = np.asarray(inputs, np.float64)
        if image is not None:
            _write_atomic(path / "overview.npy", _npy_bytes(np.asarray(image, np.float32)))
        if energy is not None:
            _write_atomic(path / "energy.npy", _npy_bytes(np.asarray(energy, np.float64)))
            rec.energy = np.asarray(energy, np.float64)
        _write_atomic(path / "run.json", json.dumps(meta, indent=2).encode())
        _write_atomic(path / "path.csv", (",".join(PATH_COLUMNS) + "\n").encode())
        return rec

    @classmethod
    def read(cls, path: str | os.PathLike[str], /) -> RunRecord:
        """Read a record (finished steps only).

        Raises
        ------
        FileNotFoundError
            ``path`` holds no ``run.json``.
        """
        path = Path(path)
        if not (path / "run.json").is_file():
            raise FileNotFoundError(f"{path} holds no run record (run.json); check the path.")
        rec = cls(path, json.loads((path / "run.json").read_text()))
        if (path / "candidates.npy").is_file():
            rec.positions = np.load(path / "candidates.npy", allow_pickle=False)
        if (path / "energy.npy").is_file():
            rec.energy = np.load(path / "energy.npy", allow_pickle=False)
        if (path / "inputs.npy").is_file():
            rec.inputs = np.load(path / "inputs.npy", allow_pickle=False)
        with open(path / "path.csv", newline="") as f:
            rec._rows = list(csv.DictReader(f))
        steps = path / "steps.jsonl"
        rec._steps = steps.read_text().splitlines() if steps.is_file() else []
        raw = path / "raw.npy"
        rec._raw = list(np.load(raw, allow_pickle=False)) if raw.is_file() else []
        return rec

    def _trim(self) -> None:
        n = len(self._rows)
        self._steps = self._steps[:n]
        self._raw = self._raw[:n]

    # -- reading ---------------------------------------------------------------------------------
    def finished(self) -> dict[str, Any]:
        """The finished steps: ``indices``, ``values``, ``raw``, ``why``, ``acquisition``,
        ``round`` (lists in step order)."""
        rows = self._rows
        return {
            "indices": [int(r["index"]) for r in rows],
            "values": [float(r["value"]) for r in rows],
            "raw": list(self._raw[: len(rows)]),
            "why": [r["why"] for r in rows],
            "round": [int(r["round"]) for r in rows],
            "acquisition": [float(r["acquisition"]) for r in rows],
        }

    def step_lines(self) -> list[dict[str, Any]]:
        """The finished steps' ``steps.jsonl`` lines, parsed: the ``path.csv`` row plus
        ``model`` (the model's summary, or for a hypothesis-learning run the bandit's state)
        and ``maps`` (the maps file, or None)."""
        return [json.loads(line) for line in self._steps[: len(self._rows)]]

    def path_table(self) -> Any:
        """``path.csv`` as a pandas DataFrame."""
        # pandas is only needed to hand the table out
        import pandas as pd

        return pd.read_csv(self.path / "path.csv")

    def scalarizer(self) -> Any:
        """The recorded scalarizer (built-in ones only), or None for a table run."""
        d = self.meta.get("scalarizer")
        return None if d is None else scalarizer_from_dict(d)

    # -- writing ---------------------------------------------------------------------------------
    def append(
        self,
        *,
        step: int,
        round_: int,
        index: int,
        value: float,
        raw: Any,
        why: str,
        acquisition: float,
        summary: dict[str, Any] | None,
        maps: tuple[np.ndarray, np.ndarray] | None,
    ) -> None:
        """Record one finished measurement (maps, raw, steps.jsonl, then path.csv)."""
        maps_file = None
        if maps is not None:
            maps_file = f"maps/step-{step:04d}.npz"
            buf = io.BytesIO()
            np.savez(
                buf,
                mean=np.asarray(maps[0], np.float32),
                variance=np.asarray(maps[1], np.float32),
            )
            _write_atomic(self.path / maps_file, buf.getvalue())
        self._raw.append(np.asarray(raw, np.float64))
        _write_atomic(self.path / "raw.npy", _npy_bytes(np.stack(self._raw)))
        x, y = (math.nan, math.nan) if self.positions is None else self.positions[index]
        best = max([value] + [float(r["value"]) for r in self._rows])
        row = {
            "step": step,
            "round": round_,
            "index": index,
            "x_px": float(x),
            "y_px": float(y),
            "value": value,
            "best_so_far": best,
            "acquisition": acquisition,
            "why": why,
        }
        line = dict(row, model=summary, maps=maps_file)
        if math.isnan(acquisition):
            line["acquisition"] = None  # JSON has no NaN
        self._steps.append(json.dumps(line, default=json_default))
        _write_atomic(self.path / "steps.jsonl", ("\n".join(self._steps) + "\n").encode())
        self._rows.append({k: repr(v) if isinstance(v, float) else str(v) for k, v in row.items()})
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=PATH_COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(self._rows)
        _write_atomic(self.path / "path.csv", buf.getvalue().encode())

    def finish(self, result: Any, *, figures: bool = True) -> None:
        """Write the last maps as ``maps/final.npz`` and the figures of a finished run
        (``path.png``, ``best_so_far.png``, ``maps.png``)."""
        if result.mean is not None:
            buf = io.BytesIO()
            np.savez(
                buf,
                mean=np.asarray(result.mean, np.float32),
                variance=np.asarray(result.variance, np.float32),
            )
            _write_atomic(self.path / "maps" / "final.npz", buf.getvalue())
        if figures:
            # Matplotlib is heavy: the figures are drawn only at the end of a recorded run
            from atomlens.report.active_figures import explore_figures

            image = None
            if (self.path / "overview.npy").is_file():
                image = np.load(self.path / "overview.npy", allow_pickle=False)
            pngs = explore_figures(
                image=image,
                positions=self.positions,
                indices=result.indices,
                values=result.values,
                n_seed=int(self.meta["settings"]["n_seed"]),
                mean=result.mean,
                variance=result.variance,
            )
            for name, data in pngs.items():
                _write_atomic(self.path / name, data)
