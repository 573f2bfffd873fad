"""How fast does the simulator make 256×256 training images on one CPU core?

Prints, side by side from one run:

1. simulated 256×256 images per second on one core for several condition sets (median of
   repeats; the full on-the-fly path: conditions drawn, structure tiled, defects, probe,
   film, distortions, noise, masks, tensors);
2. the rate at which one core *trains* a small reference U-Net (≈0.3 M parameters, the size
   the "find atoms" issue asks for) on 256×256 images, and the ratio of the two: above 1,
   one simulating core keeps up with one training core, so training is not simulation-bound;
3. the column renderer against a dense baseline that evaluates every column's Gaussian over
   the whole frame: speed ratio and the largest difference between the two images.

Usage: ``python benchmarks/simulate_speed.py [--quick]``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from atomlens.simulate import (  # noqa: E402
    ConditionRanges,
    GaussianProbe,
    SimulatedDataset,
    Substitution,
    Vacancy,
)
from atomlens.simulate.imaging import render_columns  # noqa: E402

torch.set_num_threads(1)


def images_per_second(ranges: ConditionRanges, n: int, repeats: int) -> float:
    rates = []
    for r in range(repeats):
        ds = SimulatedDataset(ranges, seed=100 + r, length=n + 1)
        it = iter(ds)
        next(it)  # warm-up: caches (structures, Hankel matrices)
        t0 = time.perf_counter()
        for _ in it:
            pass
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates)


class _Block(nn.Sequential):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


class ReferenceUNet(nn.Module):
    """A small 3-level U-Net (24-48-96 channels), the size class atomlens' default targets."""

    def __init__(self, n_out: int = 3) -> None:
        super().__init__()
        self.e1, self.e2, self.e3 = _Block(1, 24), _Block(24, 48), _Block(48, 96)
        self.u2, self.d2 = nn.ConvTranspose2d(96, 48, 2, stride=2), _Block(96, 48)
        self.u1, self.d1 = nn.ConvTranspose2d(48, 24, 2, stride=2), _Block(48, 24)
        self.head = nn.Conv2d(24, n_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.e1(x)
        e2 = self.e2(nn.functional.max_pool2d(e1, 2))
        e3 = self.e3(nn.functional.max_pool2d(e2, 2))
        d2 = self.d2(torch.cat([self.u2(e3), e2], 1))
        d1 = self.d1(torch.cat([self.u1(d2), e1], 1))
        return self.head(d1)


def training_images_per_second(steps: int, batch: int = 8) -> tuple[float, int]:
    model = ReferenceUNet()
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 1, 256, 256)
    y = torch.randint(0, 3, (batch, 256, 256))
    times = []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if i:  # first step is warm-up
            times.append(time.perf_counter() - t0)
    return batch / statistics.median(times), n_params


def renderer_vs_dense(repeats: int) -> tuple[float, float, float]:
    rng = np.random.default_rng(0)
    n, shape, px = 600, (256, 256), 0.1
    xy = rng.uniform(-5, 261, (n, 2))
    w = rng.uniform(1, 20, n)
    prof = GaussianProbe(fwhm_A=0.8).image_profile(0.08)

    def ours() -> np.ndarray:
        return render_columns(xy, weights=w, profile=prof, shape=shape, pixel_size=px)

    def dense() -> np.ndarray:
        s2 = (prof.sigma_A / px) ** 2
        yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
        out = np.zeros(shape)
        for (x0, y0), wj in zip(xy, w, strict=True):
            out += wj * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * s2))
        return out / (2 * np.pi * prof.sigma_A**2)

    t_ours, t_dense = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a = ours()
        t_ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        b = dense()
        t_dense.append(time.perf_counter() - t0)
    diff = float(np.abs(a - b).max() / b.max())
    return statistics.median(t_ours), statistics.median(t_dense), diff


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few images, for a smoke run")
    args = parser.parse_args()
    n, repeats = (8, 1) if args.quick else (60, 3)

    presets = {
        "graphene, Gaussian probe, perfect scan, no film": ConditionRanges(
            probe="gaussian", film_thickness_A=0.0, line_jitter_px=0.0, drift_px=0.0, flyback_px=0.0
        ),
        "graphene + Si/vacancies, default random ranges": ConditionRanges(
            defects={"graphene": (Substitution("C", "Si", 0.01), Vacancy("C", 0.005))}
        ),
        "5 materials, aberrated probe only": ConditionRanges(
            materials=("graphene", "hbn", "mos2", "ws2", "srtio3"), probe="aberrated"
        ),
        "5 materials, default random ranges": ConditionRanges(
            materials=("graphene", "hbn", "mos2", "ws2", "srtio3")
        ),
    }
    print(f"atomlens simulate_speed — 256×256 images, 1 CPU core, median of {repeats}")
    rates = {}
    for name, ranges in presets.items():
        rates[name] = images_per_second(ranges, n, repeats)
        print(f"  {rates[name]:7.1f} images/s   {name}")

    train_rate, n_params = training_images_per_second(steps=3 if args.quick else 6)
    print(
        f"\nreference U-Net training ({n_params / 1e6:.2f} M parameters, batch 8, AdamW): "
        f"{train_rate:.1f} images/s on 1 core"
    )
    for name, rate in rates.items():
        print(f"  simulation / training = {rate / train_rate:5.1f}×   {name}")

    t_ours, t_dense, diff = renderer_vs_dense(repeats=2 if args.quick else 5)
    print(
        f"\ncolumn renderer (600 columns, 256×256): {t_ours * 1e3:.1f} ms vs dense "
        f"full-frame baseline {t_dense * 1e3:.1f} ms → {t_dense / t_ours:.0f}× faster, "
        f"max difference {diff:.1e} of the peak"
    )


if __name__ == "__main__":
    main()
