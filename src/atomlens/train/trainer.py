"""The one training loop: AdamW, warm-up + cosine, clipping, AMP, atom-level early stopping,
resumable atomic checkpoints and a JSONL log."""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

import atomlens
from atomlens._shared.atomic import atomic_directory
from atomlens._shared.config import ConfigDict
from atomlens._shared.device import inference_dtype, resolve_device
from atomlens._shared.interrupt import deferred_interrupt
from atomlens.ensemble import Model
from atomlens.ensemble.files import CONFIG_FILE, write_model_files
from atomlens.train.augment import Augmentation, augment_batch, normalize_batch
from atomlens.train.data import BatchSource
from atomlens.train.validation import ValidationSet

__all__ = ["TrainConfig", "TrainResult", "Trainer", "lr_factor", "segmentation_loss"]

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoint"
LOG_FILE = "metrics.jsonl"


@dataclass(frozen=True)
class TrainConfig(ConfigDict):
    """Hyperparameters of a training run.

    Parameters
    ----------
    steps : int
        Optimiser steps.
    batch_size : int
        Images per step.
    lr : float
        Peak learning rate of AdamW.
    weight_decay : float
        AdamW weight decay.
    warmup_steps : int
        Linear warm-up, then cosine decay to ``lr · min_lr_ratio``.
    min_lr_ratio : float
        Final learning rate as a fraction of ``lr``.
    grad_clip : float
        Gradient-norm clipping (0: off).
    amp : bool
        bfloat16 mixed precision where the device computes in it natively: CUDA, and CPUs
        with AMX bfloat16 units (the rule of inference's ``precision="auto"``,
        :func:`atomlens.inference.inference_precision`); float32 elsewhere. On 2 Sapphire
        Rapids cores a training step of the bundled graphene members (8 crops of 128² px)
        took 0.21 s instead of 0.33 s. The weights, the optimiser and the loss stay
        float32.
    val_every : int
        Validate (and checkpoint) every this many steps.
    patience : int
        Stop after this many validations without improvement (0: never stop early).
    seed : int
        Seed of initialisation, augmentation and dropout.
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    augmentation : Augmentation
        Tensor augmentations.
    dice_weight : float
        Weight of the soft-Dice term added to the cross-entropy.
    """

    steps: int = 1500
    batch_size: int = 8
    lr: float = 3e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    min_lr_ratio: float = 0.02
    grad_clip: float = 1.0
    amp: bool = True
    val_every: int = 100
    patience: int = 0
    seed: int = 0
    device: str = "auto"
    augmentation: Augmentation = field(default_factory=Augmentation)
    dice_weight: float = 1.0

    def __post_init__(self) -> None:
        bad = [
            f"{n} must be ≥ {lo}, got {getattr(self, n)!r}"
            for n, lo in [
                ("steps", 1),
                ("batch_size", 1),
                ("warmup_steps", 0),
                ("val_every", 1),
                ("patience", 0),
            ]
            if not (isinstance(getattr(self, n), int) and getattr(self, n) >= lo)
        ]
        if not self.lr > 0:
            bad.append(f"lr must be positive, got {self.lr!r}")
        if not 0 <= self.min_lr_ratio <= 1:
            bad.append(f"min_lr_ratio must be within 0–1, got {self.min_lr_ratio!r}")
        if bad:
            raise ValueError("invalid TrainConfig: " + "; ".join(bad) + ".")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary; the augmentation's own (which leaves out what is off and
        newer than the files of older versions, so their checkpoints still resume)."""
        d = super().to_dict()
        d["augmentation"] = self.augmentation.to_dict()
        return d

    @classmethod
    def _nested_from_dict(cls, d: dict[str, Any], /) -> dict[str, Any]:
        if isinstance(d.get("augmentation"), dict):
            d["augmentation"] = Augmentation(**d["augmentation"])
        return d


@dataclass
class TrainResult:
    """Outcome of :meth:`Trainer.fit`.

    Attributes
    ----------
    model : Model
        The best model (by validation F1, then RMSE), with provenance.
    best : dict
        Its validation scores and step.
    steps_done : int
        Optimiser steps taken (including those before a resume).
    stopped_early : bool
        Patience ran out before ``steps``.
    seconds : float
        Wall time of this call.
    """

    model: Model
    best: dict[str, Any]
    steps_done: int
    stopped_early: bool
    seconds: float


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """The learning-rate multiplier at ``step``: linear warm-up over ``cfg.warmup_steps``,
    then a cosine down to ``cfg.min_lr_ratio`` at ``cfg.steps``."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    span = max(1, cfg.steps - cfg.warmup_steps)
    t = min(1.0, (step - cfg.warmup_steps) / span)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))


