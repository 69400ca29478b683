"""A real uvicorn server on a free port, plain HTTP calls, and deployments written to a store."""

import http.client
import json
import socket
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from urllib.parse import urlparse

import uvicorn

from unified_ai.io.formats import serialize
from unified_ai.io.store import LineageStore
from unified_ai.ml.artifacts import TrainedModel
from unified_ai.ml.training import fit
from unified_ai_tests.conftest import make_frame

#: The bearer token test services are started with, and the header that carries it.
TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running(app, config=None):
    """Serve `app` with uvicorn in a thread; yields the base URL; stops it gracefully.

    Args:
        app: The ASGI app.
        config: port -> `uvicorn.Config` (e.g. the one `serve` runs with); default: uvicorn's.
    """
    port = free_port()
    server = uvicorn.Server(
        config(port)
        if config is not None
        else uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "the server stopped while starting"
        assert time.monotonic() < deadline, "the server did not start within 30 s"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        assert not thread.is_alive(), "the server did not stop within 30 s"


def call(url: str, method: str = "GET", body=None, *, raw: bytes | None = None, headers=None):
    """(status, parsed JSON or text, headers) of one request on a fresh connection."""
    parts = urlparse(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    sent = {"Content-Type": "application/json", **(headers or {})}
    try:
        connection.request(method, parts.path, body=data, headers=sent)
        response = connection.getresponse()
        text = response.read().decode()
        kind = response.getheader("Content-Type", "")
        parsed = json.loads(text) if kind.startswith("application/json") else text
        return response.status, parsed, {k.lower(): v for k, v in response.getheaders()}
    finally:
        connection.close()


def wait_for(predicate, timeout: float = 15.0, interval: float = 0.05):
    """Poll `predicate` until it returns something truthy; returns it and the seconds waited."""
    started = time.monotonic()
    while True:
        value = predicate()
        if value:
            return value, time.monotonic() - started
        assert time.monotonic() - started < timeout, f"not true within {timeout} s"
        time.sleep(interval)


def served_version(url: str) -> str | None:
    _, body, _ = call(f"{url}/readyz")
    return body.get("deployment_version") if isinstance(body, dict) else None


def deploy(
    store: LineageStore,
    project,
    seed: int = 0,
    *,
    action: str = "materialize",
    before_pointer: Callable[[str], None] | None = None,
) -> tuple[str, str]:
    """Fit the project's pipeline on synthetic rows, store it and point deployed_model at it.

    ``before_pointer`` gets the model version after everything is stored but before the
    pointer moves, so a test can damage the files without racing a follower that polls.
    Returns (deployment version, model version). Also stores a train split (label classes).
    """
    frame = make_frame(seed=seed)
    pipeline, features = fit(project, frame)
    card = {"features": {"numeric": features.numeric, "categorical": features.categorical}}
    model = store.write_version(
        [project.name, "candidate_model"], *serialize(TrainedModel(pipeline, card))
    )
    payload = {"model_version": model.version, "deployed_at": f"seed {seed}"}
    deployment = store.write_version([project.name, "deployed_model"], *serialize(payload))
    split = store.write_version([project.name, "train_split"], *serialize(frame))
    store.set_current([project.name, "train_split"], split.version, action="materialize")
    if before_pointer is not None:
        before_pointer(model.version)
    store.set_current([project.name, "deployed_model"], deployment.version, action=action)
    return deployment.version, model.version


def rows(count: int = 3, seed: int = 5) -> list[dict]:
    frame = make_frame(rows=count, seed=seed).drop(columns=["label"])
    return frame.to_dict(orient="records")


class Sender(threading.Thread):
    """Sends the same rows again and again (a fresh connection each time) until told to stop.

    Records every answer with the wall-clock time; a refused or dropped connection is a failed
    request (status None).
    """

    def __init__(self, url: str, rows: list[dict], project: str = "small"):
        super().__init__(daemon=True)
        self.url = f"{url}/v1/projects/{project}/predict"
        self.rows = rows
        self.answers: list[tuple[float, int | None, object]] = []
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            try:
                status, body, _ = call(self.url, "POST", {"rows": self.rows})
            except Exception as exc:
                self.answers.append((time.time(), None, repr(exc)))
                continue
            self.answers.append((time.time(), status, body))

    def served(self) -> list[tuple[float, str]]:
        return [(t, b["deployment_version"]) for t, status, b in self.answers if status == 200]

    def failed(self) -> list:
        return [(t, s, b) for t, s, b in self.answers if s != 200]
