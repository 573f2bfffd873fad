"""Hypothesis learning (issue #34): the right model, its transition and its parameters.

1. The 1D toy of the hypothesis-learning paper: three piecewise models of y(x) on
   x ∈ [0, 2.5] with a transition t ~ U(0.5, 2) (a power law that saturates, one that
   peaks and falls linearly, a background with a threshold onset); data from each model
   in turn with t = 1.6 and noise σ = 0.2; 4 seed points, 3 warm-up rounds (one point per
   model each) + 12 bandit steps = 25 points; 3 seeds × 3 truths. Targets: the right model
   in ≥ 8/9 runs, t within ±0.1 in those runs. Baseline: the same 25 points drawn at
   random, every model fit to them, the best Laplace evidence wins. Run with both reward
   rules: "decrease" (the paper's: +1 when the chosen model's median predictive σ fell)
   and "lowest" (+1 when it is below every other model's).
2. 2D: a polarisation field (B-site displacement [pm]) made by one of four domain
   structures (one wall, a band, periodic stripes, a bubble; each in turn) is imprinted
   into a simulated SrTiO3 [001] image (``simulate_image(displacement=...)``: the Ti–O
   columns move), the image is taken at 1e4 e⁻/Å², ``atomlens.find`` finds the columns and
   ``analysis.b_site_displacements`` measures each Ti–O column's offset from its Sr cage:
   the value a measurement at that column reveals, with the noise of the image. The right
   structure chosen and its parameters inside their 90 % intervals (MAP+Laplace, and the
   winner refit by NUTS on the same points).
3. Time per step (fit + prediction over the candidates) for MAP and NUTS, with split-R̂.

    python benchmarks/hypotheses.py [--quick] [--parts timing,1d,2d] [--rewards R,...]
                                    [--truths-2d T,...] [--seeds-2d S,...]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
from torch.distributions import LogNormal, Normal, Uniform

from atomlens.active import physics_models as pm
from atomlens.active.hypotheses import HypothesisSettings, learn_hypotheses
from atomlens.active.structured import NUTSSettings, StructuredGP

T_TRUE, NOISE = 1.6, 0.2
TRUTHS = {
    "plateau": (pm.power_law_plateau, {"a": 1.0, "b": 1.5, "t": T_TRUE}),
    "peak": (pm.power_law_then_linear, {"a": 1.0, "b": 1.5, "c": -2.0, "t": T_TRUE}),
    "onset": (pm.threshold_onset, {"d": 0.5, "c": 2.0, "b": 1.0, "t": T_TRUE}),
}


def toy_models(seed: int, restarts: int) -> dict[str, StructuredGP]:
    """The three hypotheses as structured GPs, priors in the units of the toy."""
    t = Uniform(0.5, 2.0)
    kw = {"restarts": restarts, "noise_prior": LogNormal(math.log(0.2), 0.5)}
    return {
        "plateau": StructuredGP(
            pm.power_law_plateau,
            {"a": LogNormal(0.0, 0.5), "b": LogNormal(0.0, 0.5), "t": t},
            rng=seed,
            **kw,
        ),
        "peak": StructuredGP(
            pm.power_law_then_linear,
            {"a": LogNormal(0.0, 0.5), "b": LogNormal(0.0, 0.5), "c": Normal(-2.0, 0.7), "t": t},
            rng=seed + 1,
            **kw,
        ),
        "onset": StructuredGP(
            pm.threshold_onset,
            {
                "d": Normal(0.5, 0.5),
                "c": LogNormal(math.log(2.0), 0.5),
                "b": LogNormal(0.0, 0.5),
                "t": t,
            },
            rng=seed + 2,
            **kw,
        ),
    }


def _lowest_at_end(r) -> str:
    """The model whose median predictive σ over the candidates is lowest on all the data
    (ties: the first), beside the bandit's winner."""
    return min(r.predictions, key=lambda n: float(np.median(r.predictions[n][1])))


