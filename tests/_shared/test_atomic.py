"""Atomic output directories (atomlens._shared.atomic)."""

import os
import stat

import pytest

from atomlens._shared.atomic import atomic_directory


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
