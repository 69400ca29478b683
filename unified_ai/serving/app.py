"""The HTTP service of one project: predictions, labels, health, readiness and metrics.

FastAPI on uvicorn: FastAPI writes the OpenAPI document and the interactive docs (`/docs`)
from the same declarations that route requests, it and uvicorn are already installed with
MLflow and the Dagster webserver (no new server stack), and it runs the CPU-bound scoring in a
thread pool while the event loop keeps accepting, timing and refusing requests.

Scoring uses the deployment the follower holds when the request starts; a swap never changes
the model under a request in flight. A request is answered as a whole: if any row is invalid,
none is scored (422 naming the row, field and reason); too many rows or bytes get 413; when
`max_concurrent` requests are being scored and no slot frees within `queue_seconds`, 503.

Who may do what: anyone who reaches the port may predict (unless `--require-token-for-predict`)
and read health, readiness, metrics and docs; only a holder of the bearer token may deliver
labels (`auth.py`). POST bodies must be JSON (415 otherwise). What a request can make the
service write is bounded (`limits.py`, `known_rows.py`, the traffic writer's inbox quota), and
slow clients are cut (`server.py`, and the body deadline in `body.read_body`).

This module wires the app: the service (`service.py`, the work without HTTP), its routes
(`routes.py`, thin handlers), the measuring middleware, the lifespan and the error handlers.
"""

import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from unified_ai.serving.auth import TokenGuard
from unified_ai.serving.body import read_body, records_of
from unified_ai.serving.metrics import ServingMetrics
from unified_ai.serving.options import ServeConfigError, ServeOptions
from unified_ai.serving.refusal import Refusal
from unified_ai.serving.routes import build_router
from unified_ai.serving.schemas import ErrorResponse, Problem
from unified_ai.serving.service import ServingService

if TYPE_CHECKING:
    from unified_ai.io.store import LineageStore
    from unified_ai.projects.schema import ProjectConfig

__all__ = [
    "ServeConfigError",
    "ServeOptions",
    "ServingService",
    "create_app",
    "read_body",
    "records_of",
    "run",
    "uvicorn_config",
]

log = logging.getLogger("unified_ai.serving")

#: Problems listed in a 422 answer (all are counted).
LISTED_PROBLEMS = 100

_ENDPOINTS = (
    (re.compile(r"/v1/projects/[^/]+/predict"), "predict"),
    (re.compile(r"/v1/projects/[^/]+/labels"), "labels"),
    (re.compile(r"/v1/projects/[^/]+/reviews(/[^/]+)?"), "reviews"),
    (re.compile(r"/healthz"), "healthz"),
    (re.compile(r"/readyz"), "readyz"),
    (re.compile(r"/metrics"), "metrics"),
)


#: Paths whose endpoint was worked out, kept for the next request (at most `_KNOWN_PATHS`:
#: a path is the client's to choose).
_known_paths: dict[str, str] = {}
_KNOWN_PATHS = 256


def _endpoint(path: str) -> str:
    name = _known_paths.get(path)
    if name is None:
        name = next((name for pattern, name in _ENDPOINTS if pattern.fullmatch(path)), "other")
        if len(_known_paths) < _KNOWN_PATHS:
            _known_paths[path] = name
    return name


class _Measure:
    """ASGI middleware: counts every answer by endpoint and status, and times it."""

    def __init__(self, app: Any, metrics: ServingMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def sending(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, sending)
        finally:
            self.metrics.in_flight.dec()
            self.metrics.observe(_endpoint(scope["path"]), status, time.perf_counter() - started)


def _add_error_handlers(app: FastAPI, metrics: ServingMetrics) -> None:
    """Refusals answer their status with one line (and the listed problems); bugs answer 500."""

    @app.exception_handler(Refusal)
    async def refused(request: Request, exc: Refusal) -> JSONResponse:
        metrics.error(_endpoint(request.url.path), exc.reason)
        body = ErrorResponse(
            detail=exc.detail,
            problems=[Problem(**p.as_dict()) for p in exc.problems[:LISTED_PROBLEMS]],
            problem_count=len(exc.problems),
        )
        return JSONResponse(body.model_dump(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(Exception)
    async def failed(request: Request, exc: Exception) -> JSONResponse:
        # A bug must not take the service down: answer 500 in one line, log the traceback.
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        metrics.error(_endpoint(request.url.path), "internal")
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        return JSONResponse({"detail": f"internal error: {first}"}, status_code=500)


def create_app(
    project: "ProjectConfig",
    store: "LineageStore",
    inbox_folder: Any,
    options: ServeOptions | None = None,
    guard: TokenGuard | None = None,
) -> FastAPI:
    """The service of `project`: follows its deployment in `store`, writes traffic to the inbox.

    The follower and the traffic writer start with the app (its lifespan) and stop with it;
    what is still buffered is written on shutdown. `guard` holds the bearer token writes need
    (none: labels are disabled).
    """
    service = ServingService(project, store, inbox_folder, options, guard)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with service.running():
            yield

    app = FastAPI(
        title=f"unified-ai serving: {project.name}",
        description=f"Scores rows with the model deployed for project {project.name}, following "
        "its deployments and rollbacks; served rows go to the project's inbox as production "
        "batches.",
        version="1",
        lifespan=lifespan,
        # Swagger UI and ReDoc load their assets from a CDN: `/docs` is served by the router.
        docs_url=None,
        redoc_url=None,
        # The service reports through its own Prometheus metrics (`/metrics`). FastAPI's
        # OpenTelemetry hooks would look for a configured provider on every request (about
        # 20 us of a 600 us one-row request) to find none.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.service = service
    app.state.follower = service.follower
    app.state.writer = service.writer
    app.state.metrics = service.metrics
    app.add_middleware(_Measure, metrics=service.metrics)
    _add_error_handlers(app, service.metrics)
    app.include_router(build_router(service))
    return app


def run(
    project: "ProjectConfig",
    store: "LineageStore",
    inbox_folder: Any,
    options: ServeOptions,
    *,
    host: str,
    port: int,
    log_level: str = "info",
    guard: TokenGuard | None = None,
) -> None:
    """Serve until interrupted; on SIGINT/SIGTERM in-flight requests finish, traffic is written.

    With `options.workers` above 1, that many processes serve the port (`workers.py`).
    """
    import uvicorn

    if options.workers > 1:
        from unified_ai.serving.workers import WorkerSpec, run_workers

        spec = WorkerSpec(project, store, inbox_folder, options, guard, log_level)
        run_workers(spec, host=host, port=port)
        return
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = create_app(project, store, inbox_folder, options, guard)
    uvicorn.Server(uvicorn_config(app, options, host=host, port=port, log_level=log_level)).run()


def uvicorn_config(app: Any, options: ServeOptions, *, host: str, port: int, log_level: str):
    """The uvicorn config `serve` runs `app` with: its timeouts and connection cap."""
    from unified_ai.serving.server import server_config

    return server_config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        header_seconds=options.header_seconds,
        keep_alive_seconds=options.keep_alive_seconds,
        max_connections=options.max_connections,
    )
