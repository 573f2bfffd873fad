"""Memory and speed of `find` over a long stack read from HDF5.

Writes a stack of 1024×1024 graphene frames (0.1 Å/px, 1e5 e⁻/Å²; 8 simulated frames
repeated) into an HDF5 file frame by frame, then runs :func:`atomlens.pipeline.files.find_files` on
it in a fresh process (tables, maps.h5 and the report, as ``atomlens find`` does) for a
short and for the full stack, and prints the peak resident memory of each and the
frames/s side by side. Target: peak < 1.5 GB and independent of the number of frames.

The model is the bundled graphene ensemble (all its members; ``--members 1`` for one), or
any model directory given with ``--model``.

    python benchmarks/stack_memory.py [--frames 200] [--short 20] [--model DIR] [--members N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHILD = r"""
import json, resource, sys, time
import torch
torch.set_num_threads(int(sys.argv[6]))
from atomlens.pipeline import find_files
from atomlens.ensemble import Ensemble
path, out, model, n, k = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
ens = Ensemble.load(model)
if k:
    ens = Ensemble(ens.networks[:k], ens.config, ens.member_provenance[:k])
t = time.perf_counter()
res = find_files([path], model=ens, out=out, signal=f"frames{n}")
dt = time.perf_counter() - t
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"frames": res.frames, "seconds": dt, "atoms": len(res.atoms),
                  "peak_mb": peak_mb}))
"""


def write_stack(path: Path, n_frames: int, short: int) -> None:
    import h5py

    from atomlens.simulate import ImagingConditions, simulate_image

    base = [
        simulate_image(
            "graphene",
            shape=1024,
            pixel_size=0.1,
            rng=s,
            conditions=ImagingConditions(dose_e_per_A2=1e5),
        ).image.astype(np.float32)
        for s in range(8)
    ]
    with h5py.File(path, "w") as f:
        for n in (short, n_frames):
            ds = f.create_dataset(
                f"frames{n}", shape=(n, 1024, 1024), dtype="float32", chunks=(1, 1024, 1024)
            )
            ds.attrs["pixel_size"] = 0.1
            ds.attrs["pixel_size_unit"] = "Å"
            for i in range(n):
                ds[i] = base[i % len(base)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--short", type=int, default=20)
    ap.add_argument("--model", type=Path)
    ap.add_argument("--members", type=int, default=0, help="use the first N members (0: all)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    args = ap.parse_args()
    if args.model is None:
        from atomlens.bundled import resolve_model_path

        args.model = resolve_model_path("graphene")
    if not (args.model / "config.json").exists():
        sys.exit(f"{args.model}: no model there; pass --model DIR")
    with tempfile.TemporaryDirectory() as tmp:
        stack = Path(tmp) / "stack.h5"
        t = time.perf_counter()
        write_stack(stack, args.frames, args.short)
        print(
            f"wrote {args.frames}+{args.short} frames of 1024² float32 "
            f"({stack.stat().st_size / 2**30:.2f} GiB) in {time.perf_counter() - t:.0f} s"
        )
        rows = []
        for n in (args.short, args.frames):
            r = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    CHILD,
                    str(stack),
                    f"{tmp}/out{n}",
                    str(args.model),
                    str(n),
                    str(args.members),
                    str(args.threads),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            rows.append(json.loads(r.stdout.strip().splitlines()[-1]))
    print(f"model {args.model} ({args.members or 'all'} members)")
    print(f"{'frames':>7} {'peak RSS':>10} {'frames/s':>9} {'atoms':>9}")
    for r in rows:
        print(
            f"{r['frames']:7d} {r['peak_mb']:8.0f} MB {r['frames'] / r['seconds']:9.3f} "
            f"{r['atoms']:9d}"
        )
    a, b = rows
    print(
        f"peak memory {b['frames']} frames / {a['frames']} frames = "
        f"{b['peak_mb'] / a['peak_mb']:.2f}× (target: ≈1, and < 1536 MB); frames/s ratio "
        f"{(b['frames'] / b['seconds']) / (a['frames'] / a['seconds']):.2f}×"
    )


if __name__ == "__main__":
    main()
