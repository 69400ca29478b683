"""The HTTP routes of the serving endpoint: parse the request, call the service, answer.

The work (and every refusal) is `ServingService`'s. Parsing megabytes of JSON and scoring many
rows run in a thread pool so the event loop keeps accepting, timing and refusing requests; a
small request (at most `INLINE_BYTES` of body, `INLINE_ROWS` rows) is parsed and scored on the
event loop, because handing it to a thread and back costs more than its work (about a tenth
of a millisecond of validation and compiled scoring). Predict answers are encoded with orjson.
"""

from typing import Any

import anyio
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from unified_ai.serving.body import read_body, records_of
from unified_ai.serving.docs import docs_page
from unified_ai.serving.held import settled
from unified_ai.serving.reviews import accept_review, review_body_schema, review_state
from unified_ai.serving.schemas import (
    LabelsResponse,
    error_responses,
    label_schema,
    labels_body,
    predict_body,
    predict_response,
    row_schema,
)
from unified_ai.serving.service import ServingService

#: Largest body parsed on the event loop (larger ones are parsed in a thread).
INLINE_BYTES = 16 * 1024
#: Most rows scored on the event loop (more are scored in a thread).
INLINE_ROWS = 16

#: The `{project}` path parameter, as FastAPI documents a declared `project: str`.
_PROJECT_PARAMETER = {
    "name": "project",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "title": "Project"},
}

#: OpenAPI `responses` (the refusals a route may answer), as `error_responses` gives them.
_Responses = dict[int | str, dict[str, Any]]


def build_router(service: ServingService) -> APIRouter:
    """The routes of `service`: predict, labels, reviews, health, readiness, docs, metrics."""
    errors = error_responses()
    router = APIRouter()
    # Added in this order, which is also the order of the OpenAPI document.
    _add_predict_route(router, service, errors)
    _add_write_routes(router, service, errors)
    _add_health_routes(router, service)
    return router


def _add_predict_route(router: APIRouter, service: ServingService, errors: _Responses) -> None:
    """Add `POST /v1/projects/{project}/predict` to `router`."""
    options = service.options

    @router.post(
        "/v1/projects/{project}/predict",
        response_model=predict_response(
            service.project.task, held=service.reviews is not None and service.reviews.held
        ),
        responses=errors,
        summary="Score rows with the deployed model",
        openapi_extra={
            **predict_body(row_schema(service.project), options.max_rows),
            # Declared here, read from the path below: a declared function parameter would be
            # validated by FastAPI's dependency solver, a few percent of a one-row request.
            "parameters": [_PROJECT_PARAMETER],
        },
    )
    async def predict(request: Request) -> Response:
        """Rows as JSON records (`{"rows": [{...}, ...]}`, or the list alone).

        Every row needs the model's features and the project's segments (null for an unknown
        value). Each answer is the project's task's (binary: `probability` and `decision`;
        multiclass: `prediction`, the most probable class, and `probabilities` of every class;
        regression: `prediction`, the value) and names the deployment that scored it; the rows
        are written to the project's inbox as a production batch under the returned row ids.
        With `policy.review.hold_decision`, a row routed to people is answered
        `{"status": "pending_review", "review_id", "due_at", "reasons"}` instead: its decision
        waits for a person (`GET /v1/projects/{project}/reviews/{review_id}`).
        """
        service.check_project(request.path_params["project"])
        service.guard.check_predict(request.headers)
        served = service.serving()  # read once: this request finishes on this model
        body = await read_body(request, options)
        # Parsing megabytes of JSON takes milliseconds: off the event loop, like scoring.
        if len(body) <= INLINE_BYTES:
            records = records_of(body, "rows", options.max_rows)
        else:
            records = await anyio.to_thread.run_sync(records_of, body, "rows", options.max_rows)
        async with service.scoring_slot():
            if len(records) <= INLINE_ROWS:
                result, routed = service.score_routed(served, records)
            else:
                result, routed = await anyio.to_thread.run_sync(
                    service.score_routed, served, records
                )
            if routed is not None:  # kept for people (a store write): off the event loop
                result = await anyio.to_thread.run_sync(settled, service.reviews, result, routed)
        return Response(orjson.dumps(result), media_type="application/json")


