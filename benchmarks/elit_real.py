"""ELIT on a real image without labels: the SrTiO3 ADF image of ``../shared/data/real``.

An ensemble is trained on simulated SrTiO3 [110] (columns SrO, Ti and O as classes) at
0.15 Å/px, then adapted with :func:`atomlens.elit.adapt.adapt` to the real image, cut into
four quadrants (three to train on, one held out by the guard: ``--holdout``, 3 = bottom
right by default). Before and after, it prints atoms per class, ``p_detect``, the mean
epistemic uncertainty (over pixels and around atoms) and the nearest-neighbour distances
of the SrO and Ti columns against the ideal [110] projection, **on the held-out quadrant
only** (``find`` runs on the whole image, so its columns have their neighbours; an atom
counts when it lies 1 Å or more inside the quadrant), and, for comparison, on the whole
image, three quarters of which ``adapt`` trained on. The held-out quadrant is not
untouched: the guard judged each round on it, so a kept round is one that did not look
worse there. It writes the overlays and uncertainty maps side by side into ``--out``, with
the held-out quadrant outlined.

There are no labels: what can be checked is whether the lattice gets more plausible and
the members more certain, and by eye in the overlays.

With ``--simulated-share 1 --simulated-background frames`` the members are trained on
simulated SrTiO3 carrying the image's own background and noise instead of pseudo-labels.

    python benchmarks/elit_real.py [--out elit-real] [--image PATH] [--members 3]
        [--holdout 0|1|2|3]
        [--simulated-share 1 --simulated-background frames]
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import torch

from atomlens.elit.adapt import AdaptConfig

HERE = Path(__file__).parent
SHARED = HERE.parent.parent / "shared" / "data" / "real" / "srtio3_atomap" / "SrTiO3_ADF.hspy"
DEFAULT = HERE / ".models" / "srtio3-110"


def training_ranges(cif: Path) -> dict:
    """What the ensemble is trained on (``make_ranges``/``train_ensemble`` arguments)."""
    from atomlens.simulate import ClassMap

    return dict(
        materials=[str(cif)],
        pixel_size=0.15,
        classes=ClassMap(by="content"),
        dose_range=(1e3, 1e5),
        film_thickness_A=(0.0, 2.0),
    )


def train(out: Path, members: int, steps: int):
    from atomlens.ensemble import Ensemble
    from atomlens.train import TrainConfig, train_ensemble

    if (out / "config.json").exists():
        ens = Ensemble.load(out)
        if {p.get("steps_done") for p in ens.member_provenance} != {steps}:
            raise SystemExit(
                f"{out} holds an ensemble trained for other than --steps {steps}: "
                "delete it, or pass --model DIR"
            )
        return ens
    # SrTiO3 with [110] along z (the simulator projects along z): a periodic (110) "slab"
    from ase.build import surface
    from ase.spacegroup import crystal

    sto = crystal(
        ["Sr", "Ti", "O"],
        basis=[(0, 0, 0), (0.5, 0.5, 0.5), (0.5, 0.5, 0)],
        spacegroup=221,
        cellpar=[3.905] * 3 + [90] * 3,
    )
    cif = out.parent / "srtio3-110.cif"
    cif.parent.mkdir(parents=True, exist_ok=True)
    surface(sto, (1, 1, 0), 2, vacuum=None, periodic=True).write(cif)
    return train_ensemble(
        members=members,
        out=out,
        **training_ranges(cif),
        n_validation=2,
        n_calibration=2,
        config=TrainConfig(steps=steps, val_every=steps // 2, seed=11),
        mode="sequential",
        progress=True,
    )


#: Quadrants in the order ``adapt`` receives them (the last is the held-out one by default):
#: top left, top right, bottom left, bottom right, as (row slice, column slice) halves.
QUADRANTS = ((0, 0), (0, 1), (1, 0), (1, 1))


def quadrant_box(shape: tuple[int, int], k: int) -> tuple[int, int, int, int]:
    """Rows ``y0:y1`` and columns ``x0:x1`` [px] of quadrant ``k`` of an image."""
    h, w = shape
    qy, qx = QUADRANTS[k]
    return (qy * (h // 2), h if qy else h // 2, qx * (w // 2), w if qx else w // 2)


def summary(res, name: str, box: tuple[int, int, int, int] | None = None, margin_px=0.0) -> dict:
    """Atoms, certainty and the cation lattice's spacing of ``res``, over the whole image
    or only the atoms ``margin_px`` or more inside ``box`` (rows y0:y1, columns x0:x1) and
    that box's pixels."""
    from scipy.spatial import cKDTree

    a = res.atoms
    mi = res.prediction.mutual_information
    # the cation columns (SrO and Ti; content classes may read e.g. "Sr9O9", "Ti9") and
    # their nearest cation neighbour anywhere in the image
    cation = a["class"].astype(str).str.contains("Sr|Ti").to_numpy()
    heavy = a[cation][["x_A", "y_A"]].to_numpy(float)
    nn = np.full(len(a), np.nan)
    if len(heavy) > 2:
        nn[cation] = cKDTree(heavy).query(heavy, k=2)[0][:, 1]
    if box is not None:
        y0, y1, x0, x1 = box
        x, y = a["x_px"].to_numpy(float), a["y_px"].to_numpy(float)
        inside = (
            (x >= x0 - 0.5 + margin_px)
            & (x <= x1 - 0.5 - margin_px)
            & (y >= y0 - 0.5 + margin_px)
            & (y <= y1 - 0.5 - margin_px)
        )
        a, nn = a[inside], nn[inside]
        mi = mi[y0:y1, x0:x1]
    out = {"atoms": len(a)}
    if box is None:
        out["rejected"] = len(res.rejected)
    for c, n in a["class"].value_counts().sort_index().items():
        out[f"n_{c}"] = int(n)
    out["p_detect<1"] = float((a["p_detect"] < 1).mean())
    out["epistemic_image"] = float(mi.mean())
    out["epistemic_atoms"] = float(a["epistemic"].mean())
    d = nn[np.isfinite(nn)]
    if len(d) > 2:
        out["nn_heavy_median_A"] = float(np.median(d))
        out["nn_heavy_mad_A"] = float(np.median(np.abs(d - np.median(d))))
    print(f"{name:8s} " + "  ".join(f"{k} {v:.4g}" for k, v in out.items()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--image", type=Path, default=SHARED)
    ap.add_argument("--model", type=Path, default=DEFAULT)
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument(
        "--adapt-steps",
        type=int,
        default=AdaptConfig.steps,
        help="fine-tuning steps per member per round (adapt's default, what a user of "
        "adapt gets; 60 before 2026-11-29)",
    )
    ap.add_argument(
        "--holdout",
        type=int,
        choices=range(4),
        default=3,
        help="the quadrant adapt holds out and the figures are reported on "
        "(0 top left, 1 top right, 2 bottom left, 3 bottom right)",
    )
    ap.add_argument("--out", type=Path, default=Path("elit-real"))
    ap.add_argument("--simulated-share", type=float, default=0.0)
    ap.add_argument("--simulated-background", choices=["simulated", "frames"], default="simulated")
    ap.add_argument("--pixel-noise", choices=["borrowed", "modelled"], default="modelled")
    ap.add_argument("--match-blur", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--match-sampling", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--film", choices=["estimated", "drawn"], default="estimated")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(2)
    if not args.image.exists():
        raise SystemExit(f"{args.image} not found; pass --image (the SrTiO3 ADF .hspy file).")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from atomlens.elit.adapt import adapt
    from atomlens.io import read
    from atomlens.pipeline import find

    t0 = time.perf_counter()
    ens = train(args.model, args.members, args.steps)
    im = read(args.image)
    ps = float(im.pixel_size)
    img = np.asarray(im.data, dtype=np.float32)
    print(f"{args.image.name}: {img.shape} px at {ps:.4f} Å/px; model {ens}")
    ideal = 3.905 / 2  # SrO–Ti along [001] in the [110] projection [Å]
    print(f"ideal nearest SrO/Ti neighbour in SrTiO3 [110]: {ideal:.3f} Å")
    box = quadrant_box(img.shape, args.holdout)
    margin = 1.0 / ps  # 1 Å: a column at the quadrant's edge shows partly in a trained one
    before = find(img, model=ens, pixel_size=ps, calibrated=False)
    print(f"held-out quadrant {args.holdout}: rows {box[0]}:{box[1]}, columns {box[2]}:{box[3]}")
    boxes = [quadrant_box(img.shape, k) for k in range(4) if k != args.holdout]
    quads = [img[y0:y1, x0:x1] for y0, y1, x0, x1 in boxes]
    quads.append(img[box[0] : box[1], box[2] : box[3]])  # adapt holds the last one out
    cfg = AdaptConfig(
        rounds=3,
        steps=args.adapt_steps,
        crop=96,
        batch_size=4,
        simulated_share=args.simulated_share,
        simulated_background=args.simulated_background,
        pixel_noise=args.pixel_noise,
        match_blur=args.match_blur,
        match_sampling=args.match_sampling,
        film=args.film,
    )
    print(f"adapt: {cfg.simulated_summary()}")
    simulated = None
    if cfg.simulated_share > 0:
        from atomlens.train.recipe import make_ranges

        cif = args.model.parent / "srtio3-110.cif"
        simulated = make_ranges(crop=cfg.crop, **training_ranges(cif))
    res = adapt(ens, quads, pixel_size=ps, config=cfg, simulated=simulated)
    print(res.summary())
    # no kept round: the ensemble is the one given, with no ELIT provenance
    look = res.ensemble.config.provenance.get("elit", {}).get("styled")
    if look:  # what the frame-styled simulation read off the quadrants
        ps_model = ens.config.pixel_size_A
        print(
            "frames' look: noise "
            + (
                ", ".join(
                    f"a={m['a']:.3g} b={m['b']:.3g} (Poisson share {m['poisson_share']:.2f})"
                    for m in look["noise_models"]
                )
                or "borrowed"
            )
            + (
                f"; {look['film']} film "
                + ", ".join(
                    "–" if t is None else f"{t:.2f}" for t in look.get("film_thickness_A") or []
                )
                + " Å (– : over 100 Å, the estimate kept)"
                if look.get("film") == "drawn"
                else f"; {look.get('film', 'estimated')} film"
            )
            + "; extra blur "
            + ", ".join(f"{b * ps_model:.2f}" for b in look["extra_blur_px"])
            + f" Å; sampling {look['sampling']:.4f}× the model's (simulated at "
            + "–".join(f"{v:.4f}" for v in sorted(set(look["pixel_size_A"])))
            + " Å/px)"
        )
    after = find(img, model=res.ensemble, pixel_size=ps, calibrated=False)
    print(f"held-out quadrant {args.holdout}, atoms 1 Å or more inside it:")
    s0 = summary(before, "before", box, margin)
    s1 = summary(after, "after", box, margin)
    print("whole image (adapt trained on three quarters of it):")
    w0 = summary(before, "before")
    w1 = summary(after, "after")
    for where, (b, a) in (("held out", (s0, s1)), ("whole", (w0, w1))):
        for k in ("epistemic_image", "epistemic_atoms", "nn_heavy_median_A", "nn_heavy_mad_A"):
            if k in b and k in a:
                print(f"{where:8s} {k}: {b[k]:.4g} → {a[k]:.4g} ({a[k] / max(b[k], 1e-12):.2f}×)")

    args.out.mkdir(parents=True, exist_ok=True)
    palette = ["tab:red", "tab:cyan", "tab:orange", "tab:green", "tab:purple"]
    colors = {c: palette[i % len(palette)] for i, c in enumerate(ens.config.class_names)}
    fig, axes = plt.subplots(2, 2, figsize=(12, 12))
    vmax = max(
        before.prediction.mutual_information.max(), after.prediction.mutual_information.max()
    )
    for col, (name, r) in enumerate((("before", before), ("after ELIT", after))):
        ax = axes[0, col]
        ax.imshow(img, cmap="gray")
        for c, g in r.atoms.groupby("class"):
            ax.scatter(g["x_px"], g["y_px"], s=10, c=colors.get(str(c), "y"), label=str(c))
        ax.legend(loc="upper right")
        y0, y1, x0, x1 = box
        ax.add_patch(
            plt.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec="w", ls="--")
        )
        ax.set_title(f"{name}: {len(r.atoms)} atoms (dashed: held out)")
        ax = axes[1, col]
        m = ax.imshow(r.prediction.mutual_information, cmap="magma", vmin=0, vmax=vmax)
        ax.set_title(f"{name}: epistemic (mean {r.prediction.mutual_information.mean():.4f})")
        fig.colorbar(m, ax=ax, fraction=0.046)
    for ax in axes.ravel():
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(args.out / "before_after.png", dpi=90)
    print(f"wrote {args.out / 'before_after.png'}; total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
