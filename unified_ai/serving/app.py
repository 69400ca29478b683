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
slow clients are cut (`server.py`, and the body deadline in `read_body`).
"""

import json
import logging
import math
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from unified_ai.ml.rows import RowProblem, as_model_categories, frame_from_records, row_problems
from unified_ai.serving.auth import TokenGuard
from unified_ai.serving.docs import docs_page
from unified_ai.serving.follower import DeploymentFollower, Served
from unified_ai.serving.labels import LabelGate
from unified_ai.serving.limits import require_json, served_text_problems
from unified_ai.serving.metrics import ServingMetrics
from unified_ai.serving.refusal import RETRY, Refusal
from unified_ai.serving.traffic import TrafficWriter, parse_row_id

if TYPE_CHECKING:
    from unified_ai.io.store import LineageStore
    from unified_ai.projects.schema import ProjectConfig

log = logging.getLogger("unified_ai.serving")

#: Problems listed in a 422 answer (all are counted).
LISTED_PROBLEMS = 100
_RETRY = RETRY
#: The refusal raised by the app's own checks (and by auth, limits): one class for all.
_Refusal = Refusal


class ServeConfigError(ValueError):
    """A serving option is out of range; the message names the option."""


@dataclass(frozen=True)
class ServeOptions:
    """Limits and timings of the service (each is a `unified-ai serve` option).

    Attributes:
        poll_seconds: How often the `deployed_model` pointer is read.
        retry_seconds: How long a deployment that failed to load waits before another try.
        flush_rows: Served rows per batch file written to the inbox.
        flush_seconds: Longest time a served row waits before its batch file is written.
        max_rows: Most rows one request may carry (more: 413).
        max_body_bytes: Largest request body (larger: 413).
        max_concurrent: Requests scored at the same time.
        queue_seconds: How long a request waits for a scoring slot before 503.
        max_pending_rows: Served rows kept in memory while the inbox cannot be written.
        max_text_chars: Longest text in a categorical or segment without a declared category
            list (longer: 422).
        max_row_bytes: Most bytes of one served row, its values as text (more: 422).
        max_inbox_bytes: Quota of the project's inbox folder: beyond it served rows are
            answered but not written (counted as dropped) and labels get 507.
        max_label_files: Most label files (batches) one labels request may touch (more: 413).
        label_rows_per_minute: Most label rows accepted within any minute (more: 429).
        label_files_per_minute: Most label files written within any minute (more: 429).
        header_seconds: Longest wait for a request's headers (then the connection is closed).
        body_seconds: Longest wait for a request's body (then 400).
        keep_alive_seconds: How long an idle connection is kept open between requests.
        max_connections: Most open connections; more are answered 503 and closed.
    """

    poll_seconds: float = 0.5
    retry_seconds: float = 5.0
    flush_rows: int = 1000
    flush_seconds: float = 30.0
    max_rows: int = 1000
    max_body_bytes: int = 4 * 1024 * 1024
    max_concurrent: int = 4
    queue_seconds: float = 2.0
    max_pending_rows: int = 100_000
    max_text_chars: int = 256
    max_row_bytes: int = 16 * 1024
    max_inbox_bytes: int = 10 * 1024**3
    max_label_files: int = 10
    label_rows_per_minute: int = 10_000
    label_files_per_minute: int = 100
    header_seconds: float = 5.0
    body_seconds: float = 10.0
    keep_alive_seconds: float = 5.0
    max_connections: int = 1000

    def __post_init__(self) -> None:
        for spec in fields(self):
            value = getattr(self, spec.name)
            option = "--" + spec.name.replace("_", "-")
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ServeConfigError(f"{option}: {value!r} is not a number")
            if (
                not math.isfinite(value)
                or value < 0
                or (value == 0 and spec.name != "queue_seconds")
            ):
                raise ServeConfigError(f"{option}: {value!r} must be a positive number")
        if self.max_pending_rows < self.flush_rows:
            raise ServeConfigError(
                f"--max-pending-rows: {self.max_pending_rows} is less than --flush-rows "
                f"{self.flush_rows}"
            )
        if self.label_files_per_minute < self.max_label_files:
            raise ServeConfigError(
                f"--label-files-per-minute: {self.label_files_per_minute} is less than "
                f"--max-label-files {self.max_label_files}"
            )


class Prediction(BaseModel):
    row_id: str = Field(description="Id of the row in the production batch it is written to.")
    probability: float = Field(description="Probability of the positive class.")
    decision: int = Field(description="1 if probability >= the project's threshold, else 0.")
    model_version: str
    deployment_version: str


class PredictResponse(BaseModel):
    project: str
    deployment_version: str = Field(description="The deployed_model version that scored.")
    model_version: str = Field(description="The candidate_model version that scored.")
    threshold: float
    predictions: list[Prediction]


class LabelsResponse(BaseModel):
    accepted: int
    files: dict[str, int] = Field(description="Label file (batch name) → rows it now holds.")


class Problem(BaseModel):
    row: int | None = Field(description="Position of the row in the request (0-based).")
    field: str
    reason: str


class ErrorResponse(BaseModel):
    detail: str = Field(description="One line: what was refused and why.")
    problems: list[Problem] = Field(default_factory=list)
    problem_count: int = 0


def _invalid(problems: list[RowProblem]) -> _Refusal:
    more = len(problems) - 1
    detail = problems[0].describe() + (f" (and {more} more problem(s))" if more else "")
    return _Refusal(422, "invalid_rows", detail, problems)


_ENDPOINTS = (
    (re.compile(r"/v1/projects/[^/]+/predict"), "predict"),
    (re.compile(r"/v1/projects/[^/]+/labels"), "labels"),
    (re.compile(r"/healthz"), "healthz"),
    (re.compile(r"/readyz"), "readyz"),
    (re.compile(r"/metrics"), "metrics"),
)


def _endpoint(path: str) -> str:
    return next((name for pattern, name in _ENDPOINTS if pattern.fullmatch(path)), "other")


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


def _row_schema(project: "ProjectConfig") -> dict[str, Any]:
    """JSON schema of one row for the docs, from the project file.

    Requests are checked against the deployed model's own features (its card), which match the
    project file unless the features changed since that model was trained.
    """
    properties: dict[str, Any] = {}
    for column in project.features.numeric:
        properties[column] = {"type": ["number", "null"]}
    for column in [*project.features.categorical, *project.segments]:
        properties.setdefault(column, {"type": ["string", "number", "boolean", "null"]})
    for column, rule in project.columns.items():
        schema = properties.setdefault(column, {})
        if rule.min is not None:
            schema["minimum"] = rule.min
        if rule.max is not None:
            schema["maximum"] = rule.max
        if rule.categories is not None:
            schema["enum"] = [*rule.categories, *([None] if rule.allow_null else [])]
    required = list(dict.fromkeys([*project.features.numeric, *project.features.categorical]))
    return {
        "type": "object",
        "properties": properties,
        "required": [*required, *[s for s in project.segments if s not in required]],
        "additionalProperties": False,
    }


async def read_body(request: Request, options: ServeOptions) -> bytes:
    """The body of a JSON request, within the size limit and the body deadline."""
    require_json(request.headers)
    try:
        with anyio.fail_after(options.body_seconds):
            return await _read_body(request, options.max_body_bytes)
    except TimeoutError:
        raise _Refusal(
            400,
            "body_timeout",
            f"the request body did not arrive within {options.body_seconds} s",
            headers={"Connection": "close"},
        ) from None


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise _Refusal(400, "bad_request", f"Content-Length {declared!r} is not a number")
        if int(declared) > limit:
            raise _Refusal(
                413,
                "too_large",
                f"request body is {int(declared)} bytes, more than the limit of {limit}",
            )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _Refusal(
                413, "too_large", f"request body is more than the limit of {limit} bytes"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def records_of(body: bytes, key: str, max_rows: int) -> list[Any]:
    """The list under `key` of a JSON body (or the body itself when it is a list)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise _Refusal(400, "bad_request", f"request body is not valid JSON ({first})") from None
    if isinstance(data, dict):
        extra = sorted(set(data) - {key})
        if extra or key not in data:
            raise _Refusal(
                422,
                "invalid_rows",
                f"the body must be {{{key!r}: [...]}} or a list; "
                + (f"unknown field(s) {extra}" if extra else f"{key!r} is missing"),
            )
        data = data[key]
    if not isinstance(data, list):
        raise _Refusal(422, "invalid_rows", f"{key!r} must be a list of objects")
    if not data:
        raise _Refusal(422, "invalid_rows", f"{key!r} is empty: nothing to do")
    if len(data) > max_rows:
        raise _Refusal(
            413,
            "too_large",
            f"{len(data)} {key} in one request, more than the limit of {max_rows}; "
            "split the request",
        )
    return data


