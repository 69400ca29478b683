"""`unified-ai serve --workers N`: N server processes on one port, each following the deployment.

uvicorn's process supervisor binds the port once and starts N processes that accept on it; it
restarts a worker that dies and stops them all on SIGINT/SIGTERM (each finishes its requests
and writes its buffered traffic). Each worker builds its own app in its own process
(`WorkerConfig.load_app`): its own deployment follower, which loads the deployed model and
swaps on its own, its own traffic writer (batch file names carry a per-writer token, so they
never collide) and its own metrics. A swap is a reference swap inside each process, so no
request fails across it, whichever worker answers; for a moment after a deployment moves, one
worker may answer from the new version and another still from the old one.

What each worker keeps to itself: `/metrics` counts the requests of the worker that answers
the scrape; labels for rows served by another worker are accepted once that worker has written
their batch file (`--flush-seconds`), since only the serving worker knows its open batch.

uvicorn starts workers with `spawn` and pickles their config: the app and the guarded HTTP
protocol (a class made per setting) are built in the worker, from a picklable `WorkerSpec`.
"""

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import uvicorn

from unified_ai.serving.options import ServeOptions
from unified_ai.serving.server import guarded_protocol, server_settings

if TYPE_CHECKING:
    from unified_ai.io.store import LineageStore
    from unified_ai.projects.schema import ProjectConfig
    from unified_ai.serving.auth import TokenGuard

#: Most bytes of a request line and headers (as `server.server_config` defaults it).
MAX_HEADER_BYTES = 64 * 1024


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker process builds its app from (picklable: sent to each worker)."""

    project: "ProjectConfig"
    store: "LineageStore"
    inbox_folder: Any
    options: ServeOptions
    guard: "TokenGuard | None"
    log_level: str


class WorkerConfig(uvicorn.Config):
    """The uvicorn config of `serve --workers N`: the service's settings, its app built per worker.

    Args:
        spec: What each worker builds its app from.
        host: Address to listen on.
        port: Port to listen on.
    """

    def __init__(self, spec: WorkerSpec, *, host: str, port: int):
        options = spec.options
        super().__init__(
            # Never imported: `load_app` builds the app. uvicorn wants a string for workers.
            "unified_ai.serving.app:create_app",
            host=host,
            port=port,
            log_level=spec.log_level,
            workers=options.workers,
            **server_settings(
                max_header_bytes=MAX_HEADER_BYTES,
                keep_alive_seconds=options.keep_alive_seconds,
                graceful_seconds=30.0,
            ),
        )
        self.spec = spec

    def load(self) -> None:
        """Build the guarded protocol in this process (a class made here cannot be pickled)."""
        options = self.spec.options
        self.http = guarded_protocol(
            header_seconds=options.header_seconds,
            max_header_bytes=MAX_HEADER_BYTES,
            max_connections=options.max_connections,
        )
        super().load()

    def load_app(self) -> Any:
        """This worker's app: its own follower, traffic writer and metrics."""
        from unified_ai.serving.app import create_app

        spec = self.spec
        logging.basicConfig(
            level=spec.log_level.upper(),
            format="%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s",
        )
        return create_app(spec.project, spec.store, spec.inbox_folder, spec.options, spec.guard)


def run_workers(spec: WorkerSpec, *, host: str, port: int) -> None:
    """Serve with `spec.options.workers` processes until SIGINT/SIGTERM."""
    from uvicorn.supervisors import Multiprocess

    config = WorkerConfig(spec, host=host, port=port)
    socket = config.bind_socket()
    try:
        Multiprocess(config, sockets=[socket]).run()
    finally:
        socket.close()
