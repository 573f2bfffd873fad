"""The model directory format, for any number of members: one reader, one writer.

A model directory holds ``config.json`` (the :class:`ModelConfig`; for an ensemble also
``members``, one record per member) and ``weights.safetensors`` (a single network's
parameters, or ``members.{i}.{parameter}`` for an ensemble), and optionally
``calibration.json``. Loading parses JSON and reads raw tensors: nothing is unpickled, so
a model file cannot run code.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import torch

from atomlens._shared.config import json_default
from atomlens.bundled import bundled_directory, bundled_models
from atomlens.ensemble.config import FORMAT, ModelConfig, ModelFileError
from atomlens.nn import UNet

__all__ = [
    "CONFIG_FILE",
    "WEIGHTS_FILE",
    "model_directory",
    "read_model_config",
    "read_networks",
    "write_model_files",
]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"


def model_directory(path: str | PathLike[str], /) -> Path:
    """``path`` as a directory, or the bundled model of that name (``"graphene"``) when no
    such directory exists (:mod:`atomlens.bundled`)."""
    p = Path(path)
    if p.is_dir() or len(p.parts) != 1:  # only a bare name (str or Path) can be bundled
        return p
    return bundled_directory(p.name) or p


def read_model_config(
    directory: str | PathLike[str], /
) -> tuple[ModelConfig, list[dict[str, Any]] | None]:
    """Parse ``config.json`` of a model directory.

    Returns
    -------
    ModelConfig
        The shared configuration.
    list of dict or None
        The per-member records of an ensemble directory; None for a single model.

    Raises
    ------
    ModelFileError
        The directory or its config is missing or invalid; the message says which.
    """
    d = model_directory(directory)
    if not d.is_dir():
        names = ", ".join(bundled_models()) or "none installed"
        raise ModelFileError(
            f"model directory {d} does not exist; pass a directory written by "
            "`atomlens train` (it holds config.json and weights.safetensors) or the name of "
            f"a bundled model ({names})."
        )
    cfg_path = d / CONFIG_FILE
    if not cfg_path.is_file():
        raise ModelFileError(f"{cfg_path} is missing; {d} is not a complete atomlens model.")
    try:
        raw = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{cfg_path} is not valid JSON: {exc}.") from None
    if not isinstance(raw, dict):
        raise ModelFileError(f"{cfg_path} is not an atomlens model config.")
    members = raw.pop("members", None)
    if members is not None and (
        not isinstance(members, list)
        or not members
        or not all(isinstance(m, dict) for m in members)
    ):
        raise ModelFileError(f"{cfg_path}: 'members' must be a non-empty list of records.")
    return ModelConfig.from_dict(raw, source=str(cfg_path)), members


def read_networks(
    directory: Path,
    config: ModelConfig,
    members: list[dict[str, Any]] | None,
    /,
    *,
    device: str | torch.device = "cpu",
) -> list[UNet]:
    """The networks of a model directory whose config :func:`read_model_config` read:
    one for a single model, one per record of ``members`` for an ensemble; in eval mode.

    Raises
    ------
    ModelFileError
        The weights are missing, unreadable, or do not belong to the config.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    d = Path(directory)
    w_path = d / WEIGHTS_FILE
    if not w_path.is_file():
        raise ModelFileError(f"{w_path} is missing; {d} is not a complete atomlens model.")
    try:
        state = load_file(str(w_path), device=str(device))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFileError(f"{w_path} is not a readable safetensors file: {exc}.") from None
    if members is None:
        net = UNet(config.architecture)
        missing, unexpected = net.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ModelFileError(
                f"{w_path} does not match the architecture in {d / CONFIG_FILE}: missing "
                f"{list(missing)[:3]}, unexpected {list(unexpected)[:3]}."
            )
        return [net.to(device).eval()]
    nets = []
    for i in range(len(members)):
        prefix = f"members.{i}."
        sub = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        net = UNet(config.architecture)
        missing, unexpected = net.load_state_dict(sub, strict=False)
        if missing or unexpected or not sub:
            raise ModelFileError(
                f"{w_path} does not hold the weights of member {i} for the architecture "
                f"in {d / CONFIG_FILE} (missing {list(missing)[:3]}); the files do not "
                "belong together."
            )
        nets.append(net.to(device).eval())
    n_keys = sum(len(n.state_dict()) for n in nets)
    if n_keys != len(state):
        raise ModelFileError(f"{w_path} holds weights no member uses; it was altered.")
    return nets


def write_model_files(
    directory: Path,
    networks: UNet | Sequence[UNet],
    config: ModelConfig,
    /,
    member_provenance: Sequence[dict[str, Any]] | None = None,
) -> None:
    """Write ``config.json`` and ``weights.safetensors`` into an existing directory.

    Parameters
    ----------
    directory : pathlib.Path
        The directory (the caller makes it atomic, see
        :func:`atomlens._shared.atomic.atomic_directory`).
    networks : UNet or sequence of UNet
        One network (the single-model layout) or the members of an ensemble.
    config : ModelConfig
        What they share.
    member_provenance : sequence of dict, optional
        Per member (ensemble layout only; required with a sequence of networks).
    """
    from safetensors.torch import save_file

    d = config.to_dict()
    if isinstance(networks, UNet):
        state = {k: v.detach().cpu().contiguous() for k, v in networks.state_dict().items()}
    else:
        if member_provenance is None or len(member_provenance) != len(networks):
            raise ValueError("write_model_files needs one provenance record per member.")
        state = {
            f"members.{i}.{k}": v.detach().cpu().contiguous()
            for i, net in enumerate(networks)
            for k, v in net.state_dict().items()
        }
        d["members"] = [{"provenance": p} for p in member_provenance]
    save_file(state, str(directory / WEIGHTS_FILE), metadata={"format": FORMAT})
    (directory / CONFIG_FILE).write_text(
        json.dumps(d, indent=2, default=json_default) + "\n", encoding="utf-8"
    )
