"""Value types that flow between assets. Plain dataclasses: no framework, no heavy import."""

from dataclasses import dataclass, field
from typing import Any


@dataclass
class TrainedModel:
    """A fitted sklearn pipeline and its model card.

    Attributes:
        pipeline: The fitted estimator (preprocessing + model).
        card: JSON-safe facts about the model: estimator, params, features, training metrics,
            the MLflow run and registered version.
    """

    pipeline: Any
    card: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    """A JSON report with optional attachments (for example a self-contained HTML page).

    Attributes:
        body: The JSON-safe report.
        attachments: File name → content, stored beside the report: text (an HTML page) or
            bytes (a PNG plot); text names are those ending in `io.formats.TEXT_ATTACHMENTS`.
    """

    body: dict[str, Any]
    attachments: dict[str, str | bytes] = field(default_factory=dict)
