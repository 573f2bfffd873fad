"""The files a stream writes into ``out``, a frame at a time: ``atoms.csv`` and ``frames.csv``
through the atoms-table writer (:class:`atomlens.io.tables.TableWriter`, as
:func:`atomlens.pipeline.find_files` writes its tables), and ``decisions.jsonl``.

Each frame's rows are appended and the file closed before the next frame, so that an
interruption leaves complete rows.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from atomlens.elit.stream.record import FRAME_COLUMNS, FrameRecord
from atomlens.io.tables import TableWriter

__all__ = ["StreamWriter", "jsonable"]


def jsonable(v: Any, /) -> Any:
    """``v`` with NumPy values, tuples and paths as JSON types; NaN and ±inf as None."""
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [jsonable(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, Path):
        return str(v)
    return v


class StreamWriter:
    """``atoms.csv`` (every frame's atoms, ``frame`` first), ``frames.csv`` (one
    :meth:`FrameRecord.row` per frame) and ``decisions.jsonl`` (one decision per line) in
    ``directory``.

    The files are created empty by :meth:`open` (an existing one is replaced).
    ``frames.csv`` gets its header with the first frame, or at :meth:`close` when there
    was none; ``atoms.csv`` gets its columns from the first frame's atoms table and keeps
    them (a later table lacking one of them leaves it empty), and stays empty if no frame
    was processed.

    Parameters
    ----------
    directory : path
        Where to write; made by :meth:`open` if missing.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._frames: TableWriter | None = None
        self._atoms: TableWriter | None = None
        self._atoms_columns: list[str] | None = None
        self._decisions: IO[str] | None = None

    def open(self) -> None:
        """Create the directory and the three files, empty."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for name in ("atoms.csv", "frames.csv"):  # TableWriter appends
            (self.directory / name).write_bytes(b"")
        self._frames = TableWriter(self.directory, "frames", parquet=False)
        self._frames.write(pd.DataFrame(columns=FRAME_COLUMNS))  # the header if no frame comes
        self._decisions = open(self.directory / "decisions.jsonl", "w", encoding="utf-8")

    def decision(self, decision: dict[str, Any], /) -> None:
        """Append one decision as a line of JSON (nothing before :meth:`open` or after
        :meth:`close`)."""
        if self._decisions is None:
            return
        self._decisions.write(json.dumps(jsonable(decision), ensure_ascii=False) + "\n")
        self._decisions.flush()

    def frame(self, record: FrameRecord, /) -> None:
        """Append one frame's row to ``frames.csv`` and its atoms to ``atoms.csv``."""
        if self._frames is None:
            raise RuntimeError("StreamWriter.open() must come before frame().")
        self._frames.write(pd.DataFrame([record.row()], columns=FRAME_COLUMNS))
        atoms = record.atoms
        if self._atoms is None:
            if len(atoms.columns) == 0:
                return
            self._atoms_columns = ["frame", *[c for c in atoms.columns if c != "frame"]]
            self._atoms = TableWriter(self.directory, "atoms", parquet=False)
        self._atoms.write(atoms.assign(frame=record.index).reindex(columns=self._atoms_columns))

    def close(self) -> None:
        """Finish the files; later decisions and frames are not written."""
        for table in (self._frames, self._atoms):
            if table is not None:
                table.close()
        self._frames = self._atoms = None
        if self._decisions is not None:
            self._decisions.close()
            self._decisions = None
