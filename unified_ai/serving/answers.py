"""What the endpoint answers for each row, by task, and what it writes beside the row.

- binary classification: `probability` (of the positive class) and `decision` (1 at or above
  the project's threshold), the threshold named once in the answer;
- multiclass classification: `prediction` (the most probable class, as text: `class_key`) and
  `probabilities` ({class: probability} for every class of the served model);
- regression: `prediction` (the predicted value).

Served rows go to the inbox with `served_*` columns: binary `served_probability` and
`served_decision` (as before tasks); multiclass `served_prediction` (the class) and
`served_probability` (its probability: the model's confidence); regression
`served_prediction`. Batch scoring scores the rows again, so these only record what a client
was told.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from unified_ai.projects.tasks import MULTICLASS, REGRESSION

if TYPE_CHECKING:
    from unified_ai.projects.schema import ProjectConfig
    from unified_ai.serving.follower import Served


@dataclass(frozen=True)
class TaskAnswer:
    """The task's part of a predict answer.

    Attributes:
        header: Fields of the answer as a whole (binary: the threshold).
        rows: Per row, its task fields (the row id and versions are added by the service).
        served_columns: Per `served_*` column written to the inbox, its value for each row.
    """

    header: dict[str, Any]
    rows: list[dict[str, Any]]
    served_columns: dict[str, Sequence[Any]]


def task_answers(served: "Served", predicted: Any, project: "ProjectConfig") -> TaskAnswer:
    """The answer to rows `served` predicted (`predicted`, in its task's shape, checked).

    Args:
        served: The deployment that scored (its task and class list).
        predicted: Its predictions: binary (n,) probabilities, multiclass (n, k) probabilities
            in the order of `served.class_keys`, regression (n,) values.
        project: The project (its threshold, for binary).
    """
    import numpy as np

    if served.task == REGRESSION:
        values = [float(v) for v in np.asarray(predicted, dtype="float64").tolist()]
        return TaskAnswer(
            header={},
            rows=[{"prediction": v} for v in values],
            served_columns={"served_prediction": values},
        )
    if served.task == MULTICLASS:
        proba = np.asarray(predicted, dtype="float64")
        keys = served.class_keys
        best = proba.argmax(axis=1)
        labels = [keys[i] for i in best.tolist()]
        rows = [
            {"prediction": label, "probabilities": dict(zip(keys, row, strict=True))}
            for label, row in zip(labels, proba.tolist(), strict=True)
        ]
        confidence = proba[np.arange(len(proba)), best].tolist()
        return TaskAnswer(
            header={},
            rows=rows,
            served_columns={"served_prediction": labels, "served_probability": confidence},
        )
    probability = np.asarray(predicted, dtype="float64").tolist()
    threshold = project.evaluation.threshold
    decision = [int(p >= threshold) for p in probability]
    return TaskAnswer(
        header={"threshold": threshold},
        rows=[
            {"probability": p, "decision": d} for p, d in zip(probability, decision, strict=True)
        ],
        served_columns={"served_probability": probability, "served_decision": decision},
    )
