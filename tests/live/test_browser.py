"""The live page in a real browser (Playwright driving Debian's chromium, headless): frames
appear as they are written, the OOD plot moves under drifted frames (a probe twice as
wide as in training: the tiny ensemble did not react to a 12 Å film), a veto changes the next
measured point, a "false atom" mark reaches the adaptation's labels, and the token is
enforced off loopback. Screenshots go to ``$ATOMLENS_SCREENSHOTS`` when it is set."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

sync_api = pytest.importorskip("playwright.sync_api")
pytest.importorskip("starlette")

from atomlens.elit.adapt import AdaptConfig  # noqa: E402
from atomlens.elit.stream import StreamConfig  # noqa: E402
from atomlens.live.app import live  # noqa: E402
from atomlens.simulate import simulate_image  # noqa: E402
from tests.elit.test_stream import PS, SHIFTED, SIDE, ens4  # noqa: E402, F401

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)"
)


def _shot(page, name):
    folder = os.environ.get("ATOMLENS_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=True)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        yield b
        b.close()


def _wait(cond, timeout=20.0, what="condition"):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _write(folder: Path, name: str, image: np.ndarray) -> None:
    tmp = folder / f".{name}"
    np.save(tmp, image.astype(np.float32), allow_pickle=False)
    os.replace(f"{tmp}.npy" if not str(tmp).endswith(".npy") else tmp, folder / name)


def test_frames_health_labels_and_adaptation(ens4, browser, tmp_path):  # noqa: F811
    folder = tmp_path / "in"
    folder.mkdir()
    adapt_cfg = AdaptConfig(
        rounds=1, steps=2, crop=64, batch_size=2, calibration_images=0, holdout=0.0, device="cpu"
    )
    cfg = StreamConfig(
        on_drift="none",
        drift_ratio=2.0,
        idle_timeout_s=60,
        poll_s=0.05,
        settle_s=0.05,
        window=3,
        adapt=adapt_cfg,
    )
    session, server = live(
        str(folder), model=ens4, out=tmp_path / "run", port=0, pixel_size=PS, stream_config=cfg
    )
    try:
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(server.url)
        page.wait_for_selector("#status[data-state=live]", timeout=10_000)
        good = [
            simulate_image("graphene", shape=SIDE, pixel_size=PS, rng=s).image for s in range(3)
        ]
        drifted = [
            simulate_image(
                "graphene", shape=SIDE, pixel_size=PS, rng=10 + s, conditions=SHIFTED
            ).image
            for s in range(3)
        ]
        seen = []
        for k, im in enumerate(good + drifted):
            t0 = time.monotonic()
            _write(folder, f"f{k:02d}.npy", im)
            page.wait_for_function(
                f"document.getElementById('frame-count').dataset.n >= {k + 1}", timeout=2_000
            )
            seen.append(time.monotonic() - t0)
            if k == 2:
                base_max = float(page.get_attribute("#ood", "data-max"))
        assert max(seen) < 2.0
        page.wait_for_function("document.getElementById('ood').dataset.n >= 6", timeout=2_000)
        last = float(page.get_attribute("#ood", "data-last"))
        assert base_max < 2.0 and last > 2.0 and last > 2 * base_max  # the plot moved up
        assert page.locator("#thumbs img").count() == 6
        _shot(page, "live-frames.png")
        # mark the atom nearest the first frame's centre false: click it on the canvas
        page.locator("#thumbs img").first.click()
        page.check("input[name=mark][value=false]")
        atoms = session.hub.frames[0]["atoms"]
        box = page.locator("#frame").bounding_box()
        scale = 360 / SIDE
        a = min(atoms, key=lambda r: (r[0] - SIDE / 2) ** 2 + (r[1] - SIDE / 2) ** 2)
        page.mouse.click(
            box["x"] + a[0] * scale * box["width"] / 360,
            box["y"] + a[1] * scale * box["height"] / 360,
        )
        _wait(lambda: session.labels.get(0), what="the label")
        lab = session.labels[0][0]
        assert lab["kind"] == "false" and abs(lab["x_px"] - a[0]) < 1e-6
        page.click("#adapt")
        _write(folder, "f06.npy", good[0])  # the adaptation starts after the next frame
        _wait(
            lambda: any(e["action"] == "adapt_end" for e in session.log.entries),
            120,
            "the adaptation",
        )
        start = next(e for e in session.log.entries if e["action"] == "adapt_start")
        assert start["inputs"]["frames"][0] == 0  # the labelled frame is trained on
        assert start["inputs"]["human_labels"][0] == [lab]
        end = next(e for e in session.log.entries if e["action"] == "adapt_end")
        assert end["outputs"]["history"][1]["human_labels"] == 1  # in the round's labels
        page.wait_for_selector("#adaptations li", timeout=5_000)
        _shot(page, "live-health.png")
        # an undone round says why on the page, as the log does (this adaptation's round
        # was kept: the next message is the same history with its round undone)
        rows = [dict(r) for r in end["outputs"]["history"]]
        rows[-1].update(kept=False, undone_because="F1 on the calibration images fell")
        session.hub.publish({"type": "adaptation", "history": rows})
        page.wait_for_function("document.querySelectorAll('#adaptations li').length >= 2")
        text = page.locator("#adaptations li").last.inner_text()
        assert f"round {rows[-1]['round']} undone: F1 on the calibration images fell" in text
        # the DOM stays bounded: no more thumbnails than frames kept
        assert page.locator("#thumbs img").count() <= 12
    finally:
        session.stop()
        server.stop()


def test_a_veto_changes_the_next_measured_point(browser, tmp_path):
    cfg = {
        "simulate": {"shape": 120, "n_dopants": 2, "seed": 0},
        "scalarizer": "band:99:110:85:97",
        "settings": {
            "model": "gp",
            "steps": 4,
            "n_seed": 2,
            "grid_step_px": 8,
            "patch_px": 8,
            "fit_iterations": 15,
        },
    }
    (tmp_path / "explore.json").write_text(json.dumps(cfg))
    session, server = live(
        None, out=tmp_path / "run", explore=tmp_path / "explore.json", port=0, hold_s=None
    )
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(server.url)
        for k in range(2):  # the seed points
            page.wait_for_function(f"document.getElementById('proposal').dataset.step === '{k}'")
            page.click("#accept")
            _wait(lambda k=k: len(session.steered.measured) > k, what=f"seed point {k}")
        page.wait_for_function("document.getElementById('proposal').dataset.step === '2'")
        first = int(page.get_attribute("#proposal", "data-index"))
        page.click("#veto")
        page.wait_for_function(
            f"document.getElementById('proposal').dataset.index !== '{first}' && "
            "document.getElementById('proposal').dataset.index !== ''"
        )
        second = int(page.get_attribute("#proposal", "data-index"))
        page.click("#accept")
        _wait(lambda: len(session.steered.measured) == 3, what="the measurement")
        assert session.steered.measured[2] == second != first
        _shot(page, "live-explore.png")
    finally:
        session.stop()
        server.stop()
    from atomlens.live.steer import replay_run

    res = replay_run(tmp_path / "run")
    assert res.exact and res.human_actions >= 1


def test_the_token_is_enforced_off_loopback(browser, tmp_path):
    cfg = {
        "simulate": {"shape": 120, "n_dopants": 2, "seed": 0},
        "settings": {"model": "gp", "steps": 1, "n_seed": 1, "grid_step_px": 8, "patch_px": 8},
    }
    (tmp_path / "explore.json").write_text(json.dumps(cfg))
    session, server = live(
        None,
        out=tmp_path / "run",
        explore=tmp_path / "explore.json",
        host="0.0.0.0",
        port=0,
        hold_s=None,
    )
    try:
        assert server.token
        page = browser.new_page()
        bare = f"http://127.0.0.1:{server.port}/"
        r = page.goto(bare)
        assert r.status == 401 and "token is required" in page.content()
        r = page.goto(bare + "?token=wrong")
        assert r.status == 401
        page.goto(bare + f"?token={server.token}")
        page.wait_for_selector("#status[data-state=live]", timeout=10_000)
        status = page.evaluate(
            """async () => (await fetch('api/control', {method: 'POST',
                 body: JSON.stringify({action: 'pause'})})).status"""
        )
        assert status == 401 and not session.paused  # a control without the token
        page.click("#pause")  # the page sends it
        _wait(lambda: session.paused, what="the pause")
    finally:
        session.stop()
        server.stop()
