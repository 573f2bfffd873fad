"""Region maps of the real images in ``../shared/data/real`` (no labels: judged by eye).

For every image: the share of crystal, amorphous, vacuum and saturated pixels that
:func:`atomlens.fourier.region_map` reads off it, the number of Bragg reflections it used
and its window, and a figure (image | lattice share | regions) in ``--out``.

    python benchmarks/regions_real.py [--data ../shared/data/real] [--out regions-real]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
DATA = HERE.parent.parent / "shared" / "data" / "real"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=Path("regions-real"))
    args = ap.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"{args.data} not found; pass --data (the folder of real images).")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    from atomlens.fourier import REGIONS, region_map
    from atomlens.io import read

    files = sorted(p for p in args.data.rglob("*") if p.suffix in (".png", ".hspy"))
    args.out.mkdir(parents=True, exist_ok=True)
    cmap = ListedColormap(["tab:green", "tab:orange", "black", "white"])
    print(f"{'image':36s} {'size':>9s} " + " ".join(f"{n:>9s}" for n in REGIONS)
          + f" {'reflections':>11s} {'window px':>9s} {'time s':>6s}")  # fmt: skip
    for f in files:
        im = np.asarray(read(f).data, dtype=np.float64)
        im = im if im.ndim == 2 else im.mean(axis=-1) if im.shape[-1] in (3, 4) else im[0]
        contrast = "dark" if "ABF" in f.name else "bright"
        t0 = time.perf_counter()
        rm = region_map(im, contrast=contrast)
        dt = time.perf_counter() - t0
        sh = rm.share()
        print(f"{f.name[:36]:36s} {im.shape[0]:4d}×{im.shape[1]:<4d} "
              + " ".join(f"{sh[n]:9.3f}" for n in REGIONS)
              + f" {len(rm.reflections):11d} {rm.window_px:9.1f} {dt:6.2f}")  # fmt: skip
        fig, ax = plt.subplots(1, 3, figsize=(15, 5))
        ax[0].imshow(im, cmap="gray")
        ax[0].set_title(f.name)
        m = ax[1].imshow(rm.lattice_share, cmap="viridis", vmin=0, vmax=1)
        ax[1].set_title("lattice share")
        fig.colorbar(m, ax=ax[1], fraction=0.046)
        ax[2].imshow(rm.labels, cmap=cmap, vmin=0, vmax=3, interpolation="nearest")
        ax[2].set_title("crystal green, amorphous orange, vacuum black, saturated white")
        for a in ax:
            a.set_axis_off()
        fig.tight_layout()
        fig.savefig(args.out / f"{f.stem}.png", dpi=60)
        plt.close(fig)
    print(f"wrote the figures to {args.out}/")


if __name__ == "__main__":
    main()
