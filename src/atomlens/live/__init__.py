"""A live web page over the automated experiment: watch the frames and the active-learning
run, steer them, and keep every decision with its provenance.

- :mod:`~atomlens.live.provenance`: the append-only JSON Lines log of a run
  (:class:`ProvenanceLog`, :func:`read_log`) and its W3C PROV-JSON export
  (:func:`to_prov_json`);
- :mod:`~atomlens.live.steer`: the steered experiment (:class:`SteeredRun`, an operator's
  :class:`Action`) and its exact replay from the log (:func:`replay_run`);
- :mod:`~atomlens.live.session`: the stream and the experiment on their own threads,
  decoupled from the page (:class:`LiveSession`, :class:`Hub`);
- :mod:`~atomlens.live.server`: the Starlette app and its uvicorn server
  (:func:`make_app`, :class:`LiveServer`); the page is ``static/`` (no CDN);
- :mod:`~atomlens.live.app`: :func:`live`, behind ``atomlens live``.

Everything is imported lazily: ``import atomlens.live`` loads neither torch nor Starlette.
"""

from __future__ import annotations

from atomlens._shared.lazy import lazy_exports

_WHERE = {
    "Action": "steer",
    "Hub": "session",
    "LiveServer": "server",
    "LiveSession": "session",
    "LogRead": "provenance",
    "ProvenanceLog": "provenance",
    "ReplayResult": "steer",
    "SteeredRun": "steer",
    "live": "app",
    "make_app": "server",
    "read_explore_config": "app",
    "read_log": "provenance",
    "replay_run": "steer",
    "to_prov_json": "provenance",
}

__all__ = sorted(_WHERE)

__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
