"""The provenance log: append-only with a chain of hashes, a torn last line survives a kill,
and the PROV-JSON export reads back with the W3C reference package."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from atomlens._shared.atomic import append_line
from atomlens.live.provenance import ProvenanceLog, read_log, to_prov_json


def test_entries_are_appended_in_order_with_a_chain(tmp_path):
    log = ProvenanceLog(tmp_path / "provenance.jsonl")
    log.append("system", "start", inputs={"a": 1})
    log.append(
        "agent",
        "propose",
        outputs={"index": 3, "acquisition": float("nan")},
        model={"version": "gp", "sha256": "ab" * 32},
    )
    log.append("human", "veto", inputs={"index": 3})
    read = read_log(tmp_path)
    assert [e["seq"] for e in read.entries] == [0, 1, 2] and read.torn == 0
    assert [e["actor"] for e in read.entries] == ["system", "agent", "human"]
    assert read.entries[1]["outputs"]["acquisition"] is None  # NaN is not JSON
    assert read.entries[0]["prev"] is None and read.entries[1]["prev"] != read.entries[2]["prev"]
    # appending again continues the chain; the earlier bytes are untouched (append-only)
    before = (tmp_path / "provenance.jsonl").read_bytes()
    ProvenanceLog(tmp_path / "provenance.jsonl").append("human", "accept")
    after = (tmp_path / "provenance.jsonl").read_bytes()
    assert after.startswith(before) and len(read_log(tmp_path).entries) == 4
    with pytest.raises(ValueError, match="`actor` must be one of agent, human, system"):
        log.append("robot", "x")


def test_an_edited_or_removed_entry_breaks_the_chain(tmp_path):
    log = ProvenanceLog(tmp_path / "provenance.jsonl")
    for k in range(4):
        log.append("agent", "measure", outputs={"value": k})
    lines = (tmp_path / "provenance.jsonl").read_text().splitlines()
    edited = [*lines[:2], lines[2].replace('"value":2', '"value":9'), *lines[3:]]
    (tmp_path / "provenance.jsonl").write_text("\n".join(edited) + "\n")
    with pytest.raises(ValueError, match=r"entry 3 .* does not follow entry 2"):
        read_log(tmp_path)
    (tmp_path / "provenance.jsonl").write_text("\n".join(lines[:1] + lines[2:]) + "\n")
    with pytest.raises(ValueError, match="does not follow"):
        read_log(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a provenance log"):
        read_log(tmp_path / "nowhere")


_WRITER = """
import sys
from atomlens.live.provenance import ProvenanceLog
log = ProvenanceLog(sys.argv[1])
k = 0
while True:
    log.append("agent", "measure", outputs={"value": k, "raw": list(range(2000))})
    k += 1
"""


def test_a_kill_mid_write_leaves_a_readable_log_and_the_next_run_goes_on(tmp_path):
    path = tmp_path / "provenance.jsonl"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], env=env)
    deadline = time.monotonic() + 30
    while (not path.exists() or path.stat().st_size < 200_000) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    n = len(read_log(path).entries)
    assert n > 5
    # a write cut off half-way (what a kill inside write() leaves): detected and dropped
    data = path.read_bytes()
    cut = json.dumps({"seq": n, "actor": "agent", "action": "measure", "outputs": {"raw": [1, 2]}})
    path.write_bytes(data + cut.encode()[:25])
    read = read_log(path)
    assert len(read.entries) == n and read.torn == 1
    # the next run appends on a fresh line, continues the numbering and the chain
    ProvenanceLog(path).append("human", "resume")
    read = read_log(path)
    assert [e["seq"] for e in read.entries] == list(range(n + 1)) and read.torn == 1
    assert read.entries[-1]["action"] == "resume"


def test_append_line_refuses_two_lines(tmp_path):
    with pytest.raises(ValueError, match="holds a newline"):
        append_line(tmp_path / "x", b"a\nb")


def test_prov_json_reads_back_with_the_reference_package(tmp_path):
    prov_model = pytest.importorskip("prov.model")
    log = ProvenanceLog(tmp_path / "provenance.jsonl")
    log.append(
        "system",
        "explore_start",
        outputs={"wrote": ["overview.npy"]},
        files={"overview.npy": "0f" * 32},
    )
    log.append("agent", "propose", outputs={"index": 4}, model={"version": "gp/ucb", "beta": 4.0})
    log.append("human", "veto", inputs={"index": 4, "reason": "a contamination spot"})
    doc = to_prov_json(read_log(tmp_path).entries, run="t")
    text = json.dumps(doc)
    bundle = prov_model.ProvDocument.deserialize(content=text, format="json")
    records = bundle.get_records()
    activities = [r for r in records if isinstance(r, prov_model.ProvActivity)]
    assert len(activities) == 3
    assoc = {
        str(r.get_attribute("prov:agent").pop())
        for r in records
        if isinstance(r, prov_model.ProvAssociation)
    }
    assert any("operator" in a for a in assoc) and any("agent" in a for a in assoc)
    gen = [r for r in records if isinstance(r, prov_model.ProvGeneration)]
    used = [r for r in records if isinstance(r, prov_model.ProvUsage)]
    assert len(gen) == 1 and len(used) == 1  # the overview written, the model used
    assert len([r for r in records if isinstance(r, prov_model.ProvCommunication)]) == 2
