"""Plant deliberate faults in the core and check that the test suite catches each one.

Each fault is one textual change to one source file, applied in a temporary copy of
``src/`` and ``tests/`` (the working tree is never touched); the tests that cover it are
run there, and the script prints, per fault, which tests failed. A fault no test catches is
a hole in the suite. Exit code 1 when any fault went unnoticed.

    python scripts/check_faults.py            # all faults (about 10–15 min on 2 cores)
    python scripts/check_faults.py --list     # the faults and the tests each runs
    python scripts/check_faults.py shift sigma-inverted

Each run first checks that an unmodified copy passes the same tests, so a failure is the
fault's and not the copy's.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Fault:
    """A planted fault: replace ``old`` by ``new`` (exactly once) in ``path``."""

    name: str
    what: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


FAULTS = (
    Fault(
        "shift",
        "every consensus position shifted by +0.3 px in x (the default path of find)",
        "src/atomlens/ensemble/consensus.py",
        '    keep = table["p_detect"].to_numpy() >= p_min - 1e-9\n',
        '    table["x_px"] += 0.3\n    table["x_A"] = table["x_px"] * ps\n'
        '    keep = table["p_detect"].to_numpy() >= p_min - 1e-9\n',
        ("tests/pipeline/test_accuracy.py", "tests/test_demo.py", "tests/cli/test_find_train.py"),
    ),
    Fault(
        "refine-skipped",
        "the Gaussian refinement returns its start positions",
        "src/atomlens/locate/refine.py",
        "    xy_out = np.where(fitted[:, None], theta[:, :2], pts)\n",
        "    xy_out = pts.copy()\n",
        ("tests/locate", "tests/pipeline/test_accuracy.py"),
    ),
    Fault(
        "p-real-constant",
        "the calibrated p_real is 0.5 for every candidate",
        "src/atomlens/ensemble/calibration.py",
        '        p = candidates["p_detect"].to_numpy(float)\n',
        "        return np.full(len(candidates), 0.5)\n"
        '        p = candidates["p_detect"].to_numpy(float)\n',
        ("tests/ensemble", "tests/elit/test_recalibrate.py", "tests/test_demo.py"),
    ),
    Fault(
        "sigma-inverted",
        "the σ model divides each source's base (the fit's σ, the bound) by its scale `a` "
        "instead of multiplying",
        "src/atomlens/locate/sigma.py",
        "        return np.sqrt((a * np.asarray(base, float)) ** 2 + (b * sp) ** 2 + c * c)\n",
        "        return np.sqrt((np.asarray(base, float) / a) ** 2 + (b * sp) ** 2 + c * c)\n",
        ("tests/locate", "tests/pipeline/test_accuracy.py", "tests/ensemble"),
    ),
    Fault(
        "guards-off",
        "ELIT keeps every round (both guards switched off)",
        "src/atomlens/elit/guards.py",
        '    if config.simulated_share >= 1:\n        return True, ""\n',
        '    return True, ""\n',
        ("tests/elit",),
    ),
    Fault(
        "classes-swapped",
        "each atom gets the next class of the model (C ↔ Si for graphene)",
        "src/atomlens/locate/atoms.py",
        "    classes = np.asarray(names, dtype=object)[cls_idx] if n else",
        "    classes = np.asarray(names, dtype=object)[(cls_idx + 1) % len(names)] if n else",
        ("tests/pipeline/test_accuracy.py", "tests/test_demo.py", "tests/locate"),
    ),
    Fault(
        "pixel-size-ignored",
        "images are fed to the network at their own sampling, whatever the model's",
        "src/atomlens/ensemble/ensemble.py",
        "        factor = ps / self.config.pixel_size_A\n",
        "        factor = 1.0\n",
        ("tests/pipeline", "tests/fourier"),
    ),
    Fault(
        "border-rule-off",
        "score_atoms counts the atoms within the margin of the border",
        "src/atomlens/metrics/border.py",
        "    m = margin_A / pixel_size\n",
        "    m = 0.0 * margin_A / pixel_size\n",
        ("tests/metrics", "tests/pipeline/test_accuracy.py"),
    ),
)


def _copy(dest: Path) -> None:
    for part in ("src", "tests"):
        shutil.copytree(
            ROOT / part, dest / part, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
        )
    for f in ("pyproject.toml",):
        shutil.copy2(ROOT / f, dest / f)
    if (ROOT / "docs").is_dir():  # some tests read the docs
        shutil.copytree(ROOT / "docs", dest / "docs")


def _run(copy: Path, tests: tuple[str, ...]) -> tuple[int, list[str], float]:
    env = {**os.environ, "PYTHONPATH": str(copy / "src")}
    t0 = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf", *tests],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
    )
    failed = sorted(set(re.findall(r"^(?:FAILED|ERROR) (\S+)", run.stdout, flags=re.MULTILINE)))
    return run.returncode, failed, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("faults", nargs="*", help="names of the faults to plant (default: all)")
    ap.add_argument("--list", action="store_true", help="list the faults and exit")
    args = ap.parse_args()
    chosen = [f for f in FAULTS if not args.faults or f.name in args.faults]
    unknown = set(args.faults) - {f.name for f in FAULTS}
    if unknown:
        ap.error(f"unknown faults {sorted(unknown)}; known: {[f.name for f in FAULTS]}")
    if args.list:
        for f in chosen:
            print(f"{f.name:20s} {f.what}\n{'':20s} tests: {' '.join(f.tests)}")
        return 0
    missed = []
    with tempfile.TemporaryDirectory(prefix="atomlens-faults-") as tmp:
        clean = Path(tmp) / "clean"
        _copy(clean)
        every = tuple(dict.fromkeys(t for f in chosen for t in f.tests))
        rc, failed, secs = _run(clean, every)
        if rc != 0:
            print(f"the unmodified copy fails its tests ({failed}); fix that first")
            return 2
        print(f"unmodified copy: {len(every)} test paths pass ({secs:.0f} s)")
        shutil.rmtree(clean, ignore_errors=True)
        for f in chosen:
            copy = Path(tmp) / f.name
            _copy(copy)
            target = copy / f.path
            text = target.read_text(encoding="utf-8")
            if text.count(f.old) != 1:
                print(f"{f.name}: the text to replace is not in {f.path} exactly once; update it")
                return 2
            target.write_text(text.replace(f.old, f.new), encoding="utf-8")
            rc, failed, secs = _run(copy, f.tests)
            caught = rc != 0 and bool(failed)
            missed += [] if caught else [f.name]
            print(f"\n{f.name} — {f.what} ({secs:.0f} s): " + ("CAUGHT" if caught else "MISSED"))
            for t in failed:
                print(f"    {t}")
            shutil.rmtree(copy, ignore_errors=True)
    print(
        f"\n{len(chosen) - len(missed)} of {len(chosen)} faults caught"
        + (f"; missed: {', '.join(missed)}" if missed else "")
    )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
