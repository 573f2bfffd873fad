"""Training several networks of one architecture together, in one batched computation.

The members' weights are stacked (:func:`torch.func.stack_module_state`) and one call of
:func:`torch.func.vmap` runs every member on its own batch: one forward and one backward
pass per step instead of N. AdamW works element by element and the gradient clipping is
done per member, so each member follows the same trajectory it would follow alone (up to
floating-point summation order): the only thing shared is the computation.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from os import PathLike
from pathlib import Path
from typing import Any

import torch

import atomlens
from atomlens._shared.atomic import atomic_directory
from atomlens._shared.device import resolve_device
from atomlens._shared.interrupt import deferred_interrupt
from atomlens.ensemble import Model
from atomlens.ensemble.files import CONFIG_FILE, write_model_files
from atomlens.train.augment import augment_batch, normalize_batch
from atomlens.train.trainer import (
    LOG_FILE,
    TrainResult,
    _better,
    _bf16_autocast,
    _tqdm,
    lr_factor,
    segmentation_loss,
)

__all__ = ["together_matches_alone", "train_together"]

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoint-together"


def together_matches_alone(architecture: Any, /) -> bool:
    """Do members of this architecture trained by :func:`train_together` end where they
    would end trained alone (up to float rounding)?

    Not with batch normalisation (``train_together`` refuses it) nor with dropout: its
    masks are drawn for all members at once, from the first member's seed, not those each
    member would draw alone.

    Parameters
    ----------
    architecture : UNetConfig
        The members' architecture.

    Returns
    -------
    bool
    """
    return architecture.norm != "batch" and not architecture.dropout > 0


def _check_compatible(setups: Sequence[Any]) -> None:
    first = setups[0]
    arch = first.model.config.architecture
    shared = {k: v for k, v in first.config.to_dict().items() if k != "seed"}
    for i, s in enumerate(setups[1:], start=1):
        if s.model.config.architecture != arch:
            raise ValueError(f"member {i} has another architecture; train it separately.")
        other = {k: v for k, v in s.config.to_dict().items() if k != "seed"}
        if other != shared:
            raise ValueError(
                f"member {i}'s training settings differ from member 0's in more than the "
                "seed; members trained together share steps, batch size and schedule."
            )
    if arch.norm == "batch":
        raise ValueError(
            "batch normalisation keeps running statistics that cannot be updated inside "
            "torch.func.vmap; train members with norm='batch' one after the other "
            "(mode='sequential') or use norm='group'."
        )


def train_together(
    setups: Sequence[Any],
    outs: Sequence[str | PathLike[str]],
    *,
    checkpoint: str | PathLike[str],
    progress: bool | Callable[..., Any] = False,
    stop_after: int | None = None,
) -> list[TrainResult]:
    """Train N members of one architecture in one batched computation per step.

    Each member keeps everything that makes it a distinct member: its initial weights, its
    stream of training images, its augmentation draws, its validation set and its choice of
    best step. Only the arithmetic is shared. A member trained here ends where it would end
    trained alone by :class:`atomlens.train.Trainer` with the same setup (equal up to
    float rounding, checked by the tests), except for dropout masks
    (:func:`together_matches_alone`).

    Parameters
    ----------
    setups : sequence of TrainingSetup
        One per member (:func:`atomlens.train.recipe.prepare_training`): same architecture
        and hyperparameters, seeds of their own.
    outs : sequence of path
        Model directory of each member; each gets ``config.json``,
        ``weights.safetensors`` and its ``metrics.jsonl`` at the end.
    checkpoint : path
        Directory of the shared checkpoint (weights, optimiser state, progress of every
        member), replaced atomically at each validation; an interrupted run resumes from
        it and it is removed at the end.
    progress : bool or callable
        Progress bar over steps.
    stop_after : int, optional
        Stop (as if interrupted) after this many steps of this call; for tests.

    Returns
    -------
    list of TrainResult
        One per member, in order.
    """
    from safetensors.torch import load_file, save_file
    from torch.func import functional_call, stack_module_state, vmap

    if not setups or len(setups) != len(outs):
        raise ValueError("give one output directory per member (and at least one member).")
    _check_compatible(setups)
    t0 = time.perf_counter()
    n = len(setups)
    cfg = setups[0].config
    outs = [Path(o) for o in outs]
    ck = Path(checkpoint)
    dev = resolve_device(cfg.device)
    nets = [s.model.network.to(dev).train() for s in setups]
    params, buffers = stack_module_state(nets)
    base = copy.deepcopy(nets[0]).to("meta")
    dropout = setups[0].model.config.architecture.dropout > 0

    def one(p: dict, b: dict, x: torch.Tensor) -> torch.Tensor:
        return functional_call(base, (p, b), (x,))

    forward = vmap(one, randomness="different" if dropout else "error")
    plist = list(params.values())
    opt = torch.optim.AdamW(plist, lr=cfg.lr, weight_decay=cfg.weight_decay)

    def member_state(i: int) -> dict[str, torch.Tensor]:
        d = {k: v[i].detach().cpu().clone() for k, v in params.items()}
        d.update({k: v[i].detach().cpu().clone() for k, v in buffers.items()})
        return d

    step, best, since_best = 0, [None] * n, [0] * n
    best_state: list[dict[str, torch.Tensor] | None] = [None] * n
    meta_path = ck / "state.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        configs = [json.loads(json.dumps(s.config.to_dict())) for s in setups]
        if meta["train_configs"] != configs:
            raise ValueError(
                f"{ck} was written with different training settings or members; resume "
                "with the same settings, or pass `overwrite` to start again."
            )
        tensors = load_file(str(ck / "state.safetensors"))
        with torch.no_grad():
            for k, v in params.items():
                v.copy_(tensors[f"model.{k}"])
            for k, v in buffers.items():
                v.copy_(tensors[f"model.{k}"])
        for i in range(n):
            prefix = f"best.{i}."
            bs = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            best_state[i] = bs or None
        opt_state: dict[str, Any] = {"state": {}, "param_groups": meta["param_groups"]}
        for k, v in tensors.items():
            if k.startswith("optim."):
                _, pid, name = k.split(".", 2)
                opt_state["state"].setdefault(int(pid), {})[name] = v
        opt.load_state_dict(opt_state)
        step, best, since_best = meta["step"], meta["best"], meta["since_best"]
        logger.info("resuming %d members trained together from step %d", n, step)
        for o in outs:
            _log(o, {"event": "resume", "step": step, "together": n})
    else:
        for o, s in zip(outs, setups, strict=True):
            _log(
                o,
                {
                    "event": "start",
                    "train_config": s.config.to_dict(),
                    "data": s.data.describe(),
                    "together": n,
                    "atomlens": atomlens.__version__,
                },
            )

    def save_checkpoint() -> None:
        tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in params.items()}
        tensors.update({f"model.{k}": v.detach().cpu().contiguous() for k, v in buffers.items()})
        for i, bs in enumerate(best_state):
            if bs is not None:
                tensors.update({f"best.{i}.{k}": v for k, v in bs.items()})
        st = opt.state_dict()
        for pid, s in st["state"].items():
            for name, v in s.items():
                tensors[f"optim.{pid}.{name}"] = torch.as_tensor(v).detach().cpu().contiguous()
        meta = {
            "step": step,
            "best": best,
            "since_best": since_best,
            "param_groups": st["param_groups"],
            "train_configs": [s.config.to_dict() for s in setups],
        }
        with atomic_directory(ck, overwrite=True) as tmp:
            save_file(tensors, str(tmp / "state.safetensors"))
            (tmp / "state.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")

    norm = setups[0].model.config.normalization
    use_amp = _bf16_autocast(cfg, dev)
    bar = None
    if progress:
        make = progress if callable(progress) else _tqdm()
        bar = make(total=cfg.steps, initial=step, desc=f"training {n} together", unit="step")
    taken = 0
    stopped_early = False
    losses = [float("nan")] * n
    with deferred_interrupt("this training step") as interrupted:
        while step < cfg.steps:
            if interrupted():
                if step % cfg.val_every:
                    save_checkpoint()
                if bar is not None:
                    bar.close()
                raise KeyboardInterrupt(
                    f"interrupted at step {step} of {cfg.steps}; saved: the same command "
                    "resumes from there"
                )
            if stop_after is not None and taken >= stop_after:
                raise KeyboardInterrupt(f"stop_after={stop_after} reached (test hook)")
            xs, ys = [], []
            for s in setups:  # each member's own images and augmentation draws, as in Trainer
                g = torch.Generator().manual_seed(hash((s.config.seed, step)) & 0x7FFF_FFFF_FFFF)
                x, y = s.data.batch(step, batch_size=cfg.batch_size)
                x, y = augment_batch(x, y, aug=cfg.augmentation, generator=g)
                xs.append(normalize_batch(x, low=norm.low, high=norm.high))
                ys.append(y)
            x, y = torch.stack(xs).to(dev), torch.stack(ys).to(dev)
            for group in opt.param_groups:
                group["lr"] = cfg.lr * lr_factor(step, cfg)
            torch.manual_seed(hash((cfg.seed, step, 1)) & 0x7FFF_FFFF_FFFF)
            with torch.autocast(device_type=dev.type, enabled=use_amp, dtype=torch.bfloat16):
                logits = forward(params, buffers, x)
            member_losses = [
                segmentation_loss(logits[i].float(), y[i], dice_weight=cfg.dice_weight)
                for i in range(n)
            ]
            opt.zero_grad(set_to_none=True)
            torch.stack(member_losses).sum().backward()  # disjoint weights: separate gradients
            gnorm = _clip_per_member(plist, cfg.grad_clip, n)
            opt.step()
            losses = [float(v.detach()) for v in member_losses]
            step += 1
            taken += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{sum(losses) / n:.3f}")
            if step % cfg.val_every == 0 or step == cfg.steps:
                for i, s in enumerate(setups):
                    rec: dict[str, Any] = {
                        "step": step,
                        "loss": losses[i],
                        "lr": opt.param_groups[0]["lr"],
                        "grad_norm": float(gnorm[i]),
                        "seconds": round(time.perf_counter() - t0, 2),
                    }
                    if s.validation is not None:
                        state = member_state(i)
                        s.model.network.load_state_dict(state)
                        s.model.network.eval()
                        scores = s.validation.evaluate(s.model, device=str(dev))
                        rec.update({f"val_{k}": v for k, v in scores.items()})
                        if _better(scores, best[i]):
                            best[i] = {**scores, "step": step}
                            best_state[i] = state
                            since_best[i] = 0
                        else:
                            since_best[i] += 1
                    _log(outs[i], rec)
                (logger.debug if bar is not None else logger.info)(
                    "step %d of %d: losses %s",
                    step,
                    cfg.steps,
                    ", ".join(f"{v:.4g}" for v in losses),
                )
                save_checkpoint()
                if cfg.patience and all(sb >= cfg.patience for sb in since_best):
                    stopped_early = True
                    for i, o in enumerate(outs):
                        _log(o, {"event": "early_stop", "step": step, "best": best[i]})
                    break
    if bar is not None:
        bar.close()
    results = []
    seconds = time.perf_counter() - t0
    for i, (s, o) in enumerate(zip(setups, outs, strict=True)):
        net = s.model.network.cpu()
        net.load_state_dict(best_state[i] if best_state[i] is not None else member_state(i))
        net.eval()
        b = best[i] or {"step": step, "loss": losses[i]}
        prov = dict(s.model.config.provenance)
        prov.update(
            {
                "atomlens_version": atomlens.__version__,
                "torch_version": torch.__version__,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "train_config": s.config.to_dict(),
                "data": s.data.describe(),
                "steps_done": step,
                "stopped_early": stopped_early,
                "validation": b,
                "trained_together": n,
            }
        )
        model = Model(net, replace(s.model.config, provenance=prov))
        _write_final(o, model)
        _log(o, {"event": "done", "step": step, "best": b})
        results.append(TrainResult(model, b, step, stopped_early, seconds))
    shutil.rmtree(ck, ignore_errors=True)
    return results


def _clip_per_member(plist: list[torch.Tensor], max_norm: float, n: int) -> torch.Tensor:
    """Clip each member's gradient to ``max_norm`` as :func:`clip_grad_norm_` would alone."""
    grads = [p.grad for p in plist if p.grad is not None]
    sq = torch.zeros(n, device=plist[0].device)
    for g in grads:
        sq += g.detach().float().pow(2).reshape(n, -1).sum(dim=1)
    total = sq.sqrt()
    if max_norm > 0:
        coef = (max_norm / (total + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(coef.reshape(n, *([1] * (g.dim() - 1))).to(g.dtype))
    else:
        total = torch.full((n,), float("nan"))
    return total


def _log(out: Path, record: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / LOG_FILE, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _write_final(out: Path, model: Model) -> None:
    tmp = out / ".final.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    write_model_files(tmp, model.network, model.config)
    for name in sorted(os.listdir(tmp), key=lambda n: n == CONFIG_FILE):
        os.replace(tmp / name, out / name)  # config (the marker) last
    tmp.rmdir()