def _truth(fn, params, X) -> np.ndarray:
    p = {k: torch.tensor(v, dtype=torch.float64) for k, v in params.items()}
    return fn(torch.tensor(np.asarray(X, dtype=float)), p).numpy()


def toy(seeds: list[int], restarts: int, reward: str) -> dict:
    X = np.linspace(0.0, 2.5, 101)
    settings = dict(steps=12, warmup=3, n_seed=4)
    budget = settings["n_seed"] + settings["warmup"] * 3 + settings["steps"]
    rows, t_step = [], []
    plus = {"right": [], "wrong": []}  # rewards earned by the right and the wrong models
    for truth, (fn, params) in TRUTHS.items():
        for seed in seeds:
            rng = np.random.default_rng(1000 + 10 * seed + list(TRUTHS).index(truth))
            y = _truth(fn, params, X) + rng.normal(0.0, NOISE, X.size)
            t0 = time.perf_counter()
            r = learn_hypotheses(
                X,
                models=toy_models(seed, restarts),
                measure=y,
                settings=HypothesisSettings(**settings, seed=seed, reward=reward),
            )
            t_step.append((time.perf_counter() - t0) / (budget - settings["n_seed"]))
            for st in r.record["steps"]:
                if st["reward"] is not None:
                    plus["right" if st["model"] == truth else "wrong"].append(st["reward"] > 0)
            # the baseline: the same number of points at random, best Laplace evidence
            pts = rng.choice(X.size, budget, replace=False)
            evid, t_base = {}, {}
            for name, m in toy_models(seed, restarts).items():
                m.fit(X[pts], y[pts])
                evid[name] = m.log_evidence_
                t_base[name] = m.parameters()["t"]["estimate"]
            base = max(evid, key=evid.get)
            rows.append(
                {
                    "truth": truth,
                    "seed": seed,
                    "chosen": r.winner,
                    "lowest_end": _lowest_at_end(r),
                    "t": r.parameters["t"]["estimate"],
                    "t_int": (r.parameters["t"]["low"], r.parameters["t"]["high"]),
                    "counts": r.counts,
                    "base": base,
                    "t_base": t_base[base],
                }
            )
            row = rows[-1]
            print(
                f"  {reward:8s} truth {truth:7s} seed {seed}: chose {row['chosen']:7s} "
                f"t = {row['t']:.3f} (90 %: {row['t_int'][0]:.2f}–{row['t_int'][1]:.2f}), "
                f"pulls {row['counts']}; random+evidence chose {base:7s} t = {row['t_base']:.3f}",
                flush=True,
            )
    right = [r for r in rows if r["chosen"] == r["truth"]]
    lowest_right = sum(r["lowest_end"] == r["truth"] for r in rows)
    base_right = [r for r in rows if r["base"] == r["truth"]]
    return {
        "runs": len(rows),
        "right": len(right),
        "t_ok": sum(abs(r["t"] - T_TRUE) <= 0.1 for r in right),
        "t_err": [abs(r["t"] - T_TRUE) for r in right],
        "t_cover": sum(r["t_int"][0] <= T_TRUE <= r["t_int"][1] for r in right),
        "t_width": [r["t_int"][1] - r["t_int"][0] for r in right],
        "base_right": len(base_right),
        "lowest_right": lowest_right,
        "base_t_ok": sum(abs(r["t_base"] - T_TRUE) <= 0.1 for r in base_right),
        "base_t_err": [abs(r["t_base"] - T_TRUE) for r in base_right],
        "s_per_step": float(np.median(t_step)),
        "plus_right": float(np.mean(plus["right"])),
        "plus_wrong": float(np.mean(plus["wrong"])),
        "n_right": len(plus["right"]),
        "n_wrong": len(plus["wrong"]),
    }


