"""The user's inputs (files, folders, glob patterns) as image files: no image is read, and
nothing heavy is imported, so that a wrong path is reported at once."""

from __future__ import annotations

import glob
from collections.abc import Sequence
from os import PathLike
from pathlib import Path

from atomlens.io.read import SUFFIXES

__all__ = ["expand_inputs"]


def expand_inputs(inputs: Sequence[str | PathLike[str]], /) -> list[Path]:
    """Turn files, folders (their image files, sorted) and glob patterns into files.

    Raises
    ------
    FileNotFoundError
        An input that is neither a file, a folder nor a pattern that matches.
    """
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in SUFFIXES)
            if not found:
                raise FileNotFoundError(f"{p} holds no image files ({', '.join(SUFFIXES)}).")
            files += found
        elif p.exists():
            files.append(p)
        elif any(c in str(item) for c in "*?["):
            found = sorted(Path(f) for f in glob.glob(str(item)) if Path(f).is_file())
            if not found:
                raise FileNotFoundError(f"{item}: the pattern matches no file.")
            files += found
        else:
            raise FileNotFoundError(f"{p}: no such file; check the path.")
    return files
