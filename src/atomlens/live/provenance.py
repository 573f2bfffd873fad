"""The run's provenance log: every decision of the agent and every action of a person,
one JSON line each, appended as it happens; read back and exported as W3C PROV-JSON.

A log is the file ``provenance.jsonl`` of a run folder. Every entry has

- ``seq``: its number (0, 1, …), ``time``: Unix time [s] and ``utc``: the same in ISO 8601;
- ``actor``: ``"agent"`` (the loop decided), ``"human"`` (a person, through the page) or
  ``"system"`` (start, end, files);
- ``action``: what was done (``"propose"``, ``"measure"``, ``"veto"``, ``"frame"``, …) and
  ``inputs`` / ``outputs``: what it was done with and what came of it;
- ``model``: the model version in force (a name and the SHA-256 of its weights, or the
  surrogate's settings), ``files``: SHA-256 of the files it read or wrote (paths relative to
  the run folder);
- ``prev``: the SHA-256 of the previous entry's line, so that an entry removed or edited
  afterwards breaks the chain (:func:`read_log` checks it).

Appends go through :func:`atomlens._shared.atomic.append_line` (one ``write`` with
``O_APPEND``, then ``fsync``): a process killed mid-write leaves at most one torn line,
which :func:`read_log` detects and drops, and the next append starts on a fresh line.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from atomlens._shared.atomic import append_line
from atomlens._shared.checksum import file_sha256
from atomlens._shared.config import json_default

__all__ = [
    "LOG_NAME",
    "LogRead",
    "ProvenanceLog",
    "file_sha256",
    "read_log",
    "to_prov_json",
]

logger = logging.getLogger(__name__)

#: The log's file name in a run folder.
LOG_NAME = "provenance.jsonl"

Actor = Literal["agent", "human", "system"]
_ACTORS = ("agent", "human", "system")


def _clean(obj: Any) -> Any:
    """JSON-safe: NaN and infinities become None (JSON has neither)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def _line_hash(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


class LogRead:
    """What :func:`read_log` found.

    Attributes
    ----------
    entries : list of dict
        The complete entries, in order.
    torn : int
        Lines dropped as torn (a write cut off by a kill).
    last_hash : str or None
        SHA-256 of the last complete entry's line (the next entry's ``prev``).
    """

    def __init__(self, entries: list[dict[str, Any]], torn: int, last_hash: str | None) -> None:
        self.entries = entries
        self.torn = torn
        self.last_hash = last_hash


def read_log(path: str | os.PathLike[str], /) -> LogRead:
    """Read a provenance log, dropping torn lines and checking the chain of entries.

    Parameters
    ----------
    path : str or path
        ``provenance.jsonl``, or the run folder that holds it.

    Returns
    -------
    LogRead

    Raises
    ------
    FileNotFoundError
        No log there.
    ValueError
        The chain is broken: an entry was removed, reordered or edited after it was
        written (the message names the first entry that does not follow).
    """
    p = Path(path)
    if p.is_dir():
        p = p / LOG_NAME
    if not p.is_file():
        raise FileNotFoundError(
            f"{p} is not a provenance log; give a run folder of `atomlens live`."
        )
    data = p.read_bytes()
    lines = data.split(b"\n")
    entries: list[dict[str, Any]] = []
    torn = 0
    prev = None
    for k, raw in enumerate(lines):
        if not raw:
            continue
        complete = k < len(lines) - 1  # it has its newline
        try:
            entry = json.loads(raw) if complete else None
        except json.JSONDecodeError:
            entry = None
        if not isinstance(entry, dict) or "seq" not in entry:
            torn += 1
            continue
        if entry.get("prev") != prev or entry["seq"] != len(entries):
            raise ValueError(
                f"{p}: entry {entry.get('seq')} (line {k + 1}) does not follow entry "
                f"{len(entries) - 1}: the log was edited or cut after it was written."
            )
        entries.append(entry)
        prev = _line_hash(raw)
    if torn:
        logger.warning("%s: %d torn line(s) dropped (a write was cut off)", p, torn)
    return LogRead(entries, torn, prev)


class ProvenanceLog:
    """An append-only provenance log (see the module notes).

    Parameters
    ----------
    path : str or path
        ``provenance.jsonl`` (made if missing; an existing log is continued after its last
        complete entry).

    Attributes
    ----------
    path : pathlib.Path
    entries : list of dict
        Every entry so far (those read back and those appended here).
    """

    def __init__(self, path: str | os.PathLike[str], /) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self.entries: list[dict[str, Any]] = []
        self._prev: str | None = None
        if self.path.is_file():
            found = read_log(self.path)
            self.entries, self._prev = found.entries, found.last_hash

    def append(
        self,
        actor: Actor,
        action: str,
        /,
        *,
        inputs: dict[str, Any] | None = None,
        outputs: dict[str, Any] | None = None,
        model: dict[str, Any] | None = None,
        files: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Append one entry (thread-safe) and return it.

        Parameters
        ----------
        actor : {"agent", "human", "system"}
        action : str
        inputs, outputs : dict, optional
            JSON-serialisable (numpy values are converted, NaN becomes null).
        model : dict, optional
            The model version in force.
        files : dict of str to str, optional
            File (relative to the run folder) → SHA-256.

        Raises
        ------
        ValueError
            An unknown ``actor``.
        """
        if actor not in _ACTORS:
            raise ValueError(f"`actor` must be one of {', '.join(_ACTORS)}, got {actor!r}.")
        with self._lock:
            now = time.time()
            entry = {
                "seq": len(self.entries),
                "time": now,
                "utc": datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds"),
                "actor": actor,
                "action": str(action),
                "inputs": inputs or {},
                "outputs": outputs or {},
                "model": model,
                "files": files or {},
                "prev": self._prev,
            }
            entry = _clean(json.loads(json.dumps(entry, default=json_default)))
            line = json.dumps(entry, separators=(",", ":"), allow_nan=False).encode()
            append_line(self.path, line)
            self._prev = _line_hash(line)
            self.entries.append(entry)
            return entry


def _literal(v: Any) -> Any:
    """A PROV-JSON attribute value: strings, numbers and booleans as they are, anything
    else as its JSON text."""
    if v is None:
        return "null"
    if isinstance(v, str | bool | int | float):
        return v
    return json.dumps(v, separators=(",", ":"))


def to_prov_json(entries: list[dict[str, Any]], /, *, run: str = "run") -> dict[str, Any]:
    """The log as a W3C PROV-JSON document (https://www.w3.org/submissions/prov-json/).

    Each entry is an activity (``run:eN``) associated with its agent
    (``atomlens:agent``, a ``prov:SoftwareAgent``; ``atomlens:operator``, a
    ``prov:Person``; ``atomlens:system``), informed by the entry before it; every model
    version and file hash it names is an entity it used (models, input files) or
    generated (files it wrote, under ``outputs["wrote"]``).

    Parameters
    ----------
    entries : list of dict
        :attr:`LogRead.entries`.
    run : str
        A name for the run (the namespace's last part).

    Returns
    -------
    dict
        The PROV-JSON document (``json.dump`` it).
    """
    doc: dict[str, Any] = {
        "prefix": {
            "atomlens": "https://github.com/atomlens/atomlens/ns#",
            "run": f"urn:atomlens:run:{run}:",
        },
        "agent": {
            "atomlens:agent": {"prov:type": "prov:SoftwareAgent", "prov:label": "atomlens"},
            "atomlens:operator": {"prov:type": "prov:Person", "prov:label": "operator"},
            "atomlens:system": {"prov:type": "prov:SoftwareAgent", "prov:label": "live server"},
        },
        "activity": {},
        "entity": {},
        "wasAssociatedWith": {},
        "used": {},
        "wasGeneratedBy": {},
        "wasInformedBy": {},
    }
    who = {"agent": "atomlens:agent", "human": "atomlens:operator", "system": "atomlens:system"}
    prev_id = None
    for e in entries:
        aid = f"run:e{e['seq']}"
        doc["activity"][aid] = {
            "prov:startTime": e["utc"],
            "prov:endTime": e["utc"],
            "prov:type": f"atomlens:{e['action']}",
            "atomlens:inputs": _literal(e.get("inputs") or {}),
            "atomlens:outputs": _literal(e.get("outputs") or {}),
        }
        doc["wasAssociatedWith"][f"_:w{e['seq']}"] = {
            "prov:activity": aid,
            "prov:agent": who.get(e["actor"], "atomlens:system"),
        }
        if prev_id is not None:
            doc["wasInformedBy"][f"_:i{e['seq']}"] = {
                "prov:informed": aid,
                "prov:informant": prev_id,
            }
        prev_id = aid
        model = e.get("model")
        if model:
            mid = f"run:model-{model.get('sha256') or model.get('version', 'unknown')}"[:120]
            doc["entity"].setdefault(
                mid,
                {
                    "prov:type": "atomlens:model",
                    **{f"atomlens:{k}": _literal(v) for k, v in model.items()},
                },
            )
            doc["used"][f"_:m{e['seq']}"] = {"prov:activity": aid, "prov:entity": mid}
        wrote = set((e.get("outputs") or {}).get("wrote", []))
        for k, (name, sha) in enumerate(sorted((e.get("files") or {}).items())):
            fid = f"run:file-{sha[:16]}"
            doc["entity"].setdefault(
                fid, {"prov:type": "atomlens:file", "prov:label": name, "atomlens:sha256": sha}
            )
            rel = "wasGeneratedBy" if name in wrote else "used"
            key = f"_:{'g' if name in wrote else 'f'}{e['seq']}_{k}"
            doc[rel][key] = {"prov:activity": aid, "prov:entity": fid}
    return {k: v for k, v in doc.items() if v}
