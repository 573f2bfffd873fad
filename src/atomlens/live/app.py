"""``atomlens live`` as a function: the session, the server, and the explore configuration
file."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atomlens._shared.config import check_keys
from atomlens.live.provenance import file_sha256, read_log, to_prov_json
from atomlens.live.server import LiveServer
from atomlens.live.session import LiveSession
from atomlens.live.steer import SteeredRun

__all__ = ["ExploreConfig", "live", "read_explore_config", "write_prov_json"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExploreConfig:
    """What ``--explore CONFIG`` names (a JSON file; unknown keys are refused).

    Parameters
    ----------
    sample : str, optional
        A saved simulated sample (:func:`atomlens.experiment.save_sample`), relative to
        the file.
    simulate : dict, optional
        Or the arguments of :func:`atomlens.experiment.simulate_sample` (``shape``,
        ``n_dopants``, ``n_vacancies``, ``seed``, …).
    scalarizer : str
        ``band:LO:HI`` … as for ``atomlens explore`` [eV].
    settings : dict
        :class:`atomlens.active.ExploreSettings` fields.
    """

    sample: str | None = None
    simulate: dict[str, Any] | None = None
    scalarizer: str = "band:99:110:85:97"
    settings: dict[str, Any] | None = None


def read_explore_config(path: str | os.PathLike[str], /) -> tuple[Any, Any, str]:
    """The instrument, settings and scalarizer an explore configuration file describes.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Not JSON, unknown keys, neither or both of ``sample`` and ``simulate``, bad
        settings.
    """
    # the active-learning stack and the simulator load only for an experiment
    from atomlens.active.loop import ExploreSettings
    from atomlens.experiment import load_sample, simulate_sample

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"the `explore` configuration {p} does not exist.")
    try:
        d = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"the `explore` configuration {p} is not JSON: {exc}.") from None
    if not isinstance(d, dict):
        raise ValueError(f"the `explore` configuration {p} must be a JSON object.")
    cfg = ExploreConfig(**check_keys(ExploreConfig, d, what=f"the explore configuration {p}"))
    if (cfg.sample is None) == (cfg.simulate is None):
        raise ValueError(f'{p}: give either "sample" (a saved sample) or "simulate".')
    if cfg.sample is not None:
        mic = load_sample(p.parent / cfg.sample)
    else:
        mic = simulate_sample(**dict(cfg.simulate or {}))
    settings = ExploreSettings.from_dict(cfg.settings or {})
    return mic, settings, cfg.scalarizer


def _weights_sha256(model: Any) -> dict[str, Any]:
    d = Path(str(model))
    files = sorted(d.glob("*.safetensors")) if d.is_dir() else []
    info: dict[str, Any] = {"version": d.name if d.is_dir() else str(model)}
    if files:
        info["sha256"] = file_sha256(files[0])
        info["files"] = {f.name: file_sha256(f) for f in files}
    return info


def write_prov_json(run: str | os.PathLike[str], /) -> Path:
    """Write the run's log as W3C PROV-JSON into ``run/prov.json`` (atomically)."""
    run = Path(run)
    doc = to_prov_json(read_log(run).entries, run=run.name)
    tmp = run / ".prov.json.tmp"
    tmp.write_text(json.dumps(doc, indent=1))
    tmp.replace(run / "prov.json")
    return run / "prov.json"


def live(
    source: str | os.PathLike[str] | None,
    /,
    *,
    model: str | os.PathLike[str] | Any = "graphene",
    out: str | os.PathLike[str],
    explore: str | os.PathLike[str] | None = None,
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    hold_s: float | None = 2.0,
    pixel_size: float | None = None,
    stream_config: Any = None,
    overwrite: bool = False,
    keep_frames: int = 12,
) -> tuple[Any, Any]:
    """Start the live page over a stream of frames and/or a steered experiment.

    Parameters
    ----------
    source : path, optional
        Frames: a folder being written, or a stack file (as for
        :func:`atomlens.elit.stream.stream`); None for an experiment alone.
    model : str or path or Ensemble
        The ensemble (a bundled name or a model directory).
    out : path
        The run folder (``provenance.jsonl``; ``prov.json`` on :meth:`stop`).
    explore : path, optional
        An explore configuration (:class:`ExploreConfig`).
    host, port : str, int
        Where to serve; any host but a loopback address requires a token.
    token : str, optional
        The token (generated when needed and not given).
    hold_s : float or None
        How long a proposal waits for the operator [s]; None: until they act.
    pixel_size : float, optional
        [Å/px] of the frames (overrides their calibration).
    stream_config : StreamConfig, optional
    overwrite : bool
        Use a run folder that holds files.
    keep_frames : int
        Frames the page keeps.

    Returns
    -------
    session : LiveSession
        Started; ``session.stop()`` ends it.
    server : LiveServer
        Started on a thread; ``server.url`` is the page, ``server.stop()`` ends it.

    Raises
    ------
    ValueError
        Neither ``source`` nor ``explore``; bad settings.
    FileNotFoundError
        ``source`` or ``explore`` missing.
    ImportError
        The live extra is not installed.
    """
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise ImportError(
            "the live page needs Starlette and uvicorn: pip install 'atomlens[live]'"
        ) from None
    if source is None and explore is None:
        raise ValueError("give a SOURCE of frames, an `explore` configuration, or both.")
    if source is not None and not Path(source).exists():
        raise FileNotFoundError(f"the frame source {source} does not exist.")
    make = None
    if explore is not None:
        mic, settings, scal = read_explore_config(explore)
        run_dir = Path(out)

        def make(log: Any) -> Any:
            return SteeredRun(mic, scalarizer=scal, settings=settings, out=run_dir, log=log)

    session_box: dict[str, Any] = {}
    st = None
    info: dict[str, Any] = {}
    if source is not None:
        # the stream (torch, the ensemble) loads only for a source of frames
        from atomlens.bundled import resolve_model_path
        from atomlens.elit.stream import StreamConfig, stream

        if not hasattr(model, "networks"):
            model = resolve_model_path(str(model))

        def adapt_fn(*args: Any, **kw: Any) -> Any:
            return session_box["s"].adapt_fn(*args, **kw)

        st = stream(
            model,
            source,
            pixel_size=pixel_size,
            config=stream_config if stream_config is not None else StreamConfig(),
            adapt_fn=adapt_fn,
        )
        info = (
            _weights_sha256(model) if not hasattr(model, "networks") else {"version": "in memory"}
        )
    session = LiveSession(
        out,
        stream=st,
        explore=make,
        hold_s=hold_s,
        keep_frames=keep_frames,
        model_info=info,
        source_dir=source if source is not None and Path(source).is_dir() else None,
        overwrite=overwrite,
    )
    session_box["s"] = session
    server = LiveServer(session, host=host, port=port, token=token).start()
    session.start()
    logger.info("live page at %s", server.url)
    return session, server
