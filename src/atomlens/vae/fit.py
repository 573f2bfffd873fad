"""Training a VAE: Pyro's ELBO, Adam, a checkpoint after every epoch, exact resumption.

Each epoch draws its shuffling and its Monte-Carlo samples from a seed made of ``seed`` and
the epoch number, so a run resumed from a checkpoint ends with the same weights as one that
was never interrupted.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pyro
import torch
from pyro.infer import Trace_ELBO, TraceEnum_ELBO

from atomlens._shared.atomic import atomic_directory
from atomlens.vae.config import VAEConfig
from atomlens.vae.model import VAEModel, data_range

__all__ = ["fit_vae", "validate_samples"]

logger = logging.getLogger(__name__)

STATE_FILE = "state.json"
TENSORS_FILE = "state.safetensors"
#: Weight (per sample) of the class head's cross-entropy to the starting classes at first,
#: and the part of training over which it falls to 0.
HOLD_WEIGHT = 10.0
HOLD_FRACTION = 0.5


def validate_samples(data: Any, /, *, name: str = "data") -> np.ndarray:
    """``data`` as a float array of ``N ≥ 2`` samples, ``(N, h, w)`` or ``(N, L)``, all
    finite; otherwise a one-line ``ValueError`` naming ``name``."""
    arr = np.asarray(data)
    if not (np.issubdtype(arr.dtype, np.number) and not np.iscomplexobj(arr)):
        raise TypeError(f"`{name}` must be a real numeric array, got dtype {arr.dtype}.")
    if arr.ndim not in (2, 3):
        raise ValueError(
            f"`{name}` must be (N, h, w) patches or (N, L) spectra, got shape {arr.shape}."
        )
    if arr.shape[0] < 2 or min(arr.shape[1:]) < 2:
        raise ValueError(
            f"`{name}` needs at least 2 samples of at least 2 values, got {arr.shape}."
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        rows = np.unique(np.nonzero(bad.reshape(len(arr), -1))[0])
        raise ValueError(
            f"`{name}` has NaN or infinite values in {len(rows)} samples (first: {rows[0]}); "
            "drop or fill them first."
        )
    return arr.astype(np.float64, copy=False)


def _labels(labels: Any, n: int, classes: int) -> np.ndarray:
    lab = np.asarray(labels)
    if lab.shape != (n,):
        raise ValueError(f"`labels` must hold one entry per sample ({n}), got shape {lab.shape}.")
    if not np.issubdtype(lab.dtype, np.integer):
        raise TypeError("`labels` must be integers: the class, or -1 for an unlabelled sample.")
    if lab.max() >= classes or lab.min() < -1:
        raise ValueError(
            f"`labels` must be -1 (unlabelled) or 0…{classes - 1} (`classes`), got "
            f"{lab.min()}…{lab.max()}."
        )
    if not (lab >= 0).any():
        raise ValueError("`labels` has no labelled sample; label a few (the class, else -1).")
    return lab


def _fingerprint(x: torch.Tensor, extra: Any) -> str:
    h = hashlib.sha256(x.numpy().tobytes())
    h.update(json.dumps(extra, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def fit_vae(
    data: np.ndarray,
    /,
    *,
    config: VAEConfig | None = None,
    labels: np.ndarray | None = None,
    conditions: np.ndarray | None = None,
    checkpoint: str | PathLike[str] | None = None,
    progress: bool | Callable[..., Any] = False,
) -> VAEModel:
    """Train a VAE of the kind ``config.kind`` on ``data``.

    Parameters
    ----------
    data : ndarray of shape (N, h, w) or (N, L)
        Image patches [any intensity unit] or spectra (rows).
    config : VAEConfig, optional
        Defaults to ``VAEConfig()`` (an rVAE).
    labels : ndarray of int, shape (N,), optional
        ``ssrvae``: the class of the labelled samples, -1 elsewhere.
    conditions : ndarray of shape (N,) or (N, m), optional
        ``cvae``: an integer label (0…``classes``−1) or scalars per sample.
    checkpoint : path, optional
        A directory for the checkpoint written (atomically) after every epoch. If it holds
        the checkpoint of the same data and config, training resumes from it.
    progress : bool or callable
        Show a progress bar over epochs (``True``: tqdm) or wrap the epochs with this
        tqdm-like callable.

    Returns
    -------
    VAEModel
        The trained model (``model.history``: the loss per epoch, the negative ELBO per
        sample).
    """
    cfg = config if config is not None else VAEConfig()
    arr = validate_samples(data)
    n = len(arr)
    if cfg.kind == "ssrvae" and labels is None:
        raise ValueError("`kind='ssrvae'` needs `labels` (the class of a few samples, -1 else).")
    lab = _labels(labels, n, cfg.classes) if cfg.kind == "ssrvae" else None
    norm = data_range(arr)
    n_cond = 0
    if cfg.kind == "cvae":
        if conditions is None:
            raise ValueError("`kind='cvae'` needs `conditions` (a label or scalars per sample).")
        c = np.asarray(conditions)
        if np.issubdtype(c.dtype, np.floating) and not np.isfinite(c).all():
            raise ValueError("`conditions` has NaN or infinite values; drop or fill them first.")
        n_cond = (
            cfg.classes
            if (np.issubdtype(c.dtype, np.integer) and c.ndim == 1)
            else (int(np.prod(c.shape[1:])) if c.ndim > 1 else 1)
        )
    torch.manual_seed(cfg.seed)
    model = VAEModel(cfg, arr.shape[1:], n_cond=n_cond, norm=norm)
    x = model.normalise(arr)
    cond = model.condition_tensor(conditions, n) if cfg.kind == "cvae" else None
    y = None
    if lab is not None:
        y = torch.nn.functional.one_hot(torch.as_tensor(np.clip(lab, 0, None)), cfg.classes).float()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    elbo = TraceEnum_ELBO(max_plate_nesting=1) if cfg.discrete else Trace_ELBO()
    elbo_labelled = Trace_ELBO()  # the class is observed: nothing to enumerate
    fingerprint = _fingerprint(x, [cfg.to_dict(), lab, None if cond is None else cond.numpy()])
    start, history = 0, []
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if ckpt is not None and (ckpt / STATE_FILE).is_file():
        start, history = _resume(ckpt, model, opt, fingerprint)
        logger.info("resuming from %s at epoch %d of %d", ckpt, start, cfg.epochs)

    resp = _starting_classes(arr, lab, cfg) if cfg.discrete and cfg.class_init else None

    labelled = np.nonzero(lab >= 0)[0] if lab is not None else np.zeros(0, int)
    unlabelled = np.nonzero(lab < 0)[0] if lab is not None else np.arange(n)
    epochs = range(start, cfg.epochs)
    if progress:
        from tqdm.auto import tqdm

        make = progress if callable(progress) else tqdm
        epochs = make(epochs, desc=f"{cfg.kind}", unit="epoch", initial=start, total=cfg.epochs)
    model.train()
    pyro.clear_param_store()
    for epoch in epochs:
        seed = cfg.seed * 1_000_003 + epoch
        g = torch.Generator().manual_seed(seed)
        pyro.set_rng_seed(seed)
        order = unlabelled[torch.randperm(len(unlabelled), generator=g).numpy()]
        total, count = 0.0, 0
        for i in range(0, len(order), cfg.batch_size):
            idx = torch.as_tensor(order[i : i + cfg.batch_size])
            c = None if cond is None else cond[idx]
            loss = elbo.differentiable_loss(model.model, model.guide, x[idx], None, c)
            total += float(loss.detach())
            count += len(idx)
            if cfg.discrete:
                _, _, logits = model.encoder(x[idx])
                if cfg.class_kl == "marginal":
                    loss = loss + _marginal_class_kl(logits, cfg.classes)
                hold = _hold_weight(epoch, cfg.epochs) if resp is not None else 0.0
                if hold > 0:
                    ce = -(resp[idx] * torch.log_softmax(logits, -1)).sum()
                    loss = loss + hold * ce
            if len(labelled):
                pick = torch.as_tensor(labelled)[
                    torch.randint(len(labelled), (min(len(labelled), cfg.batch_size),), generator=g)
                ]
                loss = loss + elbo_labelled.differentiable_loss(
                    model.model, model.guide, x[pick], y[pick]
                )
            opt.zero_grad()
            (loss / len(idx)).backward()
            opt.step()
        history.append(total / max(count, 1))
        if hasattr(epochs, "set_postfix"):
            epochs.set_postfix(loss=f"{history[-1]:.1f}")
        logger.debug("epoch %d: loss %.3f", epoch + 1, history[-1])
        if cfg.discrete and logger.isEnabledFor(logging.DEBUG):
            with torch.no_grad():
                _, _, lg = model.encoder(x)
            logger.debug(
                "classes %s", torch.bincount(lg.argmax(-1), minlength=cfg.classes).tolist()
            )
        if ckpt is not None:
            _save_checkpoint(ckpt, model, opt, epoch + 1, history, fingerprint)
    model.eval()
    model.history = history
    return model


def _marginal_class_kl(logits: torch.Tensor, classes: int) -> torch.Tensor:
    """What turns the ELBO's class term ``Σᵢ KL(q(c|xᵢ) ‖ p(c))`` into ``B KL(q̄(c) ‖ p(c))``.

    The per-sample term is ``B (I(x; c) + KL(q̄ ‖ p))`` over a batch of ``B``: it charges the
    class for the information it carries, and a continuous content latent that learns the
    same split is charged no more, so the class is dropped. Keeping only the marginal part
    (the class may carry up to ``log K`` nats for free: Dupont's joint-VAE capacity at its
    end value) leaves the prior's balance of classes in force.
    """
    logq = torch.log_softmax(logits, -1)
    log_k = torch.log(torch.tensor(float(classes)))
    per_sample = (logq.exp() * (logq + log_k)).sum()
    qbar = logq.exp().mean(0)
    marginal = len(logits) * (qbar * (torch.log(qbar + 1e-12) + log_k)).sum()
    return marginal - per_sample


def _hold_weight(epoch: int, epochs: int) -> float:
    """Weight of the class head's cross-entropy to the starting classes in ``epoch``:
    ``HOLD_WEIGHT`` at first, falling linearly to 0 halfway through training."""
    half = max(1.0, HOLD_FRACTION * epochs)
    return HOLD_WEIGHT * max(0.0, 1.0 - epoch / half)


def _starting_classes(arr: np.ndarray, lab: np.ndarray | None, cfg: VAEConfig) -> torch.Tensor:
    """The Gaussian mixture's class probabilities the class head is held to early on
    (:func:`atomlens.vae.classinit.initial_classes`; labelled samples keep their labels)."""
    # deferred: classinit imports scikit-learn, needed by the joint kinds only
    from atomlens.vae.classinit import initial_classes

    resp = torch.as_tensor(
        initial_classes(arr, classes=cfg.classes, labels=lab, seed=cfg.seed), dtype=torch.float32
    )
    if lab is not None:
        known = torch.as_tensor(lab >= 0)
        resp[known] = torch.nn.functional.one_hot(
            torch.as_tensor(lab[lab >= 0]), cfg.classes
        ).float()
    logger.debug("starting classes (mixture): %s", resp.sum(0).round().tolist())
    return resp


def _save_checkpoint(
    path: Path,
    model: VAEModel,
    opt: torch.optim.Optimizer,
    epoch: int,
    history: list[float],
    fingerprint: str,
) -> None:
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().contiguous() for k, v in model.state_dict().items()}
    sd = opt.state_dict()
    for pid, st in sd["state"].items():
        for k, v in st.items():
            tensors[f"optim.{pid}.{k}"] = torch.as_tensor(v).contiguous()
    state = {
        "epoch": epoch,
        "history": history,
        "fingerprint": fingerprint,
        "param_groups": sd["param_groups"],
        "model": model.header(),
    }
    with atomic_directory(path, overwrite=True) as tmp:
        save_file(tensors, str(tmp / TENSORS_FILE))
        (tmp / STATE_FILE).write_text(json.dumps(state), encoding="utf-8")


def _resume(
    path: Path, model: VAEModel, opt: torch.optim.Optimizer, fingerprint: str
) -> tuple[int, list[float]]:
    from safetensors.torch import load_file

    state = json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
    if state.get("fingerprint") != fingerprint:
        raise ValueError(
            f"the checkpoint in {path} is of other data or another config; choose another "
            "`checkpoint` directory or delete it to start afresh."
        )
    tensors = load_file(str(path / TENSORS_FILE))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    opt_state: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, pid, name = k.split(".", 2)
            opt_state.setdefault(int(pid), {})[name] = v
    opt.load_state_dict({"state": opt_state, "param_groups": state["param_groups"]})
    return int(state["epoch"]), list(state["history"])
