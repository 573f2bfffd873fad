"""Every report test leaves no figure open, whatever it asserts."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _close_new_figures():
    import matplotlib.pyplot as plt

    before = set(plt.get_fignums())
    yield
    for num in set(plt.get_fignums()) - before:
        plt.close(num)
