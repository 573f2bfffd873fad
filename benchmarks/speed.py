"""Speed of finding atoms on a CPU: atomlens ``find`` against a bare AtomAI-shaped ensemble.

Per frame of simulated graphene (512² and 2048² px at 0.2 Å/px, the bundled ``graphene``
ensemble's own sampling, so nothing is resampled), with 1 and 2 CPU threads, side by
side from one run (interleaved repeats, medians):

- atomlens: ``find`` on the frame's ``.npy`` file with the 4-member bundled ensemble,
  everything included (reading, normalisation, the members' maps, peaks, consensus,
  Gaussian refinement, σ, the calibration's ``p_real``), and the atoms table written to
  CSV; its time per stage (``FindResult.seconds``);
- the reference: an ensemble of 4 AtomAI-shaped U-Nets (AtomAI's ``Unet`` as its
  documentation describes it, written here, not installed: 16/32/64/128 filters, 1, 2, 2
  conv layers per level and a dilated bottleneck of 3, batch norm, ReLU, bilinear
  up-sampling, 594 k parameters each) doing bare inference only: the normalised frame
  through each network in one whole-frame pass (as AtomAI predicts), ``torch.no_grad``,
  softmax; no atoms, no uncertainty, nothing written. Weights are random (the
  arithmetic is the same);
- the ratio atomlens / reference (target ≤ 1.0: atomlens no slower), and the same
  reference run in channels-last layout (what atomlens does to its own networks), as a
  second, harder comparison;
- F1 and RMSE of the atoms found against the simulated truth.

``--more`` adds the older figures: refinement throughput against a per-atom
``curve_fit`` loop, matching speed and training steps per second. ``--model`` times another
graphene model (a directory, e.g. a candidate from ``scripts/train_bundled.py --out``).

    python benchmarks/speed.py [--quick] [--sides 512,2048] [--threads 1,2] [--repeats 3]
        [--more] [--model NAME|DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import curve_fit
from torch import nn

from atomlens.ensemble import Ensemble, Model, ModelConfig
from atomlens.inference import inference_precision
from atomlens.io.csv_text import write_csv
from atomlens.locate import locate_atoms, refine_gaussian
from atomlens.metrics import score_atoms
from atomlens.nn import UNet, UNetConfig
from atomlens.pipeline import find
from atomlens.simulate import ImagingConditions, Substitution, simulate_image
from atomlens.train import SimulatedSource, TrainConfig, Trainer

STAGES = ("read", "normalise", "network", "peaks", "consensus", "refinement", "sigma", "write")


class _Block(nn.Sequential):
    """AtomAI's ConvBlock: n × (3×3 conv, batch norm, ReLU); dilated when asked."""

    def __init__(self, cin: int, cout: int, n: int, dilations: tuple[int, ...] = ()) -> None:
        layers: list[nn.Module] = []
        for i in range(n):
            d = dilations[i] if dilations else 1
            layers += [
                nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=d, dilation=d),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]
        super().__init__(*layers)


class _Dilated(nn.Module):
    """AtomAI's DilatedBlock: dilated convolutions in sequence, their outputs summed."""

    def __init__(self, cin: int, cout: int, dilations: tuple[int, ...] = (2, 4, 6)) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            _Block(cin if i == 0 else cout, cout, 1, (d,)) for i, d in enumerate(dilations)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = 0
        for layer in self.layers:
            x = layer(x)
            out = out + x
        return out


