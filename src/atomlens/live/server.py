"""The live page's web server: Starlette routes over a :class:`LiveSession`, served by uvicorn.

Why Starlette + uvicorn: a small ASGI toolkit with WebSockets built in, maintained, typed,
and nothing else to learn — the page is one HTML file with its own JavaScript, so a
dashboard framework (Panel, Bokeh, Dash) would add a large dependency and its own event
model for no gain, and FastAPI's validation layer is not needed for six routes.

Routes (all answers to bad requests are ``4xx`` with ``{"error": "…"}``; an unexpected
failure is ``500`` with a one-line message, never a traceback):

- ``GET /`` the page, ``GET /static/{app.js,app.css}`` its script and style (from the
  package; no CDN);
- ``GET /api/state``: what a page needs on connecting;
- ``POST /api/control``: one control (:meth:`LiveSession.control`), JSON ≤ 16 KiB;
- ``GET /api/files/{name}``: ``provenance.jsonl`` or ``prov.json`` of the run folder
  (nothing else is served; no path from a request reaches the file system);
- ``WS /ws``: the messages of the :class:`Hub`.

**Token.** Bound to a loopback address (127.0.0.1, ::1, localhost) the server needs no
token; bound to any other address it requires one (generated and printed at start by
``atomlens live``) on every route: ``?token=`` in the page's and the WebSocket's URL or an
``X-Atomlens-Token`` header. Tokens are compared in constant time.

**Other sites.** A page from another web site open in the operator's browser could send
requests to the server; they are refused: a request whose ``Origin`` is not the server's
own address, a control that is not ``application/json`` (a form or plain-text post), and,
without a token, a request whose ``Host`` is not a loopback name (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import threading
from importlib import resources
from typing import Any

from atomlens.live.provenance import read_log, to_prov_json

__all__ = ["LOOPBACK", "LiveServer", "make_app", "needs_token"]

logger = logging.getLogger(__name__)

#: Addresses on which the server runs without a token.
LOOPBACK = ("127.0.0.1", "::1", "localhost")

_STATIC = {"app.js": "text/javascript", "app.css": "text/css"}
_FILES = ("provenance.jsonl", "prov.json")
_MAX_BODY = 16 * 1024


def needs_token(host: str, /) -> bool:
    """Whether binding to ``host`` requires a token (any address but loopback)."""
    return host not in LOOPBACK


def _asset(name: str) -> bytes:
    return resources.files("atomlens.live").joinpath("static", name).read_bytes()


def make_app(session: Any, /, *, token: str | None = None) -> Any:
    """The Starlette app over ``session``.

    Parameters
    ----------
    session : LiveSession
    token : str, optional
        Required on every route when given.

    Returns
    -------
    starlette.applications.Starlette
    """
    # Starlette is the live extra's; imported when a server is made
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    def same_origin(conn: Any) -> bool:
        """No other web site's page may drive the server through the operator's browser:
        a request that names an ``Origin`` must come from the page itself, and without a
        token the ``Host`` must be a loopback name (no DNS rebinding)."""
        host = conn.headers.get("host", "")
        origin = conn.headers.get("origin")
        if origin is not None and origin.split("://", 1)[-1] != host:
            return False
        if token is None:
            name = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:].split("]")[0]
            return name in LOOPBACK
        return True

    def authorised(conn: Any) -> bool:
        if not same_origin(conn):
            return False
        if token is None:
            return True
        given = conn.query_params.get("token") or conn.headers.get("x-atomlens-token") or ""
        return secrets.compare_digest(given.encode(), token.encode())

    def refuse() -> JSONResponse:
        return JSONResponse(
            {
                "error": "a token is required, from this page's own address: open the URL "
                "`atomlens live` printed (…?token=…)"
            },
            status_code=401,
        )

    async def page(request: Request) -> Response:
        if not authorised(request):
            return refuse()
        return Response(
            _asset("index.html"),
            media_type="text/html; charset=utf-8",
            headers={"Cache-Control": "no-store"},
        )

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in _STATIC:
            return JSONResponse({"error": f"no static file {name!r}"}, status_code=404)
        return Response(_asset(name), media_type=_STATIC[name])

    async def state(request: Request) -> Response:
        if not authorised(request):
            return refuse()
        return JSONResponse({"messages": session.hub.snapshot()})

    async def files(request: Request) -> Response:
        if not authorised(request):
            return refuse()
        name = request.path_params["name"]
        if name not in _FILES:
            return JSONResponse(
                {"error": f"only {', '.join(_FILES)} are served, not {name!r}"}, status_code=404
            )
        if name == "prov.json":
            doc = to_prov_json(read_log(session.out).entries, run=session.out.name)
            return JSONResponse(doc)
        return Response((session.out / name).read_bytes(), media_type="application/x-ndjson")

    async def control(request: Request) -> Response:
        if not authorised(request):
            return refuse()
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            # a form or text/plain post is what another site's page could send unasked
            return JSONResponse(
                {"error": "send the control as JSON (Content-Type: application/json)"},
                status_code=415,
            )
        body = await request.body()
        if len(body) > _MAX_BODY:
            return JSONResponse({"error": "the request body is over 16 KiB"}, status_code=413)
        try:
            payload = json.loads(body or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError):
            return JSONResponse({"error": "the request body is not JSON"}, status_code=400)
        try:
            answer = session.control(payload)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(answer)

    async def ws(websocket: WebSocket) -> None:
        if not authorised(websocket):
            await websocket.close(code=1008)  # policy violation
            return
        await websocket.accept()
        key, q = session.hub.subscribe(asyncio.get_running_loop())
        try:
            for msg in session.hub.snapshot():
                await websocket.send_text(json.dumps(msg))
            while True:
                msg = await q.get()
                await websocket.send_text(json.dumps(msg))
        except (WebSocketDisconnect, RuntimeError, ConnectionError):
            pass
        finally:
            session.hub.unsubscribe(key)

    async def not_found(request: Request, exc: Exception) -> Response:
        code = getattr(exc, "status_code", 404)
        return JSONResponse({"error": getattr(exc, "detail", "not found")}, status_code=code)

    async def failed(request: Request, exc: Exception) -> Response:
        logger.error("live: %s %s failed: %s", request.method, request.url.path, exc)
        return JSONResponse({"error": "internal error; see the server's log"}, status_code=500)

    routes = [
        Route("/", page),
        Route("/static/{name}", static),
        Route("/api/state", state),
        Route("/api/control", control, methods=["POST"]),
        Route("/api/files/{name}", files),
        WebSocketRoute("/ws", ws),
    ]
    return Starlette(
        routes=routes,
        exception_handlers={HTTPException: not_found, Exception: failed},
    )


class LiveServer:
    """uvicorn serving :func:`make_app` on a thread (for tests, benchmarks and notebooks).

    Parameters
    ----------
    session : LiveSession
    host : str
    port : int
        0 picks a free port (:attr:`port` says which).
    token : str, optional
        Required off loopback; one is generated when needed and not given.

    Raises
    ------
    ValueError
        ``token`` given as an empty string.
    """

    def __init__(
        self,
        session: Any,
        /,
        *,
        host: str = "127.0.0.1",
        port: int = 8765,
        token: str | None = None,
    ) -> None:
        # uvicorn is the live extra's; imported when a server is made
        import uvicorn

        if token is not None and not token:
            raise ValueError("`token` must not be empty.")
        if token is None and needs_token(host):
            token = secrets.token_urlsafe(24)
        self.token = token
        self.host = host
        self.session = session
        app = make_app(session, token=token)
        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", lifespan="off", ws_max_size=_MAX_BODY
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None
        self.port = port

    @property
    def url(self) -> str:
        """The page's URL (with the token when one is needed)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        tail = f"/?token={self.token}" if self.token else "/"
        return f"http://{host}:{self.port}{tail}"

    def start(self, timeout: float = 10.0) -> LiveServer:
        """Serve on a daemon thread; returns once it listens."""
        self._thread = threading.Thread(
            target=self._server.run, name="atomlens-live-http", daemon=True
        )
        self._thread.start()
        ev = threading.Event()
        for _ in range(int(timeout / 0.05)):
            if self._server.started:
                ev.set()
                break
            ev.wait(0.05)
        if not self._server.started:
            raise RuntimeError(f"the live server did not start on {self.host}:{self.port}")
        servers = getattr(self._server, "servers", [])
        for s in servers:
            for sock in s.sockets:
                self.port = sock.getsockname()[1]
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted."""
        self._server.run()

    def stop(self) -> None:
        """Stop serving."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
