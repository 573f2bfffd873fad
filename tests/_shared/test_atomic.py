"""Atomic output directories (atomlens._shared.atomic)."""

import os
import stat

import pytest

from atomlens._shared.atomic import atomic_directory, write_atomic


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o755), (0o077, 0o700), (0o002, 0o775)])
def test_atomic_directory_gets_the_users_umask(tmp_path, umask, mode):
    """Output directories were 0700 (tempfile.mkdtemp's mode, kept by the rename)."""
    old = os.umask(umask)
    try:
        with atomic_directory(tmp_path / "out") as tmp:
            (tmp / "a.csv").write_text("x\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == mode
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_atomic_directory_removes_its_temporary_directory_on_error(tmp_path):
    with pytest.raises(RuntimeError), atomic_directory(tmp_path / "out") as tmp:
        (tmp / "a.csv").write_text("x\n")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_write_atomic_gives_the_file_the_users_umask(tmp_path, umask, mode):
    """Files (model weights among them) were 0600, tempfile.mkstemp's mode, kept by the
    rename: nobody else could read a model saved into a shared directory."""
    old = os.umask(umask)
    try:
        write_atomic(tmp_path / "weights.bin", b"\x00" * 8)
        write_atomic(tmp_path / "weights.bin", "again")  # replacing keeps it so
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "weights.bin").stat().st_mode) == mode
    assert (tmp_path / "weights.bin").read_text() == "again"
    assert [p.name for p in tmp_path.iterdir()] == ["weights.bin"]