# ---------------------------------------------------------------- 2D: domain structures
#: The four domain structures and the field each draws [pm, Å, rad] over a 64 Å image.
DOMAIN_TRUTHS = {
    "wall": (pm.domain_wall, {"P0": 10.0, "x0": 30.0, "w": 2.0, "phi": 0.3}),
    "band": (pm.domain_band, {"P0": 10.0, "c": 30.0, "s": 18.0, "w": 2.0, "phi": 0.3}),
    "stripes": (
        pm.stripe_domains,
        {"P0": 10.0, "period": 24.0, "x0": 10.0, "w": 2.0, "phi": 0.3},
    ),
    "bubble": (pm.bubble_domain, {"P0": 10.0, "cx": 32.0, "cy": 30.0, "R": 12.0, "w": 2.0}),
}
DOSE_2D = 1e4  # e⁻/Å²: the B-site offsets come out with about 2 pm of noise


def domain_models(seed: int, restarts: int, span: float) -> dict[str, StructuredGP]:
    """Four domain structures of a polarisation field [pm] over positions [Å]."""
    P0, w = LogNormal(math.log(8.0), 0.5), LogNormal(math.log(2.0), 0.5)
    phi = Uniform(-math.pi / 2, math.pi / 2)
    pos = Uniform(0.0, span)
    kw = {
        "restarts": restarts,
        "lengthscale_prior": LogNormal(math.log(10.0), 0.5),
        "amplitude_prior": LogNormal(math.log(0.5), 0.5),
        "noise_prior": LogNormal(math.log(1.5), 0.5),
    }
    return {
        "wall": StructuredGP(
            pm.domain_wall, {"P0": P0, "x0": pos, "w": w, "phi": phi}, rng=seed, **kw
        ),
        "band": StructuredGP(
            pm.domain_band,
            {"P0": P0, "c": pos, "s": Uniform(4.0, span / 2), "w": w, "phi": phi},
            rng=seed + 1,
            **kw,
        ),
        "stripes": StructuredGP(
            pm.stripe_domains,
            {"P0": P0, "period": Uniform(10.0, span), "x0": pos, "w": w, "phi": phi},
            rng=seed + 2,
            **kw,
        ),
        "bubble": StructuredGP(
            pm.bubble_domain,
            {"P0": P0, "cx": pos, "cy": pos, "R": Uniform(4.0, span / 2), "w": w},
            rng=seed + 3,
            **kw,
        ),
    }


def _equivalent(truth: str, params: dict, fitted: dict) -> dict:
    """The true parameters in the representation nearest the fit's: stripes shifted by
    whole periods are the same field, so x0 is compared modulo the period."""
    if truth != "stripes":
        return dict(params)
    k = round((fitted["x0"]["estimate"] - params["x0"]) / params["period"])
    return dict(params, x0=params["x0"] + k * params["period"])


def measured_field(truth: str, seed: int) -> dict:
    """Imprint a domain structure into a simulated SrTiO3 [001] image and measure it back.

    The Ti–O columns are moved along x by the field (``simulate_image(displacement=...)``),
    the image is taken at ``DOSE_2D``, ``atomlens.find`` (bundled ``haadf-any``, default
    positions) finds the columns, and ``b_site_displacements`` gives each Ti–O column's
    offset from its Sr cage: the value a measurement at that column reveals. Which found
    column is Sr and which Ti–O is read from the lattice (the nearest site), the position
    from the image.
    """
    from scipy.spatial import cKDTree

    import atomlens
    from atomlens.analysis.polarisation import b_site_displacements
    from atomlens.simulate import ImagingConditions, simulate_image

    fn, params = DOMAIN_TRUTHS[truth]

    def polarisation(xy: np.ndarray, classes: np.ndarray) -> np.ndarray:
        d = np.zeros_like(xy)
        b = classes == "TiO"
        d[b, 0] = _truth(fn, params, xy[b]) / 100.0  # pm → Å
        return d

    sim = simulate_image(
        "srtio3",
        shape=256,
        pixel_size=0.25,
        rng=seed,
        rotation_deg=0.0,
        conditions=ImagingConditions(dose_e_per_A2=DOSE_2D),
        displacement=polarisation,
    )
    atoms = atomlens.find(sim.image, pixel_size=0.25, model="haadf-any")
    sites = sim.truth[["x_A", "y_A"]].to_numpy(float)
    dist, j = cKDTree(sites).query(atoms[["x_A", "y_A"]].to_numpy(float))
    atoms["class"] = np.where(dist < 0.5, sim.truth["class"].to_numpy()[j], "other")
    b = b_site_displacements(atoms, a_class="Sr", b_class="TiO")
    X = b[["x_A", "y_A"]].to_numpy(float)
    y = b["dx_A"].to_numpy(float) * 100.0  # pm
    true = _truth(fn, params, X)
    return {
        "X": X,
        "y": y,
        "err_sd": float(np.std(y - true)),
        "sigma": float(np.median(b["sigma_dx_A"])) * 100.0,
        "span": float(X.max()),
    }


