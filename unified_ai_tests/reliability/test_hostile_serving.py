"""A hostile client against the serving endpoint: writes need a key, labels only for rows that
exist, bounded traffic and inbox, exact accounting of dropped rows, slow clients cut.

Rows 1, 2, 9 and 11 of the hostile-client table. The labels, text and timeout checks run
against a real `unified-ai serve` process started with its default settings (only the token is
given, in its environment variable); the quota, rate and accounting checks need small limits
and run the app on a real uvicorn server in this process.
"""

import concurrent.futures
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from unified_ai.io.store import LineageStore
from unified_ai.projects.loader import load_project_file
from unified_ai.runtime import SERVE_TOKEN_ENV
from unified_ai.serving.app import ServeOptions, create_app, uvicorn_config
from unified_ai.serving.auth import TokenGuard
from unified_ai_tests.conftest import write_project
from unified_ai_tests.serving.helpers import (
    AUTH,
    TOKEN,
    call,
    deploy,
    free_port,
    rows,
    running,
    served_version,
    wait_for,
)

PREDICT = "/v1/projects/small/predict"
LABELS = "/v1/projects/small/labels"


class Served:
    """A `unified-ai serve` process: its URL, inbox and log."""

    def __init__(self, url: str, inbox: Path, log: Path):
        self.url = url
        self.inbox = inbox
        self.log = log

    def predict(self, payload, **kwargs):
        return call(f"{self.url}{PREDICT}", "POST", payload, **kwargs)

    def labels(self, payload, **kwargs):
        return call(f"{self.url}{LABELS}", "POST", payload, **kwargs)

    def label_files(self) -> list[str]:
        folder = self.inbox / "labels"
        return sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.exists() else []


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`unified-ai serve small` with its defaults and a token, a fitted model deployed."""
    root = tmp_path_factory.mktemp("hostile-serving")
    home, projects = root / "home", root / "projects"
    project = load_project_file(write_project(projects))
    deployment, _ = deploy(LineageStore(home / "store"), project)
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("UNIFIED_AI_RUNTIME", "MLFLOW_TRACKING_URI", "UNIFIED_AI_SIGNING_KEY")
    }
    env.update(
        {"UNIFIED_AI_HOME": str(home), "UNIFIED_AI_PROJECTS": str(projects), SERVE_TOKEN_ENV: TOKEN}
    )
    log = root / "serve.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "unified_ai.cli", "serve", "small", "--port", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=root,
        )
    url = f"http://127.0.0.1:{port}"
    try:

        def ready():
            assert process.poll() is None, log.read_text()
            try:
                return served_version(url) == deployment
            except OSError:
                return False

        wait_for(ready, timeout=90, interval=0.2)
        yield Served(url, home / "inbox" / "small", log)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def served_ids(service: Served, count: int = 3) -> list[str]:
    status, body, _ = service.predict({"rows": rows(count)})
    assert status == 200, body
    return [p["row_id"] for p in body["predictions"]]


# -- row 1: labels need a key, JSON, and rows that exist -------------------------------------


def test_labels_need_the_token_and_a_json_body(served):
    [row_id] = served_ids(served, 1)
    payload = {"labels": [{"row_id": row_id, "label": 1}]}
    before = served.label_files()

    status, body, headers = served.labels(payload)
    assert status == 401, body
    assert headers["www-authenticate"].startswith("Bearer")
    assert body["detail"] == "labels need a token: send `Authorization: Bearer <token>`"
    status, body, headers = served.labels(payload, headers={"Authorization": "Bearer " + "x" * 27})
    assert status == 401 and headers["www-authenticate"].startswith("Bearer")
    assert "not the one this service was given" in body["detail"]
    assert served.labels(payload, headers={"Authorization": f"Basic {TOKEN}"})[0] == 401

    # What a web page can make a browser send without asking first: a form, or plain text.
    text = b'{"labels": [{"row_id": "%s", "label": 1}]}' % row_id.encode()
    for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        status, body, _ = served.labels(None, raw=text, headers={**AUTH, "Content-Type": kind})
        assert status == 415, (kind, body)
        assert body["detail"].startswith("the body must be JSON (Content-Type: application/json)")
    assert served.predict(None, raw=b"{}", headers={"Content-Type": "text/plain"})[0] == 415
    assert served.label_files() == before  # nothing refused was written

    status, body, _ = served.labels(payload, headers=AUTH)
    assert status == 200 and body["accepted"] == 1, body
    # Predictions need no token by default.
    assert served.predict({"rows": rows(1)})[0] == 200


def test_labels_only_for_rows_served_or_in_a_batch(served):
    ids = served_ids(served, 3)
    batch = ids[0].rsplit(":", 1)[0]
    before = served.label_files()

    def refused(row_ids, status=422):
        answer, body, _ = served.labels(
            {"labels": [{"row_id": r, "label": 1} for r in row_ids]}, headers=AUTH
        )
        assert answer == status, (row_ids, body)
        return body

    body = refused(["evil-batch.csv:1"])
    assert body["detail"] == (
        "row 0: field 'row_id': 'evil-batch.csv:1' is not a row this service served or a batch "
        "in the inbox holds"
    )
    # A batch this service will write later, and a row past the end of one it served.
    token = batch.split("-")[2]
    future = f"serve-29991231235959-{token}-999999.csv:0"
    following = f"{batch}:{int(ids[-1].rsplit(':', 1)[1]) + 1}"  # not served yet
    body = refused([ids[0], future, following, f"{batch}:999999999"])
    assert [p["row"] for p in body["problems"]] == [1, 2, 3]
    assert body["problem_count"] == 3 and body["detail"].endswith("(and 2 more unknown row id(s))")
    # One request naming 1,000 batches: refused whole, before any file is touched.
    body = refused([f"evil-{i}.csv:0" for i in range(1000)], status=413)
    assert body["detail"] == (
        "labels for 1000 batches in one request, more than the limit of 10; split the request"
    )
    assert served.label_files() == before

    # A batch waiting in the inbox (delivered by another system) can be labelled, row by row.
    delivered = pd.DataFrame({"_row_id": [f"partner.csv:{i}" for i in range(2)], **rows_frame(2)})
    served.inbox.mkdir(parents=True, exist_ok=True)
    delivered.to_csv(served.inbox / "partner.csv", index=False)
    assert refused(["partner.csv:0", "partner.csv:2"])["problems"][0]["row"] == 1
    status, body, _ = served.labels(
        {"labels": [{"row_id": "partner.csv:1", "label": 0}, {"row_id": ids[2], "label": 1}]},
        headers=AUTH,
    )
    assert status == 200 and body["files"]["partner.csv"] == 1 and batch in body["files"], body
    text = call(f"{served.url}/metrics")[1]
    assert 'endpoint="labels",project="small",reason="unknown_rows"} 3.0' in text


def rows_frame(count: int) -> dict:
    return pd.DataFrame(rows(count)).to_dict(orient="list")


# -- row 2: bounded traffic and inbox --------------------------------------------------------


def test_long_or_control_text_in_a_categorical_without_categories_is_refused(served):
    """4 clients sending 200-row requests with 3 KB strings: all refused, nothing buffered."""
    before = call(f"{served.url}/readyz")[1]["traffic"]["buffered_rows"]
    long_rows = [{**row, "region": "x" * 3000} for row in rows(200)]

    def send(_):
        return served.predict({"rows": long_rows})

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(send, range(8)))
    assert {status for status, _, _ in answers} == {422}
    body = answers[0][1]
    assert body["detail"].startswith(
        "row 0: field 'region': is 3000 characters, more than the limit of 256"
    )
    assert body["problem_count"] == 200

    for value, shown in (("nor\x00th", "'\\x00'"), ("a\nb", "'\\n'"), ("\x1b[2J", "'\\x1b'")):
        status, body, _ = served.predict({"rows": [{**rows(1)[0], "region": value}]})
        assert status == 422, (value, body)
        assert body["detail"].startswith(
            f"row 0: field 'region': holds the control character {shown}"
        )
    after = call(f"{served.url}/readyz")[1]["traffic"]["buffered_rows"]
    assert after == before  # nothing refused reaches the inbox


def test_a_full_inbox_keeps_answering_but_writes_nothing_more(tmp_path, projects_dir):
    project = load_project_file(write_project(projects_dir))
    store, inbox = LineageStore(tmp_path / "store"), tmp_path / "inbox" / "small"
    deploy(store, project)
    inbox.mkdir(parents=True)
    (inbox / "processed").mkdir()
    (inbox / "processed" / "old.csv").write_bytes(b"x" * 5000)  # archived batches count too
    options = ServeOptions(
        poll_seconds=0.1, flush_rows=50, flush_seconds=0.1, max_inbox_bytes=20_000
    )
    app = create_app(project, store, str(inbox), options, TokenGuard(TOKEN))
    sent = 0
    with running(app) as url:
        wait_for(lambda: served_version(url))
        ids = []
        for _ in range(12):  # ~6 KB per 50-row batch: the quota is reached after a few
            status, body, _ = call(f"{url}{PREDICT}", "POST", {"rows": rows(50)})
            assert status == 200, body  # predictions are still answered
            ids += [p["row_id"] for p in body["predictions"]]
            sent += 50
            time.sleep(0.15)

        def full():
            status, body, _ = call(f"{url}/readyz")
            return status == 200 and body["traffic"]["inbox_full"] and body["traffic"]

        traffic, _ = wait_for(full)
        assert "the inbox reached its quota of 20000 bytes" in traffic["warning"]
        status, body, _ = call(
            f"{url}{LABELS}", "POST", {"labels": [{"row_id": ids[0], "label": 1}]}, headers=AUTH
        )
        assert status == 507, body
        assert body["detail"].startswith("small: the inbox reached its quota of 20000 bytes")
        metrics = call(f"{url}/metrics")[1]
    used = sum(p.stat().st_size for p in inbox.rglob("*") if p.is_file())
    assert used <= 20_000
    written = sum(len(pd.read_csv(p)) for p in inbox.glob("serve-*.csv"))
    dropped = app.state.writer.status()["rows_dropped"]
    assert dropped > 0 and written + dropped == sent
    assert (
        f'unified_ai_serving_traffic_rows_dropped_total{{project="small"}} {dropped}.0' in metrics
    )
    assert 'unified_ai_serving_inbox_bytes{project="small"}' in metrics


def test_labels_per_minute_are_capped_with_retry_after(tmp_path, projects_dir):
    project = load_project_file(write_project(projects_dir))
    store, inbox = LineageStore(tmp_path / "store"), tmp_path / "inbox" / "small"
    deploy(store, project)
    options = ServeOptions(
        poll_seconds=0.1, max_label_files=2, label_rows_per_minute=10, label_files_per_minute=5
    )
    app = create_app(project, store, str(inbox), options, TokenGuard(TOKEN))
    with running(app) as url:
        wait_for(lambda: served_version(url))
        ids = [p["row_id"] for p in call(f"{url}{PREDICT}", "POST", rows(4))[1]["predictions"]]
        labels = [{"row_id": i, "label": 1} for i in ids]
        answers = [
            call(f"{url}{LABELS}", "POST", {"labels": labels}, headers=AUTH) for _ in range(3)
        ]
    assert [status for status, _, _ in answers] == [200, 200, 429]
    _, body, headers = answers[2]
    assert body["detail"] == "labels: 12 label rows (limit 10) within a minute; retry later"
    assert 1 <= int(headers["retry-after"]) <= 60


# -- row 9: exact accounting of dropped rows -------------------------------------------------


def test_under_load_dropped_rows_are_exactly_the_rows_lost(tmp_path, projects_dir, caplog):
    """A writer that cannot keep up drops whole batches; each is counted once and never written."""
    project = load_project_file(write_project(projects_dir))
    store, inbox = LineageStore(tmp_path / "store"), tmp_path / "inbox" / "small"
    deploy(store, project)
    options = ServeOptions(
        poll_seconds=0.1, flush_rows=20, flush_seconds=0.05, max_pending_rows=20, max_concurrent=8
    )
    app = create_app(project, store, str(inbox), options, TokenGuard(TOKEN))
    caplog.set_level(logging.ERROR, logger="unified_ai.serving")
    sent = rows(20)
    with running(app) as url:
        wait_for(lambda: served_version(url))

        def client(_):
            ids = []
            for _ in range(25):
                status, body, _ = call(f"{url}{PREDICT}", "POST", {"rows": sent})
                if status == 200:
                    ids += [p["row_id"] for p in body["predictions"]]
            return ids

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answered = [i for ids in pool.map(client, range(8)) for i in ids]
    metrics = app.state.metrics
    dropped = metrics.registry.get_sample_value(
        "unified_ai_serving_traffic_rows_dropped_total", {"project": "small"}
    )
    files = {p.name: pd.read_csv(p)["_row_id"].tolist() for p in inbox.glob("serve-*.csv")}
    written = [i for ids in files.values() for i in ids]
    assert len(written) == len(set(written))
    lost = set(answered) - set(written)
    assert set(written) <= set(answered)
    assert dropped == len(lost), (dropped, len(lost))
    logged = [r.getMessage() for r in caplog.records if "dropped batch" in r.getMessage()]
    assert sum(int(m.split("(")[1].split(" ")[0]) for m in logged) == len(lost)
    named = {m.split("dropped batch ")[1].split(" ")[0] for m in logged}
    assert not named & set(files)  # a batch logged as dropped is never written
    assert not [m for m in logged if "None" in m]
    print(f"served {len(answered)} rows, wrote {len(written)}, dropped {len(lost)}")


# -- row 11: slow clients are cut; docs need no internet -------------------------------------


def _open(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    return sock


def _closed_within(sock: socket.socket, seconds: float) -> bytes | None:
    """What the server sent before closing the connection, or None if it stayed open."""
    sock.settimeout(seconds)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return received


def test_half_sent_requests_are_cut_and_a_short_body_is_answered(served):
    held = []
    for index in range(200):
        sock = _open(served.url)
        if index % 2:
            # Half a request: the request line and part of the headers, then nothing.
            sock.sendall(b"POST " + PREDICT.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-")
        held.append(sock)
    # Those connections do not stop anyone else.
    assert served.predict({"rows": rows(1)})[0] == 200

    # A body shorter than declared: answered 400 once the body deadline passes.
    short = _open(served.url)
    short.sendall(
        b"POST " + PREDICT.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n" + b'{"rows": [' + b" " * 40
    )
    answer = _closed_within(short, 30)
    assert answer is not None, "a short body was never answered"
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b"the request body did not arrive within 10.0 s" in answer

    cut = [_closed_within(sock, 30) for sock in held]
    assert all(data is not None for data in cut), "half-sent requests were held open"
    for sock in [*held, short]:
        sock.close()
    assert served.predict({"rows": rows(1)})[0] == 200


def test_connections_beyond_the_cap_get_503_with_retry_after(tmp_path, projects_dir):
    project = load_project_file(write_project(projects_dir))
    store, inbox = LineageStore(tmp_path / "store"), tmp_path / "inbox" / "small"
    deploy(store, project)
    options = ServeOptions(poll_seconds=0.1, max_connections=10, header_seconds=30)
    app = create_app(project, store, str(inbox), options, TokenGuard(TOKEN))

    def config(port):
        return uvicorn_config(app, options, host="127.0.0.1", port=port, log_level="warning")

    with running(app, config) as url:
        wait_for(lambda: served_version(url))
        idle = [_open(url) for _ in range(10)]
        time.sleep(0.2)
        status, body, headers = call(f"{url}{PREDICT}", "POST", {"rows": rows(1)})
        assert status == 503 and headers["retry-after"] == "1", body
        assert body["detail"] == "too many open connections; retry"
        for sock in idle:
            sock.close()
        wait_for(lambda: call(f"{url}{PREDICT}", "POST", {"rows": rows(1)})[0] == 200)


def test_docs_need_no_internet(served):
    status, page, headers = call(f"{served.url}/docs")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert "/v1/projects/{project}/labels" in page and "/openapi.json" in page
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert call(f"{served.url}/redoc")[0] == 404  # ReDoc's page loads from a CDN too
