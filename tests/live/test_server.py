"""Security rules of the live server: the token off loopback, nothing served outside the
run folder's two files, bad requests answered 4xx with a message and never a traceback."""

from __future__ import annotations

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx2")

from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from atomlens.live.server import LiveServer, make_app, needs_token
from atomlens.live.session import LiveSession
from atomlens.live.steer import SteeredRun
from tests.active.test_loop import ToyInstrument
from tests.live.test_steer import SCAL, SETTINGS

LOCAL = "http://127.0.0.1:8765"


@pytest.fixture
def session(tmp_path):
    out = tmp_path / "run"

    def make(log):
        return SteeredRun(ToyInstrument(), scalarizer=SCAL, settings=SETTINGS, out=out, log=log)

    s = LiveSession(out, explore=make, hold_s=None)
    s.steered = make(s.log)  # as the explore thread makes it
    (tmp_path / "secret.txt").write_text("not for the page")
    return s


def test_only_loopback_runs_without_a_token():
    assert not needs_token("127.0.0.1") and not needs_token("::1")
    assert not needs_token("localhost")
    assert needs_token("0.0.0.0") and needs_token("192.168.1.7")


def test_a_token_is_required_on_every_route_and_the_websocket(session):
    client = TestClient(make_app(session, token="s3cret"))
    for path in ("/", "/api/state", "/api/files/provenance.jsonl"):
        r = client.get(path)
        assert r.status_code == 401 and "token is required" in r.json()["error"]
        assert client.get(path, params={"token": "wrong"}).status_code == 401
        assert client.get(path, params={"token": "s3cret"}).status_code == 200
        assert client.get(path, headers={"X-Atomlens-Token": "s3cret"}).status_code == 200
    r = client.post("/api/control", json={"action": "pause"})
    assert r.status_code == 401 and not session.paused
    r = client.post(
        "/api/control", json={"action": "pause"}, headers={"X-Atomlens-Token": "s3cret"}
    )
    assert r.status_code == 200 and session.paused
    with pytest.raises(WebSocketDisconnect) as info, client.websocket_connect("/ws") as ws:
        ws.receive_text()
    assert info.value.code == 1008
    with client.websocket_connect("/ws?token=s3cret") as ws:
        assert '"type": "status"' in ws.receive_text()


def test_a_server_off_loopback_makes_a_token():
    class Dummy:
        pass

    server = LiveServer(Dummy(), host="0.0.0.0", port=0)
    assert server.token and len(server.token) >= 24 and "token=" in server.url
    assert LiveServer(Dummy(), host="127.0.0.1", port=0).token is None
    with pytest.raises(ValueError, match="`token` must not be empty"):
        LiveServer(Dummy(), host="0.0.0.0", port=0, token="")


def test_nothing_outside_the_run_folder_is_served(session):
    client = TestClient(make_app(session), base_url=LOCAL)
    assert client.get("/static/app.js").status_code == 200
    for path in (
        "/static/../../secret.txt",
        "/static/%2e%2e%2fsecret.txt",
        "/api/files/..%2Fsecret.txt",
        "/api/files/overview.npy",
        "/api/files/%2Fetc%2Fpasswd",
        "/etc/passwd",
    ):
        r = client.get(path)
        assert r.status_code == 404, path
        assert "error" in r.json() and "not for the page" not in r.text
    prov = client.get("/api/files/prov.json").json()
    assert "activity" in prov and "prefix" in prov


def test_bad_requests_get_4xx_and_a_message(session):
    client = TestClient(make_app(session), base_url=LOCAL, raise_server_exceptions=False)
    cases = [
        (b"{not json", 400, "not JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (b'{"action": "__import__(\'os\')"}', 400, "unknown `action`"),
        (b'{"action": "measure", "x": "1+1", "y": 3}', 400, "`x` must be a finite number"),
        (b'{"action": "measure", "x": 1e9, "y": 3}', 400, "outside the 40×40 px overview"),
        (b'{"action": "policy", "acquisition": "greedy"}', 400, "unknown `acquisition`"),
        (b'{"action": "policy", "beta": -1}', 400, "`beta` must be >= 0"),
        (b'{"action": "policy", "scalarizer": "eval:1"}', 400, "not understood"),
        (
            b'{"action": "label", "frame": 0, "kind": "false", "x_px": 1, "y_px": 1}',
            400,
            "no frames to label",
        ),
        (b'{"action": "adapt"}', 400, "no frame stream"),
        (b'{"action": "veto", "index": "3"}', 400, "`index` must be an integer"),
        (b"x" * 20000, 413, "16 KiB"),
    ]
    for body, code, text in cases:
        r = client.post("/api/control", content=body, headers=JSON)
        assert r.status_code == code, body[:40]
        msg = r.json()["error"]
        assert "Traceback" not in r.text and "\n" not in msg
        if text:
            assert text in msg
    assert client.get("/api/control").status_code == 405
    # an unexpected failure inside a route is a 500 with one line, never a traceback
    session.hub.snapshot = lambda: 1 / 0
    r = client.get("/api/state")
    assert r.status_code == 500 and r.json() == {"error": "internal error; see the server's log"}


JSON = {"Content-Type": "application/json"}


def test_other_sites_cannot_drive_the_server(session):
    client = TestClient(make_app(session), base_url=LOCAL)
    # a form or plain-text post from another site's page (no preflight): refused
    r = client.post(
        "/api/control", content=b'{"action": "pause"}', headers={"Content-Type": "text/plain"}
    )
    assert r.status_code == 415 and not session.paused
    r = client.post(
        "/api/control", json={"action": "pause"}, headers={"Origin": "http://evil.example"}
    )
    assert r.status_code == 401 and not session.paused
    with (
        pytest.raises(WebSocketDisconnect),
        client.websocket_connect("/ws", headers={"Origin": "http://evil.example"}) as ws,
    ):
        ws.receive_text()
    # a DNS-rebound name for 127.0.0.1: refused without a token
    rebound = TestClient(make_app(session), base_url="http://attacker.example:8765")
    assert rebound.get("/api/state").status_code == 401
    # the page itself: same origin
    r = client.post(
        "/api/control", json={"action": "pause"}, headers={"Origin": "http://127.0.0.1:8765"}
    )
    assert r.status_code == 200 and session.paused
