"""What the endpoint's OpenAPI document declares: answers, errors and request bodies.

The app is built for one project, so its document declares the answer of that project's task
(`predict_response`): binary `probability` and `decision`, multiclass `prediction` and
`probabilities`, regression `prediction`; and the labels its task takes (`labels_body`).
"""

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, create_model

from unified_ai.projects.tasks import MULTICLASS, REGRESSION

if TYPE_CHECKING:
    from unified_ai.projects.schema import ProjectConfig


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


class MulticlassPrediction(BaseModel):
    row_id: str = Field(description="Id of the row in the production batch it is written to.")
    prediction: str = Field(description="The most probable class (as text).")
    probabilities: dict[str, float] = Field(
        description="Every class of the served model (as text) → its probability; they sum to 1."
    )
    model_version: str
    deployment_version: str


class MulticlassPredictResponse(BaseModel):
    project: str
    deployment_version: str = Field(description="The deployed_model version that scored.")
    model_version: str = Field(description="The candidate_model version that scored.")
    predictions: list[MulticlassPrediction]


class RegressionPrediction(BaseModel):
    row_id: str = Field(description="Id of the row in the production batch it is written to.")
    prediction: float = Field(description="The predicted value.")
    model_version: str
    deployment_version: str


class RegressionPredictResponse(BaseModel):
    project: str
    deployment_version: str = Field(description="The deployed_model version that scored.")
    model_version: str = Field(description="The candidate_model version that scored.")
    predictions: list[RegressionPrediction]


class PendingReview(BaseModel):
    """A row routed to people with `policy.review.hold_decision`: its answer waits for them."""

    row_id: str = Field(description="Id of the row in the production batch it is written to.")
    status: Literal["pending_review"]
    review_id: str = Field(description="`GET /v1/projects/{project}/reviews/{review_id}`.")
    due_at: str = Field(description="When `on_timeout` applies if nobody answered (UTC).")
    reasons: list[str] = Field(description="Why it was routed, most serious first.")
    model_version: str
    deployment_version: str


def predict_response(task: str, held: bool = False) -> type[BaseModel]:
    """The answer of the predict endpoint for a project of `task`.

    With `held` (`policy.review.hold_decision`), a row may be answered `PendingReview`.
    """
    answer: type[BaseModel] = PredictResponse
    row: type[BaseModel] = Prediction
    if task == REGRESSION:
        answer, row = RegressionPredictResponse, RegressionPrediction
    elif task == MULTICLASS:
        answer, row = MulticlassPredictResponse, MulticlassPrediction
    if not held:
        return answer
    rows: Any = list[row | PendingReview]  # type: ignore[valid-type]
    return create_model(f"Held{answer.__name__}", __base__=answer, predictions=(rows, ...))


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


def row_schema(project: "ProjectConfig") -> dict[str, Any]:
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


def error_responses() -> dict[int | str, dict[str, Any]]:
    """The refusals every write endpoint may answer, as OpenAPI `responses`."""
    return {
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


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        }
    }


def predict_body(row: dict[str, Any], max_rows: int) -> dict[str, Any]:
    """The `openapi_extra` of the predict endpoint: `{"rows": [row, ...]}`."""
    return _json_body(
        {
            "type": "object",
            "required": ["rows"],
            "properties": {"rows": {"type": "array", "items": row, "maxItems": max_rows}},
        }
    )


def label_schema(project: "ProjectConfig") -> dict[str, Any]:
    """JSON schema of one label value for the project's task."""
    if project.task == REGRESSION:
        return {"type": ["number", "string"], "description": "The true value: a finite number."}
    if project.task == MULTICLASS:
        declared = f" ({', '.join(map(str, project.classes))})" if project.classes else ""
        return {
            "type": ["string", "integer", "number", "boolean"],
            "description": f"The true class: one of the served model's classes{declared}.",
        }
    return {
        "type": ["integer", "string", "boolean"],
        "description": "The true class: one of the training classes.",
    }


def labels_body(max_rows: int, label: dict[str, Any] | None = None) -> dict[str, Any]:
    """The `openapi_extra` of the labels endpoint: `{"labels": [{row_id, label}, ...]}`.

    Args:
        max_rows: Most labels in one request.
        label: The schema of a label value (`label_schema`); default: a binary class.
    """
    return _json_body(
        {
            "type": "object",
            "required": ["labels"],
            "properties": {
                "labels": {
                    "type": "array",
                    "maxItems": max_rows,
                    "items": {
                        "type": "object",
                        "required": ["row_id", "label"],
                        "properties": {
                            "row_id": {"type": "string"},
                            "label": label or {"type": ["integer", "string", "boolean"]},
                        },
                        "additionalProperties": False,
                    },
                }
            },
        }
    )