class _Up(nn.Module):
    """AtomAI's UpsampleBlock: bilinear 2× up-sampling, then a 1×1 convolution."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="bilinear"))


class ReferenceUNet(nn.Module):
    """The AtomAI-shaped U-Net (594 k parameters for 16 filters)."""

    def __init__(self, n_out: int = 3, f: int = 16) -> None:
        super().__init__()
        self.c1, self.c2, self.c3 = _Block(1, f, 1), _Block(f, 2 * f, 2), _Block(2 * f, 4 * f, 2)
        self.bottleneck = _Dilated(4 * f, 8 * f)
        self.u1, self.c4 = _Up(8 * f, 4 * f), _Block(8 * f, 4 * f, 2)
        self.u2, self.c5 = _Up(4 * f, 2 * f), _Block(4 * f, 2 * f, 2)
        self.u3, self.c6 = _Up(2 * f, f), _Block(2 * f, f, 1)
        self.head = nn.Conv2d(f, n_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c1 = self.c1(x)
        c2 = self.c2(F.max_pool2d(c1, 2))
        c3 = self.c3(F.max_pool2d(c2, 2))
        b = self.bottleneck(F.max_pool2d(c3, 2))
        u = self.c4(torch.cat([self.u1(b), c3], 1))
        u = self.c5(torch.cat([self.u2(u), c2], 1))
        u = self.c6(torch.cat([self.u3(u), c1], 1))
        return self.head(u)


def reference_ensemble(n: int = 4, n_out: int = 3) -> list[ReferenceUNet]:
    torch.manual_seed(0)
    return [ReferenceUNet(n_out).eval() for _ in range(n)]


def reference_predict(
    nets: list[nn.Module], image: np.ndarray, channels_last: bool, bf16: bool = False
) -> None:
    """Bare inference as AtomAI does it: normalise, one whole-frame pass per member
    (``bf16``: under bfloat16 autocast, which AtomAI does not do on a CPU)."""
    a = image.astype(np.float32)
    lo, hi = np.percentile(a, (1, 99.8))
    x = torch.from_numpy(((a - lo) / (hi - lo)).astype(np.float32))[None, None]
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for net in nets:
            torch.softmax(net(x).float(), dim=1)


def atomlens_find(
    ens: Ensemble, path: Path, out: Path, precision: str = "auto"
) -> tuple[dict[str, float], object]:
    res = find(path, model=ens, pixel_size=0.2, precision=precision)
    t = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "atoms.csv.part"
    # as `atomlens find` writes its atoms.csv (pipeline.files): 6 significant digits
    write_csv(res.atoms, tmp, mode="w")
    os.replace(tmp, out / "atoms.csv")
    seconds = dict(res.seconds)
    seconds["write"] = time.perf_counter() - t
    return seconds, res


def _f1_rmse(res, sim) -> tuple[float, float]:
    sc = score_atoms(res.atoms, sim.truth, shape=sim.image.shape, pixel_size=0.2)
    f1 = 2 * sc["tp"] / max(2 * sc["tp"] + sc["fp"] + sc["fn"], 1)
    return f1, float(np.sqrt(np.mean(sc["sq_err_A2"]))) * 100


def compare(
    ens: Ensemble, sides: list[int], threads: list[int], repeats: int, name: str = "graphene"
) -> None:
    refs = reference_ensemble(len(ens), ens.config.architecture.n_classes + 1)
    refs_cl = [ReferenceUNet(ens.config.architecture.n_classes + 1).eval() for _ in range(len(ens))]
    for a, b in zip(refs, refs_cl, strict=True):
        b.load_state_dict(a.state_dict())
        b.to(memory_format=torch.channels_last)
    n_ref = sum(p.numel() for p in refs[0].parameters())
    n_al = ens.networks[0].n_parameters()
    used = inference_precision("auto", "cpu")
    print(
        f"atomlens find: {name} ensemble, {len(ens)} members × {n_al / 1e3:.0f} k "
        f"parameters, everything (read, maps, peaks, consensus, refinement, σ, p_real, write); "
        f"precision 'auto' = {used} on this CPU; 'f32': precision='float32'"
    )
    print(
        f"reference: {len(refs)} AtomAI-shaped U-Nets × {n_ref / 1e3:.0f} k parameters, bare "
        "whole-frame inference; load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    header = (
        f"{'frame':>6} {'thr':>3} | {'atomlens s':>10} {'ref s':>6} {'ratio':>5} | "
        f"{'f32 s':>6} {'ratio':>5} | {'c-l s':>6} {'ratio':>5} | {'bf16 s':>6} {'ratio':>5} | "
        + " ".join(f"{s[:7]:>7}" for s in STAGES)
        + " | atoms   F1   RMSE pm | f32: F1  RMSE"
    )
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        for side in sides:
            sim = simulate_image(
                "graphene",
                shape=side,
                pixel_size=0.2,
                rng=side,
                conditions=ImagingConditions(dose_e_per_A2=1e5),
                defects=[Substitution("C", "Si", 0.01)],
            )
            path = Path(tmp) / f"graphene-{side}.npy"
            np.save(path, sim.image)
            out_dir = Path(tmp) / "out"
            runs = {
                "atomlens": partial(atomlens_find, ens, path, out_dir),
                "f32": partial(atomlens_find, ens, path, out_dir, "float32"),
                "ref": partial(reference_predict, refs, sim.image, False),
                "c-l": partial(reference_predict, refs_cl, sim.image, True),
                "bf16": partial(reference_predict, refs_cl, sim.image, True, bf16=True),
            }
            for n_threads in threads:
                torch.set_num_threads(n_threads)
                for run in runs.values():  # warm-up: allocations, kernel choices
                    run()
                times: dict[str, list[float]] = {k: [] for k in runs}
                stages, results = [], {}
                for _ in range(repeats):
                    for key, run in runs.items():
                        t = time.perf_counter()
                        out = run()
                        times[key].append(time.perf_counter() - t)
                        if key == "atomlens":
                            stages.append(out[0])
                        if out is not None:
                            results[key] = out[1]
                med = {k: statistics.median(v) for k, v in times.items()}
                st = {s: statistics.median(d.get(s, 0.0) for d in stages) for s in STAGES}
                f1, rmse = _f1_rmse(results["atomlens"], sim)
                f1_32, rmse_32 = _f1_rmse(results["f32"], sim)
                al, ref = med["atomlens"], med["ref"]
                print(
                    f"{side:>5}² {n_threads:>3} | {al:10.2f} {ref:6.2f} {al / ref:5.2f} | "
                    f"{med['f32']:6.2f} {med['f32'] / ref:5.2f} | "
                    f"{med['c-l']:6.2f} {al / med['c-l']:5.2f} | "
                    f"{med['bf16']:6.2f} {al / med['bf16']:5.2f} | "
                    + " ".join(f"{st[s]:7.2f}" for s in STAGES)
                    + f" | {len(results['atomlens'].atoms):5d} {f1:.4f} {rmse:6.2f}"
                    + f" | {f1_32:.4f} {rmse_32:5.2f}",
                    flush=True,
                )
    print(
        "seconds per frame, medians of interleaved repeats. ratio: atomlens / the reference "
        "(target ≤ 1.0), except 'f32': atomlens with precision='float32' / the reference. "
        "'c-l': the reference in channels-last layout, 'bf16': channels-last under bfloat16 "
        "autocast (harder comparisons: AtomAI does neither). Stages are atomlens's "
        "(FindResult.seconds; 'write' is the atoms table's CSV)"
    )


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def curve_fit_loop(image: np.ndarray, xy: np.ndarray, radius: int, width: float) -> np.ndarray:
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]

    def g(coords, x0, y0, a, s, b):
        x, y = coords
        return a * np.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * s * s)) + b

    out = []
    for x, y in xy:
        cx, cy = int(round(x)), int(round(y))
        patch = image[cy - radius : cy + radius + 1, cx - radius : cx + radius + 1]
        p0 = (x, y, patch.max() - patch.min(), width, patch.min())
        coords = np.vstack([(xx + cx).ravel(), (yy + cy).ravel()])
        out.append(curve_fit(g, coords, patch.ravel(), p0=p0)[0][:2])
    return np.array(out)


def matching_speed(repeats: int) -> None:
    """``match_points`` on the 20,000 scattered points of
    ``tests/metrics/test_matching.py`` (which counts the work instead: clusters and their
    matrix cells) against the 2 s that test once allowed, and on 10⁵ points of a lattice."""
    from atomlens.metrics import match_points

    rng = np.random.default_rng(20_000)
    n = 20_000
    true = rng.uniform(0, np.sqrt(n), (n, 2))
    pred = true + rng.normal(0, 0.05, (n, 2))
    pred = np.vstack([pred[rng.random(n) > 0.05], rng.uniform(0, np.sqrt(n), (1000, 2))])
    t = timed(lambda: match_points(pred, true, radius=0.4), repeats)
    print(
        f"  matching: {n:,} scattered points in {t:.2f} s (target 2 s: {2.0 / t:.1f}× faster)",
        end="",
    )
    g = np.arange(317) * 3.0  # 317² ≈ 10⁵ points of a square lattice, 3 units apart
    lattice = np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)
    jittered = lattice + rng.normal(0, 0.2, lattice.shape)
    t = timed(lambda: match_points(jittered, lattice, radius=1.0), repeats)
    print(f"; {len(lattice):,} lattice points in {t:.2f} s")


def more(quick: bool) -> None:
    """The older figures: network and localisation per 1024² image, refinement
    throughput, matching and training speed, on one thread."""
    torch.set_num_threads(1)
    reps = 1 if quick else 3
    side = 512 if quick else 1024

    sim = simulate_image(
        "graphene",
        shape=side,
        pixel_size=0.1,
        rng=0,
        conditions=ImagingConditions(dose_e_per_A2=1e5),
    )
    arch = UNetConfig(n_classes=1)
    model = Model(
        UNet(arch).eval(), ModelConfig(architecture=arch, pixel_size_A=0.2, class_names=("C",))
    )
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"\n1 CPU thread; image {side}×{side} px at 0.1 Å/px, {len(sim.truth)} columns")
    probs = None
    for dev in devices:
        model.predict(sim.image[:256, :256], pixel_size=0.1, device=dev)  # warm-up
        t = timed(lambda dev=dev: model.predict(sim.image, pixel_size=0.1, device=dev), reps)
        print(
            f"  inference ({dev}, U-Net {model.network.n_parameters() / 1e6:.2f} M): "
            f"{t:.2f} s per image"
        )
    probs = np.stack([1 - sim.masks[1:].sum(0), sim.masks[1:].sum(0)])
    t_loc = timed(lambda: locate_atoms(probs, sim.image, pixel_size=0.1, class_names=("C",)), reps)
    print(f"  localisation (peaks + refinement): {t_loc:.2f} s per image")

    # refinement throughput on ≈ 10,000 atoms
    big = simulate_image(
        "graphene",
        shape=1600,
        pixel_size=0.1,
        rng=1,
        conditions=ImagingConditions(dose_e_per_A2=1e5),
    )
    xy = big.truth[["x_px", "y_px"]].to_numpy()
    xy = xy[(xy.min(1) > 12) & (xy.max(1) < 1600 - 13)]
    start = xy + np.random.default_rng(0).uniform(-0.5, 0.5, xy.shape)
    t_ref = timed(lambda: refine_gaussian(big.image, start, radius_px=10, width_px=3.5), reps)
    n_loop = 300
    t_loop = timed(lambda: curve_fit_loop(big.image, start[:n_loop], 10, 3.5), 1) / n_loop
    rate = len(xy) / t_ref
    print(
        f"  refinement: {len(xy)} atoms in {t_ref:.2f} s = {rate:,.0f} atoms/s "
        f"(target 10,000 atoms/s: {rate / 1e4:.2f}×)"
    )
    print(
        f"  per-atom scipy curve_fit loop: {1 / t_loop:,.0f} atoms/s "
        f"→ batched fit is {rate * t_loop:.1f}× faster (and models neighbours and noise)"
    )

    matching_speed(reps)

    # training steps
    from atomlens.simulate import ConditionRanges

    src = SimulatedSource(ConditionRanges(shape=128, pixel_size_A=(0.18, 0.22)), seed=0)
    for dev in devices:
        n_steps = 5 if quick else 20
        with tempfile.TemporaryDirectory() as tmp:
            m = Model(UNet(arch), model.config)
            tr = Trainer(
                m, TrainConfig(steps=n_steps, val_every=10_000, device=dev), src, out=f"{tmp}/m"
            )
            t = time.perf_counter()
            tr.fit()
            dt = time.perf_counter() - t
        t_sim = timed(lambda: src.batch(0, batch_size=8), reps)
        print(
            f"  training ({dev}, batch 8 of 128² px, simulation included): "
            f"{n_steps / dt:.2f} steps/s; simulating a batch alone takes {t_sim:.2f} s "
            f"({t_sim / (dt / n_steps):.0%} of a step)"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="512² only, 1 thread, 1 repeat")
    ap.add_argument("--sides", default="512,2048", help="frame sides [px], comma-separated")
    ap.add_argument("--threads", default="1,2", help="CPU thread counts, comma-separated")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--more", action="store_true", help="also the older figures")
    ap.add_argument(
        "--model", default="graphene", help="a graphene model: bundled name or directory"
    )
    args = ap.parse_args()
    sides = [512] if args.quick else [int(v) for v in args.sides.split(",")]
    threads = [1] if args.quick else [int(v) for v in args.threads.split(",")]
    repeats = 1 if args.quick else args.repeats
    compare(Ensemble.load(args.model), sides, threads, repeats, args.model)
    if args.more:
        more(args.quick)


if __name__ == "__main__":
    main()
