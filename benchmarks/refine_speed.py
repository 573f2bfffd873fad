"""Speed of the batched Gaussian refinement, before and after its speed-up (#36).

``find`` calls :func:`atomlens.locate.refine_gaussian` twice per frame (``_atoms_table``):
a 1-round unweighted pre-fit without neighbours to measure the columns' width, then the
full 3-round weighted, neighbour-aware fit. This benchmark makes both calls, as ``find``
does, with the implementation as it was at ``--before`` (``git show`` of that commit's
``refine.py``, loaded as a module) and with the current one, alternating old and new in
one process; it prints the median times side by side with their ratio, then how far the
results differ and each one's position RMSE against the truth.

Frames: simulated graphene, 512² px, ``benchmarks/speed.py``'s 0.2 Å/px (≈ 4000 columns)
at 10⁵, 10⁷ and 10³ e⁻/Å², and 0.1 Å/px at 10⁵ (≈ 1000 columns on larger disks). The
fits start at the true positions plus N(0, 0.3 px) noise.

    python benchmarks/refine_speed.py [--quick] [--repeats 5] [--before fb68a0a]

On a shared machine read the ratios, not the seconds (``STYLE.md``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from atomlens.locate import refine_gaussian
from atomlens.simulate import ImagingConditions, simulate_image

ROOT = Path(__file__).resolve().parents[1]
#: the last commit with the refinement as it was before #36's speed-up
BEFORE = "fb68a0a"
FIELDS = ("sigma_xy", "crlb_xy", "chi2", "signal", "signal_sigma", "width", "amplitude")


def _old_refine(ref: str) -> types.ModuleType:
    """``refine.py`` as it was at commit ``ref``, loaded as a module of its own."""
    src = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{ref}:src/atomlens/locate/refine.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    mod = types.ModuleType("_old_refine")
    mod.__file__ = f"<{ref}:refine.py>"
    sys.modules[mod.__name__] = mod  # dataclasses look their module up by name
    exec(compile(src, mod.__file__, "exec"), mod.__dict__)
    return mod


def frame(dose: float, pixel_size: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Image, start positions (N, 2) and true positions (N, 2) as (x, y) [px]."""
    sim = simulate_image(
        "graphene",
        shape=512,
        pixel_size=pixel_size,
        rng=0,
        conditions=ImagingConditions(dose_e_per_A2=dose),
    )
    truth = sim.truth[["x_px", "y_px"]].to_numpy()
    start = truth + np.random.default_rng(1).normal(0.0, 0.3, truth.shape)
    return np.asarray(sim.image, dtype=np.float64), start, truth


def find_calls(refine, img: np.ndarray, start: np.ndarray) -> tuple[object, object, float, float]:
    """The pre-fit and the fit, with the arguments ``_atoms_table`` passes, and the
    seconds each took."""
    d_nn = float(np.median(cKDTree(start).query(start, k=2)[0][:, 1]))
    t0 = time.perf_counter()
    pre = refine(
        img,
        start,
        radius_px=max(2.0, 0.45 * d_nn),
        width_px=max(1.0, 0.2 * d_nn),
        neighbours=False,
        weighted=False,
        rounds=1,
        iterations=4,
    )
    s = float(np.nanmedian(pre.width[pre.fitted])) if pre.fitted.any() else 0.2 * d_nn
    radius = float(np.clip(3.0 * s, 2.0, max(2.0, 0.9 * d_nn)))
    t1 = time.perf_counter()
    fit = refine(img, start, radius_px=radius, width_px=s)
    return pre, fit, t1 - t0, time.perf_counter() - t1


