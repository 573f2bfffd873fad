"""``atomlens demo``: a graphene image with known atoms, found by the bundled ensemble.

No arguments, no network: simulates a 512 × 512 px HAADF image of graphene at 0.1 Å/px
(1e5 e⁻/Å², aberrated probe, thin carbon film, mild scan noise) with three Si substitutions
and a vacancy at fixed sites, runs the bundled ``graphene`` ensemble on it exactly as
``atomlens find`` would, and scores the atoms against the truth exactly as
``atomlens evaluate atomlens-demo/atoms.csv atomlens-demo/truth.csv`` does
(:func:`atomlens.metrics.evaluate_files` on the files written, match radius 0.5 Å, every atom
counted), so the two print the same numbers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

from atomlens._shared.atomic import check_output_directory
from atomlens.metrics import DetectionReport, evaluate_files
from atomlens.metrics.detection import DEFAULT_RADIUS_A
from atomlens.pipeline.files import find_files
from atomlens.report.calibration_html import add_evaluation_to_report
from atomlens.simulate import (
    AberratedProbe,
    Background,
    ImagingConditions,
    ScanDistortion,
    Substitution,
    Vacancy,
    simulate_image,
)

__all__ = ["DemoResult", "run_demo"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoResult:
    """Scores of the demo against the simulated truth, as ``atomlens evaluate`` gives them.

    Attributes
    ----------
    out : pathlib.Path
        The directory written.
    n_atoms, n_true : int
        Atoms found and true atoms (all of them, the border band included).
    f1 : float
        Detection F1 (match radius 0.5 Å, class ignored).
    rmse_pm : float
        Radial position RMSE of the matched atoms [pm] (``report.errors_pm.rmse``).
    si_found : str
        Si dopants found as Si (per-class matching), e.g. ``"3/3"``.
    seconds : float
        Wall time of simulation, finding and scoring.
    report : DetectionReport
        The whole score (per class, confusion matrix), as ``atomlens evaluate`` prints it.
    """

    out: Path
    n_atoms: int
    n_true: int
    f1: float
    rmse_pm: float
    si_found: str
    seconds: float
    report: DetectionReport


def run_demo(
    out: str | PathLike[str] = "atomlens-demo",
    /,
    *,
    model: str = "graphene",
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = False,
) -> DemoResult:
    """Simulate, find with the bundled ensemble, score, and write everything into ``out``.

    ``out`` receives what ``atomlens find`` writes (``report.html``, ``atoms.csv``, …) plus
    ``image.tif`` (calibrated) and ``truth.csv``.

    Parameters
    ----------
    out : path
        Output directory (refused if not empty, unless ``overwrite``).
    model : str
        Bundled model name or model directory.
    seed : int
        Seed of the simulated image.
    overwrite : bool
        Replace ``out``.
    progress : bool
        Progress bar.

    Returns
    -------
    DemoResult
    """
    import numpy as np
    import tifffile

    t0 = time.perf_counter()
    final = Path(out)
    check_output_directory(final, overwrite=overwrite)
    ps = 0.1
    sites_si = ((14.0, 15.0), (34.0, 20.0), (22.0, 36.0))
    sim = simulate_image(
        "graphene",
        shape=512,
        pixel_size=ps,
        rng=seed,
        rotation_deg=12.0,
        defects=[Substitution("C", "Si", sites=sites_si), Vacancy("C", sites=((30.0, 32.0),))],
        conditions=ImagingConditions(
            dose_e_per_A2=1e5,
            probe=AberratedProbe(defocus_A=5.0),
            background=Background(film_thickness_A=1.5),
            distortion=ScanDistortion(line_jitter_px=0.2),
        ),
    )
    import tempfile

    with tempfile.TemporaryDirectory(prefix="atomlens-demo-") as tmp:
        image_path = Path(tmp) / "image.tif"
        tifffile.imwrite(
            image_path,
            sim.image.astype(np.float32),
            imagej=True,
            resolution=(1 / (ps / 10), 1 / (ps / 10)),
            metadata={"unit": "nm"},
        )
        res = find_files(
            [image_path], model=model, out=final, overwrite=overwrite, progress=progress
        )
    tifffile.imwrite(
        final / "image.tif",
        sim.image.astype(np.float32),
        imagej=True,
        resolution=(1 / (ps / 10), 1 / (ps / 10)),
        metadata={"unit": "nm"},
    )
    _name_the_kept_image(final, str(image_path), "image.tif")
    sim.truth.to_csv(final / "truth.csv", index=False, float_format="%.6g")
    report = evaluate_files(final / "atoms.csv", final / "truth.csv", radius_A=DEFAULT_RADIUS_A)
    if (final / "report.html").exists():
        add_evaluation_to_report(final / "report.html", report, truth_name="truth.csv")
    si = report.per_class.loc["Si"] if "Si" in report.per_class.index else None
    si_found = f"{int(si.tp)}/{int(si.n_true)}" if si is not None else "0/0"
    return DemoResult(
        final,
        len(res.atoms),
        report.tp + report.fn,
        float(report.f1),
        float(report.errors_pm.rmse) if report.errors_pm.n else float("nan"),
        si_found,
        time.perf_counter() - t0,
        report,
    )


def _name_the_kept_image(out: Path, temporary: str, kept: str) -> None:
    """Point the tables and the report at ``out/kept`` instead of the temporary file the
    atoms were found in (deleted by now): ``file`` is then relative to the tables. Each
    file is replaced whole (written beside it, then renamed), so an interruption leaves
    the old one."""
    import os

    import pandas as pd

    def replace(p: Path, write: Callable[[Path], object]) -> None:
        part = p.with_name(f".{p.name}.partial")
        write(part)
        os.replace(part, p)

    for name in ("atoms.csv", "rejected.csv"):
        if (out / name).exists():
            t = pd.read_csv(out / name)
            t["file"] = t["file"].replace(temporary, kept)
            replace(out / name, lambda q, t=t: t.to_csv(q, index=False, float_format="%.6g"))
    if (out / "atoms.parquet").exists():
        t = pd.read_parquet(out / "atoms.parquet")
        t["file"] = t["file"].replace(temporary, kept)
        replace(out / "atoms.parquet", lambda q, t=t: t.to_parquet(q, index=False))
    html = out / "report.html"
    if html.exists():
        text = html.read_text(encoding="utf-8").replace(temporary, kept)
        replace(html, lambda q: q.write_text(text, encoding="utf-8"))