def _text_problems(
    project: "ProjectConfig", served: Served, records: list[Any], options: ServeOptions
) -> list[RowProblem]:
    """Served text the inbox must not hold: too long (no category list), control characters."""
    numeric = set(served.features.numeric)
    text = [*served.features.categorical, *project.segments, *project.columns]
    text = [c for c in text if c not in numeric]
    listed = {c for c, rule in project.columns.items() if rule.categories is not None}
    return served_text_problems(
        records,
        text,
        [c for c in text if c not in listed],
        max_text_chars=options.max_text_chars,
        max_row_bytes=options.max_row_bytes,
    )


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
    options = options or ServeOptions()
    guard = guard or TokenGuard("")
    metrics = ServingMetrics(project.name)
    follower = DeploymentFollower(
        store,
        project,
        poll_seconds=options.poll_seconds,
        retry_seconds=options.retry_seconds,
        on_swap=lambda old, new: metrics.served(new.deployment_version, new.model_version),
        on_failure=lambda reason: metrics.load_failures.inc(),
    )
    writer = TrafficWriter(
        inbox_folder,
        flush_rows=options.flush_rows,
        flush_seconds=options.flush_seconds,
        max_pending_rows=options.max_pending_rows,
        max_inbox_bytes=options.max_inbox_bytes,
        metrics=metrics,
    )
    label_gate = LabelGate(
        project.name,
        writer,
        max_files=options.max_label_files,
        rows_per_minute=options.label_rows_per_minute,
        files_per_minute=options.label_files_per_minute,
    )
    slots: dict[str, Any] = {}
    classes_cache: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        slots["scoring"] = anyio.Semaphore(options.max_concurrent)
        follower.start()
        writer.start()
        try:
            yield
        finally:
            follower.stop()
            await anyio.to_thread.run_sync(writer.stop)

    app = FastAPI(
        title=f"unified-ai serving: {project.name}",
        description=f"Scores rows with the model deployed for project {project.name}, following "
        "its deployments and rollbacks; served rows go to the project's inbox as production "
        "batches.",
        version="1",
        lifespan=lifespan,
        # Swagger UI and ReDoc load their assets from a CDN: `/docs` is served below instead.
        docs_url=None,
        redoc_url=None,
    )
    app.state.follower = follower
    app.state.writer = writer
    app.state.metrics = metrics
    app.add_middleware(_Measure, metrics=metrics)

    @app.exception_handler(_Refusal)
    async def refused(request: Request, exc: _Refusal) -> JSONResponse:
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

    def check_project(name: str) -> None:
        if name != project.name:
            raise _Refusal(
                404, "not_found", f"unknown project {name!r}: this service serves {project.name}"
            )

    def serving() -> Served:
        served = follower.current
        if served is None:
            status = follower.status()
            why = status["last_error"] or (
                f"nothing is deployed for {project.name} yet"
                if status["pointer"] is None
                else f"deployment {status['pointer']} is still loading"
            )
            raise _Refusal(
                503, "not_ready", f"{project.name}: no model is ready ({why})", headers=_RETRY
            )
        return served

    @asynccontextmanager
    async def scoring_slot() -> AsyncIterator[None]:
        semaphore = slots["scoring"]
        try:
            semaphore.acquire_nowait()  # a free slot is taken even when queue_seconds is 0
        except anyio.WouldBlock:
            with anyio.move_on_after(options.queue_seconds) as waited:
                await semaphore.acquire()
            busy = waited.cancelled_caught
        else:
            busy = False
        if busy:
            raise _Refusal(
                503,
                "busy",
                f"{project.name}: {options.max_concurrent} requests are being scored and none "
                f"finished within {options.queue_seconds} s; retry",
                headers=_RETRY,
            )
        try:
            yield
        finally:
            semaphore.release()

    def score(served: Served, records: list[Any]) -> dict[str, Any]:
        import numpy as np

        from unified_ai.ml.training import predict_proba

        frame, problems = frame_from_records(records, project, served.features)
        if frame is not None:
            problems = row_problems(project, served.features, frame) + _text_problems(
                project, served, records, options
            )
        if problems or frame is None:
            raise _invalid(sorted(problems, key=lambda p: -1 if p.row is None else p.row))
        inputs = as_model_categories(frame, served.features.categorical, served.categories)
        inputs = inputs.astype({column: "float64" for column in served.features.numeric})
        where = f"{project.name}/candidate_model@{served.model_version}"
        try:
            proba = np.asarray(
                predict_proba(served.model, inputs, served.features), dtype="float64"
            )
        except Exception as exc:
            log.error("%s: scoring %d rows failed", where, len(inputs), exc_info=exc)
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise _Refusal(500, "internal", f"{where}: scoring failed ({first})") from None
        if proba.shape != (len(inputs),) or not np.isfinite(proba).all():
            raise _Refusal(500, "internal", f"{where}: the model returned no valid probabilities")
        threshold = project.evaluation.threshold
        decision = (proba >= threshold).astype(int).tolist()
        probability = proba.tolist()
        ids = writer.record(inputs, served, probability, decision)
        metrics.rows.labels(project=project.name, deployment_version=served.deployment_version).inc(
            len(ids)
        )
        return {
            "project": project.name,
            "deployment_version": served.deployment_version,
            "model_version": served.model_version,
            "threshold": threshold,
            "predictions": [
                {
                    "row_id": row_id,
                    "probability": p,
                    "decision": d,
                    "model_version": served.model_version,
                    "deployment_version": served.deployment_version,
                }
                for row_id, p, d in zip(ids, probability, decision, strict=True)
            ],
        }

    def label_classes() -> list[Any]:
        """The training classes, as the ground_truth asset checks them (current train split)."""
        from unified_ai.ml.data import target_classes
        from unified_ai.names import TRAIN_SPLIT

        path = [project.name, TRAIN_SPLIT]
        try:
            version = store.current_version(path)
            if version is None:
                raise _Refusal(
                    503,
                    "not_ready",
                    f"{project.name}/{TRAIN_SPLIT} has no version yet",
                    headers=_RETRY,
                )
            if classes_cache.get("version") != version:
                classes = target_classes(project, store.read_value(path, version))
                classes_cache.update(version=version, classes=classes)
        except _Refusal:
            raise
        except Exception as exc:
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise _Refusal(503, "not_ready", f"labels cannot be checked: {first}") from None
        return classes_cache["classes"]

    def accept_labels(records: list[Any]) -> dict[str, Any]:
        import pandas as pd

        from unified_ai.ml.validation import check_labels

        classes = label_classes()
        problems: list[RowProblem] = []
        pairs = []
        for index, item in enumerate(records):
            if not isinstance(item, dict):
                problems.append(RowProblem(index, "", "is not an object {row_id, label}"))
                continue
            problems += [
                RowProblem(index, str(name), "is not a field of a label (row_id, label)")
                for name in item
                if name not in ("row_id", "label")
            ]
            row_id, label = item.get("row_id"), item.get("label")
            if parse_row_id(row_id) is None:
                problems.append(
                    RowProblem(
                        index,
                        "row_id",
                        f"{row_id!r} is not a row id the endpoint returned "
                        "(<batch file name>:<row number>)",
                    )
                )
            if "label" not in item:
                problems.append(RowProblem(index, "label", "is missing"))
            elif isinstance(label, dict | list) or check_labels(pd.Series([label]), classes)[1]:
                problems.append(
                    RowProblem(
                        index,
                        "label",
                        f"is {label!r}, not one of the training classes {classes}",
                    )
                )
            pairs.append((row_id, label))
        if problems:
            raise _invalid(problems)
        label_gate.check(pairs)
        files = writer.write_labels(pairs, project.target)
        return {"accepted": len(pairs), "files": files}

    error_responses: dict[int | str, dict[str, Any]] = {
        code: {"model": ErrorResponse, "description": text}
        for code, text in (
            (400, "The body is not valid JSON."),
            (404, "Another project."),
            (401, "No bearer token, or not the service's (labels; predict if required)."),
            (403, "Labels are disabled: the service was started without a token."),
            (413, "Too many rows, label files or too large a body."),
            (415, "The body is not declared JSON (Content-Type: application/json)."),
            (422, "A row is invalid, or a label names no served row: the detail says which."),
            (429, "Too many labels within a minute (see Retry-After)."),
            (503, "No model loaded yet, or every scoring slot is busy (retry)."),
            (507, "The project's inbox reached its byte quota: labels are refused."),
        )
    }
    row = _row_schema(project)

    @app.post(
        "/v1/projects/{project}/predict",
        response_model=PredictResponse,
        responses=error_responses,
        summary="Score rows with the deployed model",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["rows"],
                            "properties": {
                                "rows": {
                                    "type": "array",
                                    "items": row,
                                    "maxItems": options.max_rows,
                                }
                            },
                        }
                    }
                },
            }
        },
    )
    async def predict(project: str, request: Request) -> Response:
        """Rows as JSON records (`{"rows": [{...}, ...]}`, or the list alone).

        Every row needs the model's features and the project's segments (null for an unknown
        value). Each answer names the deployment that scored it; the rows are written to the
        project's inbox as a production batch under the returned row ids.
        """
        check_project(project)
        guard.check_predict(request.headers)
        served = serving()  # read once: this request finishes on this model
        body = await read_body(request, options)
        # Parsing megabytes of JSON takes milliseconds: off the event loop, like scoring.
        records = await anyio.to_thread.run_sync(records_of, body, "rows", options.max_rows)
        async with scoring_slot():
            result = await anyio.to_thread.run_sync(score, served, records)
        return JSONResponse(result)

    @app.post(
        "/v1/projects/{project}/labels",
        response_model=LabelsResponse,
        responses=error_responses,
        summary="Deliver ground truth for served rows",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["labels"],
                            "properties": {
                                "labels": {
                                    "type": "array",
                                    "maxItems": options.max_rows,
                                    "items": {
                                        "type": "object",
                                        "required": ["row_id", "label"],
                                        "properties": {
                                            "row_id": {"type": "string"},
                                            "label": {"type": ["integer", "string", "boolean"]},
                                        },
                                        "additionalProperties": False,
                                    },
                                }
                            },
                        }
                    }
                },
            }
        },
    )
    async def labels(project: str, request: Request) -> Response:
        """Labels for row ids a prediction returned (`{"labels": [{"row_id", "label"}]}`).

        They are written as label files named after each row's batch (merged with labels
        delivered earlier), which the labels sensor turns into ground truth and live metrics.
        Needs `Authorization: Bearer <token>`; only rows this service served, or rows of a
        batch in the inbox or taken in from it, may be labelled.
        """
        check_project(project)
        guard.check_write(request.headers, "labels")
        body = await read_body(request, options)
        records = await anyio.to_thread.run_sync(records_of, body, "labels", options.max_rows)
        async with scoring_slot():
            result = await anyio.to_thread.run_sync(accept_labels, records)
        return JSONResponse(result)

    @app.get("/healthz", summary="Liveness: the process and its background threads run")
    async def healthz() -> Response:
        alive = {"following": follower.alive, "writing": writer.alive}
        ok = all(alive.values())
        return JSONResponse({"status": "ok" if ok else "degraded", **alive}, 200 if ok else 503)

    @app.get("/readyz", summary="Readiness: a deployed model is loaded and verified")
    async def readyz() -> Response:
        status = follower.status()
        traffic = writer.status()
        body = {**status, "traffic": traffic}
        if traffic["inbox_full"]:
            # Still ready: predictions are answered. What is not kept is said here.
            traffic["warning"] = (
                f"the inbox reached its quota of {options.max_inbox_bytes} bytes: served rows "
                "are answered but not written (counted in rows_dropped); labels are refused"
            )
        if not status["ready"]:
            body["detail"] = status["last_error"] or (
                f"nothing is deployed for {project.name} yet"
                if status["pointer"] is None
                else f"loading deployment {status['pointer']}"
            )
        return JSONResponse(body, status_code=200 if status["ready"] else 503)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        return HTMLResponse(docs_page(app.openapi()))

    @app.get("/metrics", summary="Prometheus metrics")
    async def prometheus() -> Response:
        content, media_type = metrics.exposition()
        return Response(content, media_type=media_type)

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
    """Serve until interrupted; on SIGINT/SIGTERM in-flight requests finish, traffic is written."""
    import uvicorn

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
