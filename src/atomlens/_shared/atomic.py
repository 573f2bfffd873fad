"""Atomic writes: outputs appear complete or not at all."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_directory", "check_output_directory"]


def check_output_directory(path: str | os.PathLike[str], /, *, overwrite: bool = False) -> None:
    """Raise ``FileExistsError`` if ``path`` is a file, or a non-empty directory and not
    ``overwrite``: what :func:`atomic_directory` refuses (call it before long work)."""
    final = Path(path)
    if final.exists() and not final.is_dir():
        raise FileExistsError(f"{final} exists and is not a directory; choose another `out`.")
    if final.is_dir() and any(final.iterdir()) and not overwrite:
        raise FileExistsError(
            f"{final} exists and is not empty; choose another output directory or pass "
            "`overwrite=True`."
        )


@contextmanager
def atomic_directory(path: str | os.PathLike[str], /, *, overwrite: bool = False) -> Iterator[Path]:
    """Build a directory under a temporary name and move it into place when done.

    Parameters
    ----------
    path : str or path-like
        The final directory.
    overwrite : bool
        Replace an existing, non-empty ``path``. Without it such a path raises
        ``FileExistsError``.

    Yields
    ------
    pathlib.Path
        The temporary directory to write into (beside ``path``, on the same file system),
        with the mode the user's umask gives a new directory (e.g. 0755 under umask 022),
        which ``path`` keeps. If the block raises, it is removed and ``path`` is left as it
        was.
    """
    final = Path(path)
    check_output_directory(final, overwrite=overwrite)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _fresh_directory(final.parent, f".{final.name}.partial-")
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        final.rename(old)
    tmp.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _fresh_directory(parent: Path, prefix: str, /) -> Path:
    """Create a new, uniquely named directory in ``parent`` with the umask's mode.

    Not :func:`tempfile.mkdtemp`: its 0700 would stay on the output directory once it is
    renamed into place, so nobody else could read the results.
    """
    for _ in range(100):
        path = parent / f"{prefix}{secrets.token_hex(4)}"
        try:
            path.mkdir(mode=0o777)  # the umask applies
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"could not create a new directory {prefix}… in {parent}")
