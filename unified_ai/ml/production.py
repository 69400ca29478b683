"""Labeled production rows for training: which batches, and their rows joined with their labels.

A production row is a row of a stored production batch (its inputs) joined by row id with the
label `ground_truth` recorded for it. Which batches join is the project's
`training.production_data` window; a batch that cannot be used is left out with a one-line
reason, and problems inside a used batch (duplicate labels, labels for rows the batch does not
have) are reported and the affected rows dropped, never silently: one label per row id, as
`unified_ai.ml.validation.one_label_per_row` rules. Pure: pandas only.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from unified_ai.names import ORIGIN, ROW_ID

if TYPE_CHECKING:
    import pandas as pd

    from unified_ai.projects.schema import ProductionData, ProjectConfig

#: The column of `ground_truth` holding the label: binary 0/1 (1 = the project's positive
#: label), multiclass the class as text (`class_key`), regression the value.
LABEL = "label"


@dataclass(frozen=True)
class LabeledBatch:
    """A stored production batch that has labels: what the window chooses from.

    Attributes:
        batch: The batch (partition) name.
        batch_version: The current `production_batch` version of the batch.
        stored_at: When that version was stored (ISO 8601, UTC).
        truth_version: The current `ground_truth` version of the batch.
    """

    batch: str
    batch_version: str
    stored_at: str
    truth_version: str


def choose_batches(
    batches: Sequence[LabeledBatch],
    spec: "ProductionData",
    *,
    now: datetime,
    left_out: Mapping[str, str],
) -> list[LabeledBatch]:
    """The batches in the window, oldest first.

    Args:
        batches: Every labeled batch, oldest first.
        spec: The project's window.
        now: The time a day window ends.
        left_out: Batches that may not be used (batch → why); they do not count in the window.
    """
    usable = [b for b in batches if b.batch not in left_out]
    if spec.window_days is not None:
        since = now - timedelta(days=spec.window_days)
        return [b for b in usable if datetime.fromisoformat(b.stored_at) >= since]
    count = spec.batches
    return usable[-count:] if count else usable


def class_values(project: "ProjectConfig", classes: Sequence[Any]) -> tuple[Any, Any] | None:
    """(negative, positive) target values of the training data; None unless exactly two."""
    import pandas as pd

    from unified_ai.ml.data import binary_target

    if len(classes) != 2:
        return None
    flags = binary_target(project, pd.DataFrame({project.target: list(classes)})).tolist()
    if sorted(flags) != [0, 1]:
        return None
    return (classes[flags.index(0)], classes[flags.index(1)])


def label_values(project: "ProjectConfig", classes: Sequence[Any]) -> Mapping[Any, Any] | None:
    """How a `ground_truth` label maps back to a target value of the training data, by task.

    Binary: {0: negative, 1: positive} (None unless the source has exactly two classes);
    multiclass: {class text: the source's value}; regression: an empty mapping (the label is
    the value).
    """
    from unified_ai.projects.tasks import MULTICLASS, REGRESSION, class_key

    if project.task == REGRESSION:
        return {}
    if project.task == MULTICLASS:
        return {class_key(c): c for c in classes}
    values = class_values(project, classes)
    return None if values is None else {0: values[0], 1: values[1]}


def join_batch(
    project: "ProjectConfig",
    batch: str,
    inputs: "pd.DataFrame",
    truth: "pd.DataFrame",
    classes: tuple[Any, Any] | Mapping[Any, Any],
) -> tuple["pd.DataFrame | None", list[str], str | None]:
    """The labeled rows of one batch, as training rows.

    `classes` maps a label to the training data's target value (`label_values`); a binary
    (negative, positive) pair is accepted too. An empty mapping keeps labels as they are
    (regression, as floats).

    Returns:
        (rows with the target in the training data's values and `_origin` = the batch, or None;
        problems that dropped some rows; why no row of the batch can be used, or None).
    """
    import numpy as np
    import pandas as pd

    from unified_ai.ml.validation import one_label_per_row, validate_batch
    from unified_ai.projects.tasks import MULTICLASS, REGRESSION, class_key

    outcome = validate_batch(project, inputs)
    if not outcome.passed:
        return None, [], f"its rows no longer match the project: {outcome.describe()}"[:500]
    missing = [c for c in (ROW_ID, LABEL) if c not in truth.columns]
    if missing:
        return None, [], f"its ground truth lacks columns {missing}"
    notes = []
    # The rule `ground_truth` applies when labels arrive; a version stored before it held
    # repeated or conflicting rows, so it is applied again here.
    once = one_label_per_row(truth[[ROW_ID, LABEL]], ROW_ID, LABEL)
    if once.conflicting_ids:
        notes.append(
            f"{len(once.conflicting_ids)} rows have conflicting labels and were dropped, e.g. "
            f"{once.conflicting_ids[:3]}"
        )
    if once.duplicate_rows:
        notes.append(f"{once.duplicate_rows} duplicate labels of the same rows were counted once")
    labels = once.labels
    unknown = int((~labels[ROW_ID].isin(inputs[ROW_ID])).sum())
    if unknown:
        notes.append(f"{unknown} labels are for rows the batch does not have and were dropped")
    # Mapped before the join: the project's target may itself be called `label`.
    mapping = classes if isinstance(classes, Mapping) else {0: classes[0], 1: classes[1]}
    if project.task == REGRESSION:
        values = pd.to_numeric(labels[LABEL], errors="coerce").astype("float64")
        kept = np.isfinite(values.to_numpy())
        target = values
    else:
        keys = labels[LABEL].map(class_key) if project.task == MULTICLASS else labels[LABEL]
        target = keys.map(mapping)
        kept = target.notna().to_numpy()
    if not kept.all():
        notes.append(
            f"{int((~kept).sum())} labels are not target values of the training data and "
            "were dropped"
        )
    labels = labels.assign(**{project.target: target})[kept]
    labels = labels[[ROW_ID, project.target]]
    inputs = inputs.drop(columns=[project.target], errors="ignore")
    joined = inputs.merge(labels, on=ROW_ID, how="inner")
    if joined.empty:
        return None, notes, "no labeled row of the batch is left"
    return joined.drop(columns=[ROW_ID]).assign(**{ORIGIN: batch}), notes, None


@dataclass
class ProductionRows:
    """The labeled production rows chosen for training, and what was left out and why.

    Attributes:
        frame: The rows (project columns and `_origin`), oldest batch first; None if none.
        used: Batch → rows it contributed.
        left_out: Batch → why none of its rows were used.
        notes: Problems that dropped some rows of used batches, and the `max_rows` cut.
    """

    frame: "pd.DataFrame | None" = None
    used: dict[str, int] = field(default_factory=dict)
    left_out: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def production_rows(
    project: "ProjectConfig",
    loaded: Sequence[tuple[str, "pd.DataFrame", "pd.DataFrame"]],
    classes: Sequence[Any],
) -> ProductionRows:
    """Join each (batch, inputs, ground truth), oldest first, and keep the newest `max_rows`.

    Args:
        project: The project (its columns, target and `training.production_data.max_rows`).
        loaded: The chosen batches with their stored inputs and ground truth, oldest first.
        classes: The target values of the project's source data.
    """
    import pandas as pd

    result = ProductionRows()
    values = label_values(project, classes)
    if values is None:
        reason = f"the source's target {project.target!r} does not have exactly two classes"
        result.left_out = {batch: reason for batch, _, _ in loaded}
        return result
    parts = []
    for batch, inputs, truth in loaded:
        rows, notes, refused = join_batch(project, batch, inputs, truth, values)
        result.notes += [f"batch {batch}: {note}" for note in notes]
        if refused is not None:
            result.left_out[batch] = refused
        else:
            parts.append(rows)
    if not parts:
        return result
    frame = pd.concat(parts, ignore_index=True)
    limit = project.training.production_data.max_rows
    if len(frame) > limit:
        result.notes.append(
            f"max_rows {limit}: the {len(frame) - limit} oldest production rows were left out"
        )
        frame = frame.iloc[len(frame) - limit :].reset_index(drop=True)
    result.frame = frame
    result.used = {str(k): int(v) for k, v in frame[ORIGIN].value_counts(sort=False).items()}
    return result


def combine(source: "pd.DataFrame", production: "pd.DataFrame | None") -> "pd.DataFrame":
    """The source rows, then the production rows, with the source's columns (in its order)."""
    import pandas as pd

    if production is None or production.empty:
        return source
    production = production.reindex(columns=source.columns)
    for column in source.columns:
        wanted, found = source[column].dtype, production[column].dtype
        if column == ORIGIN or wanted == found:
            continue
        # A batch file read back with integers where the source has floats (or the reverse)
        # takes the source's type when no value changes: a categorical code must stay the
        # text the model learned ("1.0" is not "1").
        if not (pd.api.types.is_numeric_dtype(wanted) and pd.api.types.is_numeric_dtype(found)):
            continue
        values = production[column]
        if pd.api.types.is_float_dtype(wanted) or (
            values.notna().all() and (values == values.round()).all()
        ):
            production[column] = values.astype(wanted)
    return pd.concat([source, production], ignore_index=True)