def _add_write_routes(router: APIRouter, service: ServingService, errors: _Responses) -> None:
    """Add the routes that write what people deliver: labels and review answers."""
    options = service.options

    @router.post(
        "/v1/projects/{project}/labels",
        response_model=LabelsResponse,
        responses=errors,
        summary="Deliver ground truth for served rows",
        openapi_extra=labels_body(options.max_rows, label_schema(service.project)),
    )
    async def labels(project: str, request: Request) -> Response:
        """Labels for row ids a prediction returned (`{"labels": [{"row_id", "label"}]}`).

        They are written as label files named after each row's batch (merged with labels
        delivered earlier), which the labels sensor turns into ground truth and live metrics.
        Needs `Authorization: Bearer <token>`; only rows this service served, or rows of a
        batch in the inbox or taken in from it, may be labelled. A label is the project's
        task's: binary one of the training classes, multiclass one of the served model's
        classes, regression a finite number.
        """
        service.check_project(project)
        service.guard.check_write(request.headers, "labels")
        body = await read_body(request, options)
        records = await anyio.to_thread.run_sync(records_of, body, "labels", options.max_rows)
        async with service.scoring_slot():
            result = await anyio.to_thread.run_sync(service.accept_labels, records)
        return JSONResponse(result)

    @router.post(
        "/v1/projects/{project}/reviews",
        responses=errors,
        summary="Answer a prediction routed to people (policy.review)",
        openapi_extra=review_body_schema(),
    )
    async def reviews(project: str, request: Request) -> Response:
        """One reviewer's answer to a routed item (`{review_id, answer, by, comment}`).

        Recorded as the command line and the `<project>__review` job record it: `by` must be
        one of `policy.review.reviewers`, the answer one the task can take (binary 0/1,
        multiclass one of the model's classes, regression a number). Answered reviews become
        the batch's ground truth. Needs `Authorization: Bearer <token>`, as labels do.
        """
        service.check_project(project)
        service.guard.check_write(request.headers, "reviews")
        body = await read_body(request, options)
        result = await anyio.to_thread.run_sync(accept_review, service.store, service.project, body)
        return JSONResponse(result)

    @router.get(
        "/v1/projects/{project}/reviews/{review_id}",
        responses=errors,
        summary="The state of a prediction routed to people (pending, answered, timed out)",
    )
    async def review(project: str, review_id: str, request: Request) -> Response:
        """A routed item's state: pending, answered, or timed out.

        `pending_review`; `answered` (the person's answer is the decision); `timed_out` (past
        its due time: `on_timeout` gives the model's decision, or declines). Needs
        `Authorization: Bearer <token>`, as answering does.
        """
        service.check_project(project)
        service.guard.check_write(request.headers, "reviews")
        result = await anyio.to_thread.run_sync(
            review_state, service.store, service.project, review_id
        )
        return JSONResponse(result)


def _add_health_routes(router: APIRouter, service: ServingService) -> None:
    """Add liveness, readiness, the docs page and the Prometheus metrics to `router`."""

    @router.get("/healthz", summary="Liveness: the process and its background threads run")
    async def healthz() -> Response:
        body, status = service.health()
        return JSONResponse(body, status)

    @router.get("/readyz", summary="Readiness: a deployed model is loaded and verified")
    async def readyz() -> Response:
        body, status = service.readiness()
        return JSONResponse(body, status_code=status)

    @router.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> Response:
        return HTMLResponse(docs_page(request.app.openapi()))

    @router.get("/metrics", summary="Prometheus metrics")
    async def prometheus() -> Response:
        content, media_type = service.metrics.exposition()
        return Response(content, media_type=media_type)
