"""Training an ensemble: one training run per member, seeds apart."""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import replace
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from atomlens._shared.cluster import dask_client
from atomlens._shared.device import resolve_device
from atomlens.ensemble import Model
from atomlens.ensemble.calibration import Calibration
from atomlens.ensemble.ensemble import Ensemble
from atomlens.ensemble.files import CONFIG_FILE
from atomlens.train.calibration import (
    TooFewAtomsError,
    calibration_candidates,
    fit_calibration,
    fit_p_real_model,
    fit_sigma_model,
    sigma_calibration_images,
)
from atomlens.train.recipe import make_ranges, prepare_training, train_model
from atomlens.train.together import train_together
from atomlens.train.trainer import TrainConfig
from atomlens.train.validation import ValidationSet

__all__ = ["SIGMA_MATERIALS", "calibrate_model", "sigma_materials", "train_ensemble"]

logger = logging.getLogger(__name__)

MEMBERS_DIR = "members"


def _train_member_task(member_dir: str, config: dict[str, Any], recipe: dict[str, Any]) -> str:
    """One member's training, as a Dask task (module level, so workers can import it)."""

    train_model(out=member_dir, config=TrainConfig.from_dict(config), progress=False, **recipe)
    return member_dir


def calibration_images(recipe: dict[str, Any], /, *, n_images: int = 8, seed: int = 0) -> Any:
    """The simulated images :func:`train_ensemble` calibrates an ensemble on: ``n_images``
    256² px images of the recipe's ranges at 0.5–0.8× its pixel size, from ``seed`` (the
    training's base seed) + 20 000, none of which the members trained on.

    Parameters
    ----------
    recipe : dict
        The recipe keywords given to :func:`train_ensemble` (``pixel_size`` [Å/px] and
        what :func:`atomlens.train.recipe.make_ranges` takes).
    n_images : int
        Number of images.
    seed : int
        The training's base seed (``TrainConfig.seed``).

    Returns
    -------
    ValidationSet
    """

    keys = set(recipe) - {"architecture", "n_validation"}
    ranges = make_ranges(**{k: recipe[k] for k in keys})
    ps = float(recipe["pixel_size"])
    return ValidationSet.simulated(
        replace(ranges, pixel_size_A=(ps * 0.5, ps * 0.8)),
        n_images=n_images,
        shape=256,
        seed=seed + 20_000,
    )


#: Most of a recipe's materials the σ model is fitted on (evenly spread over its list).
SIGMA_MATERIALS = 6


def sigma_materials(materials: list[str], /) -> list[str]:
    """Up to :data:`SIGMA_MATERIALS` of a recipe's distinct materials, evenly spread over
    its list (a recipe lists materials by family, so its start alone would miss some)."""
    distinct = list(dict.fromkeys(str(m) for m in materials))
    if len(distinct) <= SIGMA_MATERIALS:
        return distinct
    idx = np.linspace(0, len(distinct) - 1, SIGMA_MATERIALS).round().astype(int)
    return [distinct[i] for i in idx]


