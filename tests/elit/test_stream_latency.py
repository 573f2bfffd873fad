"""The live loop's latency: reported per stage, and not taken by a background adaptation."""

from __future__ import annotations

import os
import sys
import threading
import time

import pandas as pd
import pytest

from atomlens.elit.stream import StreamConfig, stream
from atomlens.elit.stream.background import BackgroundAdaptation
from atomlens.elit.stream.record import FRAME_COLUMNS, LATENCY_STAGES
from atomlens.simulate import simulate_image

PS = 0.25  # the tiny model's sampling [Å/px]


def test_each_frame_says_where_its_latency_went(tiny_model, tmp_path):
    frames = [simulate_image("graphene", shape=96, pixel_size=PS, rng=s).image for s in (1, 2)]
    st = stream(
        tiny_model, frames, pixel_size=PS, config=StreamConfig(on_drift="none"), out=tmp_path / "o"
    )
    recs = list(st)
    for r in recs:
        assert set(r.seconds) >= set(LATENCY_STAGES) - {"normalise"} and r.seconds["network"] > 0
        # the stages are the latency, split
        assert abs(sum(r.seconds.values()) - r.latency_s) < 0.05 * r.latency_s + 1e-3
    table = pd.read_csv(tmp_path / "o" / "frames.csv")
    assert list(table.columns) == FRAME_COLUMNS
    assert table["network_s"].tolist() == pytest.approx(
        [r.seconds["network"] for r in recs], rel=1e-5
    )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_the_adaptation_thread_yields_the_cpu_to_the_loop(tiny_model):
    """Our own adaptation thread runs at nice + 10, the loop's thread as it was."""
    seen = {}

    def fake_adapt(ens, frames, *, pixel_size, config):
        tid = threading.get_native_id()
        seen["nice"] = os.getpriority(os.PRIO_PROCESS, tid)
        return ens

    own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    bg = BackgroundAdaptation(fake_adapt, None)
    bg.launch(tiny_model, [], pixel_size=PS, config=None, at=0, members=(0,), indices=[])
    deadline = time.time() + 30
    while bg.collect(tiny_model) is None and time.time() < deadline:
        time.sleep(0.01)
    bg.shutdown()
    assert seen["nice"] == min(19, own + 10)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == own
