"""Shared test set-up: one CPU thread per test process, a fast Hypothesis profile, --runslow."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

os.environ.setdefault("MPLBACKEND", "Agg")
# one thread per test process: the suite runs one process per core (pytest-xdist), and
# BLAS/OpenMP pools of two threads each had made the σ model's test 1.7× slower there
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

settings.register_profile(
    "fast", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("thorough", max_examples=300, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))


def pytest_configure(config: pytest.Config) -> None:
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)  # any pool loaded before the variables above were read


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False, help="run slow tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory):
    """A small graphene model trained once per session on easy images (≈ 15 s on 1 core)."""
    from tests.common import train_tiny_model

    out = tmp_path_factory.mktemp("models") / "tiny"
    train_tiny_model(out, steps=120)
    return out


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir):
    from atomlens.ensemble import Model

    return Model.load(tiny_model_dir)