def _shifted_fits(
    ens: Ensemble, recipe: dict[str, Any], /, *, seed: int, progress: Any
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The σ model (:func:`fit_sigma_model`) and the logistic ``p_real``
    (:func:`fit_p_real_model`) fitted on simulated images of the recipe's materials under
    shifted conditions: the σ model's :class:`Calibration` fields (none, with a warning,
    when the members match too few atoms to fit one) and the logistic's, where it tells
    the false atoms of the conditions it was not fitted on from the real ones better than
    ``ens.calibration``'s ``p_real`` (fitted on the validation images) does on the same
    atoms; else None."""
    keys = set(recipe) - {"architecture", "n_validation"}
    base = make_ranges(**{k: recipe[k] for k in keys})
    images = sigma_calibration_images(
        sigma_materials(list(recipe["materials"])),
        float(recipe["pixel_size"]),
        seed=seed + 31_000,
        base=base,
    )
    sigma: dict[str, Any] = {}
    try:
        model, validation = fit_sigma_model(ens, images, progress=bool(progress))
    except TooFewAtomsError as exc:  # the members have not learnt enough to fit one
        logger.warning("no σ model fitted, the default is kept: %s", exc)
    else:
        logger.info("σ model %s; left-out z RMS %s", model.to_dict(), validation["all"]["z_rms"])
        sigma = {"sigma_model": model.to_dict(), "sigma_validation": validation}
    logistic, p_val = fit_p_real_model(
        ens, images, incumbent=ens.calibration, progress=bool(progress)
    )
    if logistic is None:
        return sigma, None
    pooled = p_val.get("all", {})  # none where no condition could be left out
    shifted, stored = pooled.get("auroc"), pooled.get("auroc_incumbent")
    # the bundled graphene ensemble's own logistic ranked new shifted images better
    # (AUROC 0.981 against 0.964): a model's recipe can teach more than the shifts
    better = shifted is not None and (stored is None or shifted > stored)
    logger.info(
        "logistic p_real on the shifted images: left-out AUROC %s against %s from the "
        "validation images; %s",
        shifted,
        stored,
        "kept" if better else "not kept",
    )
    return sigma, logistic if better else None


def calibrate_model(
    model: Ensemble,
    recipe: dict[str, Any],
    /,
    *,
    seed: int = 0,
    n_calibration: int = 8,
    fit_sigma: bool = True,
    progress: bool | Callable[..., Any] = False,
) -> Calibration:
    """Calibrate a trained model or ensemble on simulated images of its own recipe: how
    its ``p_detect`` and evidence map to real atoms (``p_real``, :func:`fit_calibration`
    on ``n_calibration`` unseen images, :func:`calibration_images`) and, with
    ``fit_sigma``, its σ model on images under shifted conditions, and a logistic
    ``p_real`` on them where that ranks their false atoms better (see
    :func:`train_ensemble`). Sets ``model.calibration``;
    ``calibration.save(directory)`` stores it beside the weights.

    Parameters
    ----------
    model : Ensemble or Model
        The trained model.
    recipe : dict
        The recipe keywords it was trained with (``materials``, ``pixel_size``, …; those of
        :func:`atomlens.train.recipe.make_ranges`, ``architecture`` and ``n_validation``).
    seed : int
        The training's base seed (the images are drawn from seeds it never trained on).
    n_calibration : int
        Calibration images.
    fit_sigma : bool
        Fit the σ model on the shifted-condition images too, and a logistic ``p_real``,
        kept where it ranks their false atoms better than the one fitted on the
        ``n_calibration`` images.
    progress : bool or callable
        Progress bar over the σ images.

    Returns
    -------
    Calibration
    """
    val = calibration_images(recipe, n_images=n_calibration, seed=seed)
    # uncalibrated candidates: the same for both calibrations below, so found once
    found = [
        calibration_candidates(model, im, ps)
        for im, ps in zip(val.images, val.pixel_sizes, strict=True)
    ]

    def calibrate(logistic: dict[str, Any] | None = None) -> Calibration:
        return fit_calibration(
            model, val.images, val.truths, val.pixel_sizes, hidden=val.hidden, found=found,
            logistic=logistic,
        )  # fmt: skip

    model.calibration = calibrate()
    if fit_sigma:
        sigma, logistic = _shifted_fits(model, recipe, seed=seed, progress=progress)
        if logistic is not None:  # the F1 of each p_real threshold again, with it
            model.calibration = calibrate(logistic)
        model.calibration = replace(model.calibration, **sigma)
    logger.debug("calibration: %s", model.calibration)
    return model.calibration


def train_ensemble(
    *,
    members: int,
    out: str | PathLike[str],
    config: TrainConfig | None = None,
    overwrite: bool = False,
    progress: bool | Callable[..., Any] = False,
    cluster: Any = None,
    resources: dict[str, float] | None = None,
    n_calibration: int = 8,
    fit_sigma: bool = True,
    mode: str = "auto",
    **recipe: Any,
) -> Ensemble:
    """Train ``members`` networks that differ only in their seed, and save them as one model.

    Member ``i`` uses seed ``config.seed + 1000 · i`` for its initial weights, its stream of
    simulated images and its augmentation draws: the diversity that makes the members'
    disagreement mean something. Each member trains in ``out/members/i/`` with its own
    checkpoint, so an interrupted run resumes at the member and step where it stopped; at
    the end ``out/`` holds the ensemble (``config.json`` + ``weights.safetensors``) and the
    members' logs in ``out/logs/``.

    Parameters
    ----------
    members : int
        Number of members N ≥ 1.
    out : path
        Model directory.
    config : TrainConfig, optional
        Hyperparameters shared by the members (``seed`` is the base seed).
    overwrite : bool
        Replace a finished model at ``out``.
    progress : bool or callable
        Progress bars (in-process training only).
    cluster : dask.distributed.Client or str, optional
        Train the members as Dask tasks on this cluster (a client, or a scheduler address
        such as ``"tcp://host:8786"``) instead of one after the other here. Workers must see
        ``out`` (a shared file system); Dask schedules, retries and balances the tasks.
    n_calibration : int
        Simulated images (drawn from the training ranges, unseen seeds) on which the
        ensemble's ``p_detect`` and σ are calibrated (:func:`fit_calibration`) and the
        result saved as ``calibration.json``; 0 skips it.
    fit_sigma : bool
        With the calibration, fit the ensemble's σ model
        (:func:`atomlens.train.calibration.fit_sigma_model`) on simulated images of up to
        :data:`SIGMA_MATERIALS` of the recipe's materials under shifted conditions (film,
        aberrated and wide probes, scan noise, finer sampling; 10³–10⁷ e⁻/Å²), and store it
        with its leave-one-condition-out validation. ``find`` then gives σ for the position
        it reports and ``positions="auto"`` takes the fit where this ensemble's fit is the
        better one; without it both use the default σ model, with which it takes the fit too
        often for freshly trained members (a graphene ensemble on new images of those
        conditions: RMSE of the reported positions 11.6 pm with the default, 8.9 pm with its
        own; ``scripts/calibrate_sigma.py --compare``). A logistic ``p_real`` is fitted on
        the same images too (:func:`atomlens.train.calibration.fit_p_real_model`), which
        hold far more false candidates, and of more kinds, than the validation images; it
        replaces the one fitted on those where it ranks the false atoms of the conditions
        left out better (on the same atoms). Costs about 30 simulated 160² images per
        material, each found twice (a minute or two on a laptop's CPU for one material).
    mode : {"auto", "vectorized", "sequential"}
        In-process training only: ``"vectorized"`` trains all members together, one
        batched forward and backward pass per step (:func:`atomlens.train.together.
        train_together`); ``"sequential"`` trains them one after the other. ``"auto"``
        picks vectorized on a GPU and sequential on the CPU, where batching the members
        was measured to be slower (``benchmarks/ensemble_speed.py``). Both give the same
        members up to float rounding.
    resources : dict, optional
        Dask resources each member's task needs, e.g. ``{"GPU": 1}`` with workers started
        as ``dask worker … --resources GPU=1`` so that each GPU trains one member at a time.
    **recipe
        Everything else :func:`atomlens.train.recipe.train_model` takes (materials,
        pixel_size, defects, …).

    Returns
    -------
    Ensemble
    """

    if not (isinstance(members, int) and 1 <= members <= 64):
        raise ValueError(f"members must be an int within 1–64, got {members!r}.")
    root = Path(out)
    cfg = config if config is not None else TrainConfig()
    if (root / CONFIG_FILE).exists():
        if not overwrite:
            raise FileExistsError(
                f"{root} already holds a trained model; choose another `out` or pass "
                "`overwrite=True`."
            )
        shutil.rmtree(root)
    elif root.exists() and any(root.iterdir()) and not (root / MEMBERS_DIR).exists():
        if not overwrite:
            raise FileExistsError(
                f"{root} exists, is not empty and is not an ensemble run to resume; choose "
                "another `out` or pass `overwrite`."
            )
        shutil.rmtree(root)
    todo = []
    for i in range(members):
        member_dir = root / MEMBERS_DIR / str(i)
        if (member_dir / CONFIG_FILE).exists() and not (member_dir / "checkpoint").exists():
            logger.info("member %d already trained", i)
            continue
        todo.append((i, member_dir, replace(cfg, seed=cfg.seed + 1000 * i)))
    if mode not in ("auto", "vectorized", "sequential"):
        raise ValueError(f"mode must be 'auto', 'vectorized' or 'sequential', got {mode!r}.")
    if mode == "auto":  # resume an interrupted run the way it was started
        if (root / MEMBERS_DIR / "checkpoint-together").exists():
            mode = "vectorized"
        elif any((d / "checkpoint").exists() for _, d, _ in todo):
            mode = "sequential"
        else:
            mode = "vectorized" if resolve_device(cfg.device).type == "cuda" else "sequential"
    if cluster is None and mode == "vectorized" and todo:
        logger.info("training %d members together", len(todo))
        train_together(
            [prepare_training(config=c, **recipe) for _, _, c in todo],
            [d for _, d, _ in todo],
            checkpoint=root / MEMBERS_DIR / "checkpoint-together",
            progress=progress,
        )
    elif cluster is None:
        for i, member_dir, member_cfg in todo:
            logger.info("training member %d of %d", i + 1, members)
            train_model(out=member_dir, config=member_cfg, progress=progress, **recipe)
    elif todo:
        with dask_client(cluster, purpose="training on a cluster") as client:
            futures = [
                client.submit(
                    _train_member_task,
                    str(d),
                    c.to_dict(),
                    recipe,
                    key=f"atomlens-train-member-{i}-{root.name}",
                    resources=resources,
                    pure=False,
                )
                for i, d, c in todo
            ]
            client.gather(futures)
    models = [Model.load(root / MEMBERS_DIR / str(i)) for i in range(members)]
    ens = Ensemble.from_models(models)
    ens.config = replace(
        ens.config,
        provenance={
            "members": members,
            "base_seed": cfg.seed,
            "materials": models[0].config.provenance.get("materials"),
            "simulation": models[0].config.provenance.get("simulation"),
            "atomlens_version": models[0].config.provenance.get("atomlens_version"),
        },
    )
    if n_calibration > 0:
        calibrate_model(
            ens,
            recipe,
            seed=cfg.seed,
            n_calibration=n_calibration,
            fit_sigma=fit_sigma,
            progress=progress,
        )
    # assemble beside the members, then move the files in: config.json last (the marker)
    tmp = root / ".ensemble.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    ens.save(tmp)
    logs = root / "logs"
    logs.mkdir(exist_ok=True)
    for i in range(members):
        log = root / MEMBERS_DIR / str(i) / "metrics.jsonl"
        if log.exists():
            shutil.copy2(log, logs / f"member-{i}.jsonl")
    for name in sorted(os.listdir(tmp), key=lambda n: n == CONFIG_FILE):
        os.replace(tmp / name, root / name)
    tmp.rmdir()
    shutil.rmtree(root / MEMBERS_DIR, ignore_errors=True)
    (logs / "ensemble.json").write_text(json.dumps(ens.config.provenance, indent=1))
    return ens