def _better(a: dict[str, float], b: dict[str, float] | None) -> bool:
    """Is validation ``a`` better than ``b``? F1 first; RMSE breaks near-ties (ΔF1 < 1e-3)."""
    if b is None:
        return True
    if a["f1"] > b["f1"] + 1e-3:
        return True
    if a["f1"] >= b["f1"] - 1e-3:
        ra, rb = a["rmse_pm"], b["rmse_pm"]
        return (not math.isnan(ra)) and (math.isnan(rb) or ra < rb)
    return False


def _bf16_autocast(cfg: TrainConfig, dev: torch.device) -> bool:
    """Whether a training run on ``dev`` runs under bfloat16 autocast (``TrainConfig.amp``
    where the device computes in it natively: inference's ``precision="auto"`` rule)."""
    return cfg.amp and inference_dtype("auto", dev) is not None


def segmentation_loss(
    logits: torch.Tensor, target: torch.Tensor, *, dice_weight: float
) -> torch.Tensor:
    """Soft-target cross-entropy plus soft Dice over the foreground classes.

    Pixels whose target channels sum to 0 are ignored (neither term sees them): that is how
    pseudo-labels mark regions the ensemble was unsure about (:mod:`atomlens.elit`).
    """
    logp = F.log_softmax(logits.float(), dim=1)
    valid = target.sum(dim=1)  # 1 for labelled pixels, 0 for ignored ones
    ce = -(target * logp).sum() / valid.sum().clamp(min=1.0)
    if dice_weight <= 0:
        return ce
    p = logp.exp()[:, 1:] * valid[:, None]
    t = target[:, 1:]
    inter = (p * t).sum(dim=(0, 2, 3))
    denom = p.sum(dim=(0, 2, 3)) + t.sum(dim=(0, 2, 3))
    present = t.sum(dim=(0, 2, 3)) > 0
    dice = 1 - (2 * inter + 1) / (denom + 1)
    dice = dice[present].mean() if present.any() else dice.new_zeros(())
    return ce + dice_weight * dice


