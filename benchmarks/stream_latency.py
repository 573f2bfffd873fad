"""Live-loop latency and drift reaction of ``atomlens.elit.stream``.

A stream of simulated 512×512 graphene frames at 0.1 Å/px (256² px at the model's
0.2 Å/px) goes through :func:`atomlens.elit.stream.stream` with an 8-member ensemble: the
bundled graphene ensemble's 4 members plus a copy of each with 1 % multiplicative weight
noise (seeded). The first ``--onset`` frames are taken under the training-like conditions
(1e5 e⁻/Å², 0.8 Å probe, no film); from frame ``--onset`` on the conditions shift (default:
a 10 Å amorphous carbon film). Printed side by side from one run:

- per-frame latency, median and p95, of plain :func:`atomlens.pipeline.finder.find` on the same
  frames (the baseline) and of the stream loop: its own ``latency_s`` (find + OOD score)
  and the wall time per frame of the loop (with the decisions taken on it), as ratios;
- from the drift onset to the switch: frames and seconds (from the onset frame being
  handed to the loop to the switch decision, ``select`` included);
- F1 against the simulated truth before the onset, and after it before and after the
  switch (the switch changes the members, not the data).

With ``--adapt`` the loop adapts on drift instead (``on_drift="adapt"``: training in a
background thread while frames keep coming) and the latency is printed separately for
the frames taken while the adaptation ran; ``--members 4`` is the bundled ensemble alone.
Each frame's latency is also split by stage (``FrameRecord.seconds``).

On CUDA too when it is available (``--device cuda`` or ``auto``).

    python benchmarks/stream_latency.py [--quick] [--frames N] [--onset K] [--threads N]
        [--members N] [--adapt]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

from atomlens.bundled import resolve_model_path
from atomlens.elit.adapt import AdaptConfig
from atomlens.elit.stream import StreamConfig, stream
from atomlens.elit.stream.record import LATENCY_STAGES
from atomlens.ensemble import Ensemble
from atomlens.metrics import match_points
from atomlens.nn import UNet
from atomlens.pipeline import find
from atomlens.simulate import Background, GaussianProbe, ImagingConditions, simulate_image

SHIFTS = {
    "film": ImagingConditions(background=Background(film_thickness_A=10.0)),
    "dose": ImagingConditions(dose_e_per_A2=1e3),
    "probe": ImagingConditions(probe=GaussianProbe(fwhm_A=1.6)),
}


def eight_members(n: int, seed: int = 0) -> Ensemble:
    """The bundled graphene members, then perturbed copies of them up to ``n``."""
    base = Ensemble.load(resolve_model_path("graphene"))
    g = torch.Generator().manual_seed(seed)
    nets, prov = list(base.networks), list(base.member_provenance)
    k = 0
    while len(nets) < n:
        net = UNet(base.config.architecture)
        net.load_state_dict(base.networks[k % len(base)].state_dict())
        with torch.no_grad():
            for p in net.parameters():
                p.mul_(1 + 0.01 * torch.randn(p.shape, generator=g))
        nets.append(net.eval())
        prov.append({"copy_of": k % len(base), "weight_noise": 0.01})
        k += 1
    return Ensemble(nets[:n], base.config, prov[:n])


def pct(v: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(v), q))


def f1(atoms, truth, ps: float) -> float:
    a = atoms[["x_px", "y_px"]].to_numpy(float)
    t = truth[["x_px", "y_px"]].to_numpy(float)
    return 2 * len(match_points(a, t, radius=0.5 / ps).pred_index) / max(len(a) + len(t), 1)


def run(device: str, ens: Ensemble, sims: list, args: argparse.Namespace) -> None:
    ps = args.pixel_size
    frames = [s.image for s in sims]
    find(frames[0], model=ens, pixel_size=ps, device=device)  # warm-up
    n_find = min(args.find_frames, len(frames))
    t_find = []
    for f in frames[:n_find]:
        t = time.perf_counter()
        find(f, model=ens, pixel_size=ps, device=device)
        if device == "cuda":
            torch.cuda.synchronize()
        t_find.append(time.perf_counter() - t)

    handed: dict[int, float] = {}

    def source():
        for i, f in enumerate(frames):
            handed[i] = time.time()
            yield f

    extra = {}
    if args.adapt:
        extra = {
            "on_drift": "adapt",
            "adapt": AdaptConfig(rounds=args.adapt_rounds, steps=args.adapt_steps, device=device),
            # the latency while it runs is the point: the run ends with the last frame
            "finish_adaptation": False,
        }
    cfg = StreamConfig(
        drift_ratio=args.drift_ratio, patience=args.patience, window=args.patience, **extra
    )
    st = stream(ens, source(), pixel_size=ps, config=cfg, device=device)
    recs, walls = [], []
    t = time.perf_counter()
    for rec in st:
        walls.append(time.perf_counter() - t)
        recs.append(rec)
        t = time.perf_counter()
    lat = [r.latency_s for r in recs]
    drift = [d for d in st.decisions if d["event"] == "drift"]
    switch = [d for d in st.decisions if d["event"] == "switch"]
    false_alarm = [d for d in drift if d["frame"] < args.onset]

    print(f"\n{device}: {len(frames)} frames, drift onset at frame {args.onset} ({args.shift})")
    print(f"  {'per frame':44} {'median ms':>10} {'p95 ms':>10} {'/ find':>8}")
    med_find = statistics.median(t_find)
    rows = [
        (f"find() alone (first {n_find} frames)", t_find),
        ("stream latency_s (find + OOD score)", lat),
        ("stream loop wall (with its decisions)", walls),
        (f"  before the onset (frames 0–{args.onset - 1})", lat[: args.onset]),
    ]
    if switch and switch[0]["frame"] + 1 < len(recs):
        k = switch[0]["frame"] + 1
        rows.append((f"  after the switch (frames {k}–, {len(recs[k].members)} members)", lat[k:]))
    launched = [d for d in st.decisions if d["event"] == "adapt_launched"]
    if launched:
        a = launched[0]["frame"] + 1
        done = [d for d in st.decisions if d["event"] in ("adapt_finished", "adapt_failed")]
        b = done[0]["frame"] if done and done[0]["frame"] is not None else len(recs)
        b = b if not done or not done[0].get("at_end") else len(recs)
        rows.append((f"  while adapting (frames {a}–{b - 1})", lat[a:b]))
        rows.append(("  not adapting", lat[:a] + lat[b:]))
    for name, v in rows:
        if v:
            m = statistics.median(v)
            print(f"  {name:44} {m * 1e3:10.0f} {pct(v, 95) * 1e3:10.0f} {m / med_find:8.2f}")
    stages = "  ".join(
        f"{k} {statistics.median(r.seconds.get(k, 0.0) for r in recs) * 1e3:.0f}"
        for k in LATENCY_STAGES
    )
    print(f"  stream latency per stage, median ms: {stages}")
    base = [d for d in st.decisions if d["event"] == "baseline"]
    before = np.median([r.ratio for r in recs[: args.onset]])
    after = np.median([r.ratio for r in recs[args.onset :]])
    print(
        f"  baseline (simulated, {len(base[0]['scores'])} frames): {base[0]['baseline']:.4g} "
        f"nats; OOD ratio before the onset median {before:.2f}, after {after:.2f} "
        f"(drift ratio {args.drift_ratio})"
    )
    for d in st.decisions:
        if d["event"].startswith("adapt_"):
            sec = d.get("seconds")
            print(
                f"  {d['event']} at frame {d['frame']}"
                + (f" after {sec:.0f} s" if sec is not None else "")
                + (" (waited for at the end)" if d.get("at_end") else "")
            )
    if not drift or not switch:
        print(f"  no switch: drift decisions {[d['frame'] for d in drift]}")
    else:
        d, s = drift[0], switch[0]
        sel_s = s.get("seconds", float("nan"))
        print(
            f"  drift declared at frame {d['frame']} ({d['frame'] - args.onset + 1} frames from "
            f"the onset, patience {args.patience}); switch to members {s['members']} at frame "
            f"{s['frame']}: {s['time'] - handed[args.onset]:.2f} s after the onset frame was "
            f"handed in (select {sel_s:.2f} s on {len(s['frames'])} frames)"
        )
    print(f"  false alarms before the onset: {len(false_alarm)}")
    f1s = [f1(r.atoms, sims[r.index].truth, ps) for r in recs]
    parts = [f"F1 vs truth: before the onset {np.mean(f1s[: args.onset]):.3f}"]
    if switch:
        k = switch[0]["frame"] + 1
        parts.append(f"drifted, {len(ens)} members {np.mean(f1s[args.onset : k]):.3f}")
        if k < len(f1s):
            parts.append(f"drifted, selected members {np.mean(f1s[k:]):.3f}")
    print("  " + "; ".join(parts))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="256² px, 10 frames")
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--onset", type=int, default=15, help="first frame of the shifted conditions")
    ap.add_argument("--shift", choices=sorted(SHIFTS), default="film")
    ap.add_argument("--side", type=int, default=512, help="frame side [px]")
    ap.add_argument("--pixel-size", type=float, default=0.1, help="[Å/px]")
    ap.add_argument("--members", type=int, default=8)
    ap.add_argument("--patience", type=int, default=3)
    ap.add_argument("--drift-ratio", type=float, default=2.0)
    ap.add_argument("--find-frames", type=int, default=5, help="frames timed with find() alone")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    ap.add_argument("--device", choices=["cpu", "cuda", "auto"], default="auto")
    ap.add_argument("--adapt", action="store_true", help="adapt on drift, in the background")
    ap.add_argument("--adapt-rounds", type=int, default=1, help="with --adapt")
    ap.add_argument("--adapt-steps", type=int, default=60, help="with --adapt, per round")
    args = ap.parse_args()
    if args.quick:
        args.side, args.frames, args.onset, args.find_frames = 256, 10, 5, 3
    if not 0 < args.onset < args.frames:
        ap.error("--onset must be within 1 … --frames − 1")
    torch.set_num_threads(args.threads)
    ens = eight_members(args.members)
    sims = [
        simulate_image(
            "graphene",
            shape=args.side,
            pixel_size=args.pixel_size,
            rng=1000 + i,
            conditions=ImagingConditions() if i < args.onset else SHIFTS[args.shift],
        )
        for i in range(args.frames)
    ]
    if args.device == "auto":
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    else:
        devices = [args.device]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"stream latency: {args.members}-member ensemble = bundled graphene (4 members) + "
        f"{args.members - 4} copies of them with 1 % weight noise; {args.side}² px graphene "
        f"frames at {args.pixel_size} Å/px (model at {ens.config.pixel_size_A} Å/px); "
        f"on_drift='{'adapt' if args.adapt else 'select'}', patience {args.patience}, "
        f"drift ratio ×{args.drift_ratio}; "
        f"{args.threads} CPU thread(s), load average {load:.1f}"
    )
    for dev in devices:
        run(dev, ens, sims, args)


if __name__ == "__main__":
    main()
