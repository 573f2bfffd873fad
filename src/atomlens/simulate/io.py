"""Writing a simulated image and its truth to a directory."""

from __future__ import annotations

import json
from os import PathLike
from pathlib import Path

import numpy as np

from atomlens._shared.atomic import atomic_directory
from atomlens.report import save_atoms_png
from atomlens.simulate.scene import SimulatedImage

__all__ = ["write_simulation"]


def write_simulation(
    sim: SimulatedImage,
    /,
    out_dir: str | PathLike[str],
    *,
    overwrite: bool = False,
    masks: bool = False,
    preview: bool = True,
) -> Path:
    """Write a simulated image, its truth and a preview into ``out_dir``.

    Files: ``image.tif`` (float32, ImageJ TIFF with the pixel size as its calibration in nm),
    ``image.npy``, ``truth.csv`` (the truth atoms table), ``vacancies.csv``,
    ``metadata.json`` (conditions, seed, version), ``preview.png`` (image with the truth
    coloured by class) and, with ``masks=True``, ``masks.npy`` (K + 1, H, W).

    The directory is built under a temporary name and moved into place at the end, so an
    interrupted run leaves nothing half-written.

    Parameters
    ----------
    sim : SimulatedImage
        What to write.
    out_dir : str or path-like
        Output directory; must not exist or be empty unless ``overwrite``.
    overwrite : bool
        Replace an existing directory.
    masks : bool
        Also write the label masks.
    preview : bool
        Write ``preview.png``.

    Returns
    -------
    pathlib.Path
        The output directory.
    """
    import tifffile

    px_nm = sim.pixel_size / 10.0
    with atomic_directory(out_dir, overwrite=overwrite) as tmp:
        tifffile.imwrite(
            tmp / "image.tif",
            sim.image.astype(np.float32),
            imagej=True,
            resolution=(1.0 / px_nm, 1.0 / px_nm),
            metadata={"unit": "nm", "axes": "YX"},
        )
        np.save(tmp / "image.npy", sim.image.astype(np.float32))
        sim.truth.to_csv(tmp / "truth.csv", index=False, float_format="%.6g")
        sim.vacancies.to_csv(tmp / "vacancies.csv", index=False, float_format="%.6g")
        if masks:
            np.save(tmp / "masks.npy", sim.masks)
        meta = dict(sim.metadata)
        meta["class_names"] = list(sim.class_names)
        meta["files"] = {
            "image.tif": "float32 counts, ImageJ calibration in nm/px",
            "image.npy": "float32 counts (H, W)",
            "truth.csv": "one row per column; x = column, y = row, pixel centres at integers",
            "vacancies.csv": "sites emptied by vacancies",
        }
        (tmp / "metadata.json").write_text(json.dumps(meta, indent=2, default=str))
        if preview:
            c = sim.conditions
            title = (
                f"{meta['material']}  {sim.pixel_size:g} Å/px  dose {c.dose_e_per_A2:.3g} e⁻/Å²  "
                f"{c.mode.upper()}"
            )
            save_atoms_png(
                tmp / "preview.png",
                sim.image,
                atoms=sim.truth,
                title=title,
                pixel_size=sim.pixel_size,
            )
    return Path(out_dir)
