"""Atomic writes: outputs appear complete or not at all."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["append_line", "atomic_directory", "check_output_directory", "write_atomic"]


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


def append_line(path: str | os.PathLike[str], line: bytes, /) -> None:
    """Append one line to ``path`` so that it is either all there or recognisably torn.

    The line (which must not contain a newline; one is added) goes out in a single
    ``write`` on a file opened with ``O_APPEND`` and is flushed to disk (``fsync``) before
    this returns. A process killed during the write can leave at most a last line without
    its newline; the next append starts a new line first, so a torn line never merges with
    a complete one, and readers drop a last line that has no newline.

    Parameters
    ----------
    path : str or path-like
        The file (created if missing).
    line : bytes
        One line, without a newline.
    """
    if b"\n" in line:
        raise ValueError("append_line writes one line; `line` holds a newline.")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        size = os.fstat(fd).st_size
        lead = b""
        if size:
            with open(path, "rb") as f:
                f.seek(size - 1)
                if f.read(1) != b"\n":
                    lead = b"\n"  # after a torn line: start afresh
        data = lead + line + b"\n"
        written = os.write(fd, data)
        while written < len(data):  # a short write (full disk, signal): finish it
            written += os.write(fd, data[written:])
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str | os.PathLike[str], data: str | bytes, /) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` through a temporary file beside it and a
    rename: readers see the old file or the whole new one, never a part. The file gets the
    mode the user's umask gives a new file (e.g. 0644 under umask 022), not
    :func:`tempfile.mkstemp`'s 0600, which the rename would keep."""
    path = Path(path)
    fd, tmp = _fresh_file(path.parent, f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fresh_file(parent: Path, prefix: str, /) -> tuple[int, Path]:
    """Create a new, uniquely named file in ``parent`` with the umask's mode; its open
    descriptor (for writing) and path."""
    for _ in range(100):
        path = parent / f"{prefix}{secrets.token_hex(4)}.tmp"
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
            return os.open(path, flags, 0o666), path
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a new file {prefix}… in {parent}")