class Trainer:
    """Train a :class:`Model` (never subclassed: the trainer holds it).

    Parameters
    ----------
    model : Model
        Initial model (architecture, sampling, classes); its network is trained in place.
    config : TrainConfig
        Hyperparameters.
    data : BatchSource
        Training batches (:class:`SimulatedSource` or :class:`PairSource`).
    out : path
        Model directory to write. While training it holds ``metrics.jsonl`` and
        ``checkpoint/`` (weights, optimiser state and progress, replaced atomically at each
        validation); at the end the best model's ``config.json`` and
        ``weights.safetensors`` and the checkpoint is removed.
    validation : ValidationSet, optional
        Scored every ``val_every`` steps; model selection and early stopping use its F1
        and RMSE. Without it the last model is kept.
    overwrite : bool
        Replace a finished model at ``out``.
    progress : bool or callable
        Progress bar over steps (tqdm or a tqdm-like callable).
    stop_after : int, optional
        Stop (as if interrupted) after this many steps of this call; for tests.
    """

    def __init__(
        self,
        model: Model,
        config: TrainConfig,
        data: BatchSource,
        *,
        out: str | PathLike[str],
        validation: ValidationSet | None = None,
        overwrite: bool = False,
        progress: bool | Callable[..., Any] = False,
        stop_after: int | None = None,
    ) -> None:
        if tuple(data.class_names) != tuple(model.config.class_names):
            raise ValueError(
                f"data classes {list(data.class_names)} differ from the model's "
                f"{list(model.config.class_names)}."
            )
        self.model, self.config, self.data = model, config, data
        self.validation, self.progress, self.stop_after = validation, progress, stop_after
        self.out = Path(out)
        ck = self.out / CHECKPOINT_DIR
        if (self.out / CONFIG_FILE).exists() and not ck.exists():
            if not overwrite:
                raise FileExistsError(
                    f"{self.out} already holds a trained model; choose another `out` or pass "
                    "`overwrite=True`."
                )
            shutil.rmtree(self.out)
        elif self.out.is_dir() and {f.name for f in self.out.iterdir()} == {LOG_FILE}:
            # interrupted before its first checkpoint: nothing to resume, start it again
            logger.info("%s: interrupted before its first checkpoint; starting again", self.out)
            shutil.rmtree(self.out)
        elif self.out.exists() and not ck.exists() and any(self.out.iterdir()):
            if not overwrite:
                raise FileExistsError(
                    f"{self.out} exists, is not empty and is not a training run to resume; "
                    "choose another `out` or pass `overwrite`."
                )
            shutil.rmtree(self.out)

    # --------------------------------------------------------------- state
    def _save_checkpoint(self, step: int, opt: torch.optim.Optimizer, state: dict) -> None:
        from safetensors.torch import save_file

        tensors = {
            f"model.{k}": v.detach().cpu().contiguous()
            for k, v in self.model.network.state_dict().items()
        }
        if state.get("best_state") is not None:
            tensors.update({f"best.{k}": v for k, v in state["best_state"].items()})
        opt_state = opt.state_dict()
        for pid, s in opt_state["state"].items():
            for name, v in s.items():
                tensors[f"optim.{pid}.{name}"] = torch.as_tensor(v).detach().cpu().contiguous()
        meta = {
            "step": step,
            "best": state.get("best"),
            "since_best": state.get("since_best", 0),
            "param_groups": opt_state["param_groups"],
            "train_config": self.config.to_dict(),
        }
        with atomic_directory(self.out / CHECKPOINT_DIR, overwrite=True) as tmp:
            save_file(tensors, str(tmp / "state.safetensors"))
            (tmp / "state.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")

    def _load_checkpoint(self, opt: torch.optim.Optimizer) -> dict:
        from safetensors.torch import load_file

        ck = self.out / CHECKPOINT_DIR
        meta = json.loads((ck / "state.json").read_text(encoding="utf-8"))
        if meta["train_config"] != json.loads(json.dumps(self.config.to_dict())):
            raise ValueError(
                f"{ck} was written with different training settings; resume with the same "
                "settings, or pass `overwrite` to start again."
            )
        tensors = load_file(str(ck / "state.safetensors"))
        self.model.network.load_state_dict(
            {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
        )
        best_state = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")} or None
        opt_state: dict[str, Any] = {"state": {}, "param_groups": meta["param_groups"]}
        for k, v in tensors.items():
            if k.startswith("optim."):
                _, pid, name = k.split(".", 2)
                opt_state["state"].setdefault(int(pid), {})[name] = v
        opt.load_state_dict(opt_state)
        return {
            "step": meta["step"],
            "best": meta["best"],
            "since_best": meta["since_best"],
            "best_state": best_state,
        }

    def _log(self, record: dict) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        with open(self.out / LOG_FILE, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())

    # ----------------------------------------------------------------- fit
    def fit(self) -> TrainResult:
        """Train, resuming from ``out/checkpoint`` if an interrupted run left one."""
        t0 = time.perf_counter()
        cfg = self.config
        dev = resolve_device(cfg.device)
        net = self.model.network.to(dev)
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        state: dict[str, Any] = {"step": 0, "best": None, "since_best": 0, "best_state": None}
        if (self.out / CHECKPOINT_DIR / "state.json").exists():
            state = self._load_checkpoint(opt)
            logger.info("resuming %s from step %d", self.out, state["step"])
            self._log({"event": "resume", "step": state["step"]})
        else:
            self._log(
                {
                    "event": "start",
                    "train_config": cfg.to_dict(),
                    "data": self.data.describe(),
                    "atomlens": atomlens.__version__,
                }
            )
        norm = self.model.config.normalization
        use_amp = _bf16_autocast(cfg, dev)
        step0 = state["step"]
        bar = None
        if self.progress:
            make = self.progress if callable(self.progress) else _tqdm()
            bar = make(total=cfg.steps, initial=step0, desc="training", unit="step")
        stopped_early = False
        last_loss = float("nan")
        taken = 0
        step = step0
        saved = step0
        with deferred_interrupt("this training step") as interrupted:
            while step < cfg.steps:
                if interrupted():
                    if step != saved:
                        self._save_checkpoint(step, opt, state)
                    if bar is not None:
                        bar.close()
                    raise KeyboardInterrupt(
                        f"{self.out}: interrupted at step {step} of {cfg.steps}; saved: the "
                        "same command resumes from there"
                    )
                if self.stop_after is not None and taken >= self.stop_after:
                    raise KeyboardInterrupt(f"stop_after={self.stop_after} reached (test hook)")
                step, last_loss = self._step(step, net, opt, state, bar, dev, use_amp, norm, t0)
                taken += 1
                if step % cfg.val_every == 0 or step == cfg.steps:
                    saved = step
                    if cfg.patience and state["since_best"] >= cfg.patience:
                        stopped_early = True
                        self._log({"event": "early_stop", "step": step, "best": state["best"]})
                        break
        if bar is not None:
            bar.close()
        if state["best_state"] is not None:
            net.load_state_dict(state["best_state"])
        net.eval()
        best = state["best"] or {"step": step, "loss": last_loss}
        prov = dict(self.model.config.provenance)
        prov.update(
            {
                "atomlens_version": atomlens.__version__,
                "torch_version": torch.__version__,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "train_config": cfg.to_dict(),
                "data": self.data.describe(),
                "steps_done": step,
                "stopped_early": stopped_early,
                "validation": best,
            }
        )
        from dataclasses import replace

        self.model = Model(net.cpu(), replace(self.model.config, provenance=prov))
        self._finish()
        self._log({"event": "done", "step": step, "best": best})
        return TrainResult(self.model, best, step, stopped_early, time.perf_counter() - t0)

    def _step(
        self,
        step: int,
        net: torch.nn.Module,
        opt: torch.optim.Optimizer,
        state: dict,
        bar: Any,
        dev: torch.device,
        use_amp: bool,
        norm: Any,
        t0: float,
    ) -> tuple[int, float]:
        """One optimiser step (and, every ``val_every`` steps, validation, the log line and
        a checkpoint); returns the new step count and the step's loss."""
        cfg = self.config
        net.train()
        g = torch.Generator().manual_seed(hash((cfg.seed, step)) & 0x7FFF_FFFF_FFFF)
        torch.manual_seed(hash((cfg.seed, step, 1)) & 0x7FFF_FFFF_FFFF)
        x, y = self.data.batch(step, batch_size=cfg.batch_size)
        x, y = augment_batch(x, y, aug=cfg.augmentation, generator=g)
        x = normalize_batch(x, low=norm.low, high=norm.high)
        x, y = x.to(dev), y.to(dev)
        for group in opt.param_groups:
            group["lr"] = cfg.lr * lr_factor(step, cfg)
        with torch.autocast(device_type=dev.type, enabled=use_amp, dtype=torch.bfloat16):
            logits = net(x)
        loss = segmentation_loss(logits.float(), y, dice_weight=cfg.dice_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = (
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
            if cfg.grad_clip > 0
            else torch.tensor(float("nan"))
        )
        opt.step()
        last_loss = float(loss.detach())
        step += 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{last_loss:.3f}")
        if step % cfg.val_every == 0 or step == cfg.steps:
            rec: dict[str, Any] = {
                "step": step,
                "loss": last_loss,
                "lr": opt.param_groups[0]["lr"],
                "grad_norm": float(gnorm),
                "seconds": round(time.perf_counter() - t0, 2),
            }
            if self.validation is not None:
                net.eval()
                scores = self.validation.evaluate(self.model, device=str(dev))
                rec.update({f"val_{k}": v for k, v in scores.items()})
                if _better(scores, state["best"]):
                    state["best"] = {**scores, "step": step}
                    state["best_state"] = {
                        k: v.detach().cpu().clone() for k, v in net.state_dict().items()
                    }
                    state["since_best"] = 0
                else:
                    state["since_best"] += 1
                if bar is not None:
                    bar.set_postfix(
                        loss=f"{last_loss:.3f}",
                        f1=f"{scores['f1']:.3f}",
                        rmse=f"{scores['rmse_pm']:.1f}pm",
                    )
            self._log(rec)
            # the bar shows these figures; without one they are the only sign of progress
            (logger.debug if bar is not None else logger.info)(
                "step %d of %d: %s", step, cfg.steps, describe_record(rec)
            )
            self._save_checkpoint(step, opt, state)
        return step, last_loss

    def _finish(self) -> None:
        """Write the final model files next to the log, then drop the checkpoint."""
        tmp = self.out / ".final.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        write_model_files(tmp, self.model.network, self.model.config)
        for name in sorted(os.listdir(tmp), key=lambda n: n != "weights.safetensors"):
            os.replace(tmp / name, self.out / name)  # weights first, config (the marker) last
        tmp.rmdir()
        shutil.rmtree(self.out / CHECKPOINT_DIR, ignore_errors=True)


def describe_record(rec: dict[str, Any]) -> str:
    """A training log record as a line a person reads: ``loss 0.123, lr 6e-04, val f1
    0.9981, val rmse_pm 3.1`` (the raw record stays in ``metrics.jsonl``).

    Examples
    --------
    >>> describe_record({"step": 10, "loss": 0.12345, "lr": 0.0006000000000000001, "seconds": 3})
    'loss 0.1235, lr 0.0006, 3 s'
    """
    parts = []
    for k, v in rec.items():
        if k == "step":
            continue
        if k == "seconds":
            parts.append(f"{v:.0f} s")
        elif isinstance(v, float):
            parts.append(f"{k.replace('_', ' ')} {v:.4g}")
        else:
            parts.append(f"{k.replace('_', ' ')} {v}")
    return ", ".join(parts)


def _tqdm():
    from tqdm.auto import tqdm

    return tqdm