def domains(seed: int, restarts: int, reward: str, steps: int, truths: list[str]) -> list[dict]:
    rows = []
    for truth in truths:
        name, params = truth, DOMAIN_TRUTHS[truth][1]
        data = measured_field(truth, seed)
        X, y, span = data["X"], data["y"], data["span"]
        t0 = time.perf_counter()
        r = learn_hypotheses(
            X,
            models=domain_models(seed, restarts, span),
            measure=y,
            settings=HypothesisSettings(steps=steps, warmup=2, n_seed=6, seed=seed, reward=reward),
        )
        elapsed = time.perf_counter() - t0
        inside = {
            k: r.parameters[k]["low"] <= v <= r.parameters[k]["high"]
            for k, v in _equivalent(name, params, r.parameters).items()
            if r.winner == name
        }
        # the winner again, fully Bayesian (NUTS) on the same points, for its intervals
        m = domain_models(seed, restarts, span)[r.winner]
        m.method, m.nuts = "nuts", NUTSSettings(warmup=100, samples=100, chains=2, max_tree_depth=5)
        t1 = time.perf_counter()
        m.fit(X[r.measured], r.values_measured)
        nuts_s = time.perf_counter() - t1
        nuts_params = m.parameters()
        nuts_inside = {
            k: nuts_params[k]["low"] <= v <= nuts_params[k]["high"]
            for k, v in _equivalent(name, params, nuts_params).items()
            if r.winner == name
        }
        rows.append(
            {
                "truth": truth,
                "seed": seed,
                "nuts_params": nuts_params,
                "nuts_inside": nuts_inside,
                "nuts_rhat": max(m.rhat_.values()),
                "nuts_seconds": nuts_s,
                "candidates": len(X),
                "span": span,
                "err_sd": data["err_sd"],
                "sigma": data["sigma"],
                "winner": r.winner,
                "lowest_end": _lowest_at_end(r),
                "counts": r.counts,
                "params": r.parameters,
                "inside": inside,
                "seconds": elapsed,
                "points": len(r.measured),
            }
        )
        _print_domain(rows[-1])
    return rows


def _print_domain(dom: dict) -> None:
    truth = dom["truth"]
    params = DOMAIN_TRUTHS[truth][1]
    print(
        f"  seed {dom['seed']}, truth {truth} {params}: {dom['candidates']} Ti–O columns over "
        f"{dom['span']:.0f} Å, "
        f"measured offsets off the true field by {dom['err_sd']:.2f} pm (sd; median σ "
        f"{dom['sigma']:.2f} pm); {dom['points']} points; chose {dom['winner']} "
        f"(pulls {dom['counts']}) in {dom['seconds']:.0f} s",
        flush=True,
    )
    for label, ps in (("MAP+Laplace", dom["params"]), ("NUTS", dom["nuts_params"])):
        if label == "NUTS":
            print(
                f"    the winner refit by NUTS ({dom['nuts_seconds']:.0f} s, split-R̂ max "
                f"{dom['nuts_rhat']:.3f}):"
            )
        same = _equivalent(truth, params, ps)
        for k, v in ps.items():
            true = same.get(k) if dom["winner"] == truth else None
            mark = (
                ""
                if true is None
                else f"  true {true:g}: {'inside' if v['low'] <= true <= v['high'] else 'OUTSIDE'}"
            )
            print(
                f"    {k:20s} {v['estimate']:9.3f}  90 %: [{v['low']:.3f}, {v['high']:.3f}]{mark}"
            )


