"""Atoms tables written frame by frame (CSV and Parquet), so that memory does not grow with
the number of frames of a stack."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from atomlens.io.csv_text import write_csv

logger = logging.getLogger(__name__)

_HEAP_SET = False


def limit_heap_growth() -> bool:
    """Make glibc return large freed blocks to the system at once (Linux only).

    glibc raises its mmap threshold each time a large block is freed, so later large arrays
    (image tiles, probability maps) come from the heap, where the small long-lived objects
    between them (each frame's table) pin it: measured with ``find_files`` on 512² frames,
    resident memory grew by 3.5 MB per frame; with the threshold fixed at 256 KiB it stays
    flat. Applies to the whole process, once; other platforms are left alone.

    Returns
    -------
    bool
        Whether the setting was applied (now or before).
    """
    global _HEAP_SET
    if _HEAP_SET:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_mmap_threshold = -3
        _HEAP_SET = bool(libc.mallopt(m_mmap_threshold, 256 * 1024))
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return False
    logger.debug("glibc mmap threshold fixed at 256 KiB: %s", _HEAP_SET)
    return _HEAP_SET


class TableWriter:
    """Append tables with the same columns to ``NAME.csv`` and ``NAME.parquet``.

    The first non-empty table fixes the columns and their types; later tables are brought
    to them (missing columns empty). Counts of rows and of ``class`` values are kept.

    Parameters
    ----------
    directory : path
        Where to write.
    name : str
        File stem (``atoms``, ``rejected``).
    parquet : bool
        Also write Parquet (needs pyarrow).
    """

    def __init__(self, directory: Path, name: str, *, parquet: bool = True) -> None:
        self.csv = Path(directory) / f"{name}.csv"
        self.parquet = Path(directory) / f"{name}.parquet" if parquet else None
        self.rows = 0
        self.classes: Counter[str] = Counter()
        #: rows per class whose Gaussian fit failed (``refined`` False)
        self.unrefined: Counter[str] = Counter()
        self._columns: list[str] | None = None
        self._dtypes: dict[str, Any] | None = None
        self._empty: pd.DataFrame | None = None
        self._pq: Any = None

    def write(self, table: pd.DataFrame) -> None:
        """Append ``table``."""
        if len(table) == 0:
            if self._empty is None:
                self._empty = table
            return
        if self._columns is None:
            self._columns = list(table.columns)
            self._dtypes = table.dtypes.to_dict()
        else:
            table = table.reindex(columns=self._columns)
            for c, dt in (self._dtypes or {}).items():
                if pd.api.types.is_bool_dtype(dt) and table[c].isna().any():
                    # a flag this table lacks stays empty: astype(bool) would make it True
                    table[c] = table[c].astype("boolean")
                elif table[c].dtype != dt:
                    try:
                        table[c] = table[c].astype(dt)
                    except (TypeError, ValueError):
                        pass
        write_csv(table, self.csv, mode="a", header=self.rows == 0)
        if self.parquet is not None:
            self._write_parquet(table)
        self.rows += len(table)
        if "class" in table:
            self.classes.update(table["class"].astype(str).tolist())
            if "refined" in table:
                bad = ~table["refined"].fillna(False).astype(bool)
                self.unrefined.update(table.loc[bad, "class"].astype(str).tolist())

    def _write_parquet(self, table: pd.DataFrame) -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            logger.warning("pyarrow is not installed: %s not written", self.parquet)
            self.parquet = None
            return
        if self._pq is None:
            t = pa.Table.from_pandas(table, preserve_index=False)
            self._pq = pq.ParquetWriter(str(self.parquet), t.schema)
        else:
            t = pa.Table.from_pandas(table, preserve_index=False, schema=self._pq.schema)
        self._pq.write_table(t)

    def close(self) -> None:
        """Finish the files (header-only / empty ones when nothing was written)."""
        if self._pq is not None:
            self._pq.close()
            self._pq = None
        if self.rows == 0:
            empty = self._empty if self._empty is not None else pd.DataFrame()
            empty.to_csv(self.csv, index=False)
            if self.parquet is not None:
                try:
                    empty.to_parquet(self.parquet, index=False)
                except ImportError:
                    pass


def read_table(csv: Path, parquet: Path | None) -> pd.DataFrame:
    """A table written by :class:`TableWriter` (Parquet when there, else CSV)."""
    if parquet is not None and parquet.exists():
        try:
            return pd.read_parquet(parquet)
        except ImportError:
            pass
    try:
        return pd.read_csv(csv)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def unrefined_phrase(counts: dict[str, int], unrefined: dict[str, int], /) -> str:
    """``"fit failed for <class> <share> %, …"`` over the classes with a failed fit, or
    ``"every fit converged"``."""
    parts = [
        f"{k} {100 * unrefined[k] / n:.1f} %"
        for k, n in counts.items()
        if n and unrefined.get(k, 0)
    ]
    return "fit failed for " + ", ".join(parts) if parts else "every fit converged"