def max_rel(a: np.ndarray, b: np.ndarray) -> float:
    """Largest |a − b| / |a| where both are finite; inf where only one is."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if (np.isfinite(a) != np.isfinite(b)).any():
        return float("inf")
    ok = np.isfinite(a)
    if not ok.any():
        return 0.0
    return float((np.abs(a[ok] - b[ok]) / np.maximum(np.abs(a[ok]), 1e-300)).max())


def compare(old, new, truth: np.ndarray) -> dict[str, float]:
    both = old.fitted & new.fitted
    out = {
        "xy px": float(np.abs(old.xy - new.xy)[both].max()) if both.any() else 0.0,
        "fitted ≠": int((old.fitted != new.fitted).sum()),
        "gain": max_rel([old.gain, old.read_variance], [new.gain, new.read_variance]),
    }
    for f in FIELDS:
        out[f] = max_rel(getattr(old, f)[both], getattr(new, f)[both])
    for name, fit in (("rmse old", old), ("rmse new", new)):
        out[name] = float(np.sqrt(np.mean((fit.xy - truth)[fit.fitted] ** 2)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one frame, 2 repeats")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--before", default=BEFORE, help="git commit of the old refine.py")
    args = ap.parse_args()
    old_mod = _old_refine(args.before)
    cases = [(1e5, 0.2), (1e7, 0.2), (1e3, 0.2), (1e5, 0.1)]
    repeats = args.repeats
    if args.quick:
        cases, repeats = cases[:1], 2
    print(f"refine_gaussian ×2 (pre-fit + fit) as find calls it; old = {args.before}")
    print(
        f"{'dose':>6} {'Å/px':>4} {'atoms':>5} | {'old s':>6} {'new s':>6} {'ratio':>5} | "
        f"{'pre old':>7} {'pre new':>7} {'ratio':>5} | {'fit old':>7} {'fit new':>7} {'ratio':>5}"
    )
    diffs = []
    for dose, ps in cases:
        img, start, truth = frame(dose, ps)
        times = {"old": [], "new": []}
        for _ in range(repeats):
            for key, fn in (("old", old_mod.refine_gaussian), ("new", refine_gaussian)):
                times[key].append(find_calls(fn, img, start)[2:])
        old_pre, old_fit = find_calls(old_mod.refine_gaussian, img, start)[:2]
        new_pre, new_fit = find_calls(refine_gaussian, img, start)[:2]
        (po, fo), (pn, fn_) = (np.median(times[k], axis=0) for k in ("old", "new"))
        # both calls: the medians of each call's repeats, summed
        print(
            f"{dose:6.0e} {ps:4.1f} {len(start):5d} | {po + fo:6.3f} {pn + fn_:6.3f} "
            f"{(po + fo) / (pn + fn_):5.2f} | {po:7.3f} {pn:7.3f} {po / pn:5.2f} | "
            f"{fo:7.3f} {fn_:7.3f} {fo / fn_:5.2f}"
        )
        diffs.append((dose, ps, "pre", compare(old_pre, new_pre, truth)))
        diffs.append((dose, ps, "fit", compare(old_fit, new_fit, truth)))
        # the noise floor: the old code against itself from starts moved by 10⁻⁶ px
        jig_pre, jig_fit = find_calls(old_mod.refine_gaussian, img, start + 1e-6)[:2]
        diffs.append((dose, ps, "pre*", compare(old_pre, jig_pre, truth)))
        diffs.append((dose, ps, "fit*", compare(old_fit, jig_fit, truth)))
    keys = list(diffs[0][3])
    print("\nnew vs old: max |Δxy| [px] over atoms fitted by both, 'fitted' mismatches,")
    print("max relative difference of the rest; RMSE vs truth [px] of each one's fitted atoms.")
    print("pre*/fit*: the old code against itself from starts moved by 1e-6 px (noise floor)")
    print(f"{'dose':>6} {'Å/px':>4} {'call':>4} " + " ".join(f"{k:>9}" for k in keys))
    for dose, ps, call, d in diffs:
        cells = " ".join(f"{d[k]:9d}" if isinstance(d[k], int) else f"{d[k]:9.2e}" for k in keys)
        print(f"{dose:6.0e} {ps:4.1f} {call:>4} {cells}")


if __name__ == "__main__":
    main()