# ---------------------------------------------------------------- timing: MAP vs NUTS
def timing(restarts: int, nuts: NUTSSettings) -> dict:
    fn, params = TRUTHS["plateau"]
    X = np.linspace(0.0, 2.5, 101)
    rng = np.random.default_rng(0)
    idx = rng.choice(X.size, 16, replace=False)
    y = _truth(fn, params, X) + rng.normal(0.0, NOISE, X.size)
    out = {}
    for method in ("map", "nuts"):
        m = toy_models(0, restarts)["plateau"]
        m.method, m.nuts = method, nuts
        t0 = time.perf_counter()
        m.fit(X[idx], y[idx])
        m.predict(X)
        out[method] = time.perf_counter() - t0
        if method == "nuts":
            out["rhat"] = m.rhat_
            out["t_nuts"] = m.parameters()["t"]
        else:
            out["t_map"] = m.parameters()["t"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one seed, fewer restarts")
    ap.add_argument(
        "--parts",
        default="timing,1d,2d",
        help="which parts to run, comma-separated (timing, 1d, 2d; default all)",
    )
    ap.add_argument(
        "--truths-2d",
        default=None,
        help=f"2D truths, comma-separated (default all: {','.join(DOMAIN_TRUTHS)}; --quick: band)",
    )
    ap.add_argument(
        "--seeds-2d",
        default="0",
        help="seeds of the 2D images and loops, comma-separated (default 0)",
    )
    ap.add_argument(
        "--rewards",
        default="decrease,lowest-stale,lowest",
        help="reward rules of the 1D toy, comma-separated (default all three)",
    )
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    if parts - {"timing", "1d", "2d"}:
        ap.error(f"--parts: unknown {sorted(parts - {'timing', '1d', '2d'})}; use timing, 1d, 2d")
    torch.set_num_threads(1)
    seeds = [0] if args.quick else [0, 1, 2]
    restarts = 2 if args.quick else 3
    nuts = NUTSSettings(warmup=100, samples=100, chains=2, max_tree_depth=5)
    t_all = time.perf_counter()

    tm = None
    if "timing" in parts:
        print(
            "== 3. time per step, 16 points, 101 candidates (one fit + prediction) ==", flush=True
        )
        tm = timing(restarts, nuts)
        print(f"  MAP ({restarts} restarts + Laplace): {tm['map']:.2f} s")
        print(
            f"  NUTS ({nuts.chains} chains × ({nuts.warmup} warm-up + {nuts.samples} draws), "
            f"depth ≤ {nuts.max_tree_depth}): {tm['nuts']:.2f} s = "
            f"{tm['nuts'] / tm['map']:.0f}× MAP"
        )
        worst = max(tm["rhat"], key=tm["rhat"].get)
        print(
            f"  NUTS split-R̂: max {tm['rhat'][worst]:.3f} ({worst}) — target < 1.1: "
            f"{'met' if tm['rhat'][worst] < 1.1 else 'MISSED'}"
        )
        print(
            f"  t: MAP {tm['t_map']['estimate']:.3f} [{tm['t_map']['low']:.3f}, "
            f"{tm['t_map']['high']:.3f}], NUTS {tm['t_nuts']['estimate']:.3f} "
            f"[{tm['t_nuts']['low']:.3f}, {tm['t_nuts']['high']:.3f}] (true {T_TRUE})"
        )

    results = {}
    for reward in args.rewards.split(",") if "1d" in parts else ():
        print(f"== 1. 1D toy, reward '{reward}', {len(seeds)} seeds × 3 truths ==", flush=True)
        results[reward] = toy(seeds, restarts, reward)

    if args.truths_2d:
        truths = args.truths_2d.split(",")
        if set(truths) - set(DOMAIN_TRUTHS):
            ap.error(f"--truths-2d: unknown {sorted(set(truths) - set(DOMAIN_TRUTHS))}")
    else:
        truths = ["band"] if args.quick else list(DOMAIN_TRUTHS)
    doms = []
    if "2d" in parts:
        print(
            f"== 2. 2D domain structures imprinted into simulated SrTiO3 images at "
            f"{DOSE_2D:.0e} e⁻/Å² and measured back by atomlens.find ==",
            flush=True,
        )
        for seed in (int(v) for v in args.seeds_2d.split(",")):
            doms += domains(seed, restarts, "lowest", steps=8 if args.quick else 12, truths=truths)

    print("\n== summary: figure | target | comparison ==")
    for reward, r in results.items():
        err = np.median(r["t_err"]) if r["t_err"] else float("nan")
        berr = np.median(r["base_t_err"]) if r["base_t_err"] else float("nan")
        met = "met" if r["right"] >= math.ceil(8 * r["runs"] / 9) else "MISSED"
        print(
            f"  1D reward '{reward}': right model {r['right']}/{r['runs']} (target ≥ 8 of 9: "
            f"{met}) | random design + best evidence {r['base_right']}/{r['runs']} | lowest "
            f"σ at the end {r['lowest_right']}/{r['runs']}"
        )
        print(
            f"      t within ±0.1 in {r['t_ok']}/{r['right']} right runs (median |Δt| {err:.3f}; "
            f"target all: {'met' if r['t_ok'] == r['right'] and r['right'] else 'MISSED'}) | "
            f"baseline {r['base_t_ok']}/{r['base_right']} (median |Δt| {berr:.3f})"
        )
        width = np.median(r["t_width"]) if r["t_width"] else float("nan")
        print(
            f"      true t inside the winner's 90 % interval (MAP+Laplace) in {r['t_cover']}/"
            f"{r['right']} right runs (median width {width:.3f})"
        )
        print(
            f"      share of +1 rewards: right model {r['plus_right']:.2f} "
            f"({r['n_right']} pulls), wrong models {r['plus_wrong']:.2f} ({r['n_wrong']} pulls)"
        )
        print(f"      {r['s_per_step']:.2f} s per measurement (median over runs)")
    right2 = [d for d in doms if d["winner"] == d["truth"]]
    map_ok = sum(all(d["inside"].values()) for d in right2)
    nuts_ok = sum(all(d["nuts_inside"].values()) for d in right2)
    n_par = sum(len(d["inside"]) for d in right2)
    if doms:
        _summary_2d(doms, right2, map_ok, nuts_ok, n_par)
    if tm is not None:
        worst = max(tm["rhat"], key=tm["rhat"].get)
        print(
            f"  NUTS / MAP time per fit: {tm['nuts'] / tm['map']:.0f}×; split-R̂ max "
            f"{tm['rhat'][worst]:.3f} (< 1.1)"
        )
    print(f"  total {time.perf_counter() - t_all:.0f} s on {torch.get_num_threads()} thread(s)")


def _summary_2d(doms: list[dict], right2: list[dict], map_ok: int, nuts_ok: int, n_par: int):
    print(
        f"  2D: right structure in {len(right2)}/{len(doms)} truths "
        f"({', '.join(d['truth'] + '→' + d['winner'] for d in doms)}; target all: "
        f"{'met' if len(right2) == len(doms) else 'MISSED'}) | lowest σ at the end "
        f"{sum(d['lowest_end'] == d['truth'] for d in doms)}/{len(doms)}"
    )
    print(
        f"      all parameters inside their 90 % intervals: MAP+Laplace {map_ok}/{len(right2)} "
        f"runs ({sum(sum(d['inside'].values()) for d in right2)}/{n_par} parameters), NUTS "
        f"{nuts_ok}/{len(right2)} runs ({sum(sum(d['nuts_inside'].values()) for d in right2)}/"
        f"{n_par}); target all: MAP {'met' if map_ok == len(right2) else 'MISSED'}, NUTS "
        f"{'met' if nuts_ok == len(right2) else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
