"""Helpers shared by the tests."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree


def assert_coordinates_close(actual: np.ndarray, expected: np.ndarray, *, atol: float) -> None:
    """Every expected point has an actual point within ``atol`` and vice versa (KD-tree)."""
    actual = np.asarray(actual, dtype=float).reshape(-1, 2)
    expected = np.asarray(expected, dtype=float).reshape(-1, 2)
    assert len(actual) == len(expected), f"{len(actual)} points, expected {len(expected)}"
    d, _ = cKDTree(actual).query(expected)
    assert np.max(d, initial=0.0) <= atol, f"max distance {np.max(d):.4g} > atol {atol}"


def nearest_neighbour_distances(xy: np.ndarray) -> np.ndarray:
    """Distance from each point to its nearest other point."""
    d, _ = cKDTree(xy).query(xy, k=2)
    return d[:, 1]


def centroids(image: np.ndarray, xy_px: np.ndarray, radius_px: float) -> np.ndarray:
    """Intensity-weighted centroids in discs of ``radius_px`` around ``xy_px`` (x, y)."""
    h, w = image.shape
    half = int(np.ceil(radius_px))
    off = np.arange(-half, half + 1)
    out = []
    for x, y in xy_px:
        cx, cy = int(round(x)), int(round(y))
        rows = cy + off
        cols = cx + off
        rr, cc = np.meshgrid(rows, cols, indexing="ij")
        disc = (rr - y) ** 2 + (cc - x) ** 2 <= radius_px**2
        v = image[np.clip(rr, 0, h - 1), np.clip(cc, 0, w - 1)] * disc
        out.append(((v * cc).sum() / v.sum(), (v * rr).sum() / v.sum()))
    return np.array(out)


EASY = dict(
    dose_range=(1e5, 1e6),
    film_thickness_A=(0.0, 0.0),
    probe="gaussian",
    drift_px=(0.0, 0.0),
    flyback_px=(0.0, 0.0),
    line_jitter_px=(0.0, 0.0),
)


#: The recipe of the tests' graphene models and ensembles (with an architecture of theirs).
TINY_GRAPHENE = dict(materials=["graphene"], pixel_size=0.25, crop=64, **EASY)


def train_tiny_model(out, *, steps: int = 120, **config):
    """Train the tests' small graphene model (0.25 Å/px, width 8, depth 2) into ``out``."""
    from atomlens.nn import UNetConfig
    from atomlens.train import Augmentation, TrainConfig
    from atomlens.train.recipe import train_model

    cfg = dict(
        steps=steps,
        batch_size=8,
        val_every=max(1, steps // 2),
        warmup_steps=10,
        lr=5e-3,
        augmentation=Augmentation(noise=0.1, background=0.1, blur_px=0.3),
    )
    cfg.update(config)
    return train_model(
        materials=["graphene"],
        pixel_size=0.25,
        out=out,
        overwrite=True,
        crop=64,
        architecture=UNetConfig(width=8, depth=2),
        n_validation=2,
        config=TrainConfig(**cfg),
        **EASY,
    )


def perturbed_ensemble(model, n: int = 2, scale: float = 0.02):
    """An ensemble of ``model`` and ``n − 1`` copies with weights perturbed by ``scale``
    (relative, seeded): distinct members that all still work."""
    import torch

    from atomlens.ensemble import Ensemble
    from atomlens.nn import UNet

    g = torch.Generator().manual_seed(1)
    nets = []
    for k in range(n):
        net = UNet(model.config.architecture)
        net.load_state_dict(model.network.state_dict())
        if k:
            with torch.no_grad():
                for p in net.parameters():
                    p.mul_(1 + scale * torch.randn(p.shape, generator=g))
        nets.append(net.eval())
    return Ensemble(nets, model.config)


def scored_errors(found, truth, *, shape, pixel_size: float):
    """:func:`atomlens.metrics.score_atoms` of ``found`` against ``truth``, its RMSE [pm]
    (x and y together, as ``atomlens demo`` reports it) and the signed (dx, dy) [px] of the
    pairs it counts (found − true), checked against its squared errors."""
    from atomlens.metrics import match_points, score_atoms

    s = score_atoms(found, truth, shape=shape, pixel_size=pixel_size)
    p = found[["x_px", "y_px"]].to_numpy(float)
    t = truth[["x_px", "y_px"]].to_numpy(float)
    m = match_points(p, t, radius=0.5 / pixel_size)  # score_atoms's pairs, before the margin
    kept = np.isin(m.true_index, s["true_index"])
    d = p[m.pred_index[kept]] - t[m.true_index[kept]]
    np.testing.assert_allclose(((d * pixel_size) ** 2).ravel(), s["sq_err_A2"], atol=1e-12)
    rmse_pm = 100 * float(np.sqrt(np.mean(s["sq_err_A2"])))
    return s, rmse_pm, d


def run_cli_in_fresh_python(args: list[str], *, cwd) -> tuple[int, bool, str]:
    """``atomlens ARGS`` in a new Python process (so that nothing is imported yet): its
    exit code, whether torch got imported, and its output."""
    import subprocess
    import sys

    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom atomlens.cli import app\n"
        f"r = CliRunner().invoke(app, {args!r})\n"
        "print(r.exit_code, 'torch' in sys.modules)\nprint(r.output)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    first, _, output = run.stdout.partition("\n")
    if not first:
        raise AssertionError(run.stdout + run.stderr)
    exit_code, torch_imported = first.split()
    return int(exit_code), torch_imported == "True", output
