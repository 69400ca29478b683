"""Labels of a production batch checked and joined to its predictions: one per scored row (pure).

The rule, in order: a file whose labels are not the training classes is refused whole; label
rows for row ids the batch does not have are left out and listed; of the rest, exact duplicates
(same row id, same label) count once, and a row id given different labels is quarantined (none
of its labels kept, since none can be trusted). So a row weighs once in live metrics however
often it is labeled.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from unified_ai.names import LABEL_ORIGIN, ORIGIN, REVIEW_ORIGIN, REVIEWER_COLUMN, ROW_ID
from unified_ai.projects.schema import ProjectConfig
from unified_ai.projects.tasks import MULTICLASS, REGRESSION

if TYPE_CHECKING:
    import pandas as pd


def missing_label_columns(project: ProjectConfig, labels: "pd.DataFrame") -> list[str]:
    """The columns a label file must have (row id, target) that `labels` lacks."""
    return [c for c in (ROW_ID, project.target) if c not in labels.columns]


def label_column(
    project: ProjectConfig, labels: "pd.DataFrame", classes: list[Any]
) -> tuple["pd.DataFrame | None", str | None]:
    """(row id and `label` of each label row, None) or (None, why the file is refused).

    The `label` by task: binary 0/1 (1 = the positive label); multiclass the class label as
    text (`class_key`); regression the value as a float.

    Labels must be what the model was trained on: a blank or `yes` taken as 0 would skew the
    live metrics that decide rollbacks. Binary labels must be the training classes, multiclass
    ones one of `classes` (the model's class list), regression ones finite numbers.
    """
    from unified_ai.ml.data import binary_target
    from unified_ai.ml.validation import check_class_labels, check_labels, check_numeric_labels

    if project.task in (MULTICLASS, REGRESSION):
        if project.task == REGRESSION:
            values, problem = check_numeric_labels(labels[project.target])
        else:
            values, problem = check_class_labels(labels[project.target], classes)
        if problem:
            return None, f"column {project.target!r}: {problem}"
        return labels.assign(label=values.to_numpy())[[ROW_ID, "label"]], None
    truth, problem = check_labels(labels[project.target], classes)
    if problem:
        return None, f"column {project.target!r}: {problem}"
    labels = labels.assign(**{project.target: truth})
    return labels.assign(label=binary_target(project, labels))[[ROW_ID, "label"]], None


def with_review_labels(
    labels: "pd.DataFrame | None", reviewed: "pd.DataFrame"
) -> tuple["pd.DataFrame", list[str]]:
    """Inbox labels and reviewers' answers as one set of label rows, and the answers set aside.

    Each row says where its label came from (`_origin`: `label` or `review`) and who reviewed
    it (`REVIEWER_COLUMN`, empty for inbox labels). A label from the label inbox wins over a
    review answer for the same row id: the answer is set aside (its row id is returned, as
    text), so a row never gets two labels from the two sources.

    Args:
        labels: Checked inbox labels (`label_column`), or None when the batch has no file.
        reviewed: Answered reviews as labels (`ROW_ID`, `label`, `REVIEWER_COLUMN`).
    """
    import pandas as pd

    frames = []
    overridden: list[str] = []
    if labels is not None:
        frames.append(labels.assign(**{ORIGIN: LABEL_ORIGIN, REVIEWER_COLUMN: ""}))
    if len(reviewed):
        labeled = set() if labels is None else {str(i) for i in labels[ROW_ID]}
        taken = reviewed[ROW_ID].astype(str).isin(labeled).to_numpy()
        overridden = sorted(str(i) for i in reviewed.loc[taken, ROW_ID])
        frames.append(reviewed[~taken].assign(**{ORIGIN: REVIEW_ORIGIN}))
    columns = [ROW_ID, "label", ORIGIN, REVIEWER_COLUMN]
    if not frames:
        return pd.DataFrame(columns=columns), overridden
    kept = [f[columns] for f in frames if len(f)] or [frames[0][columns]]
    return pd.concat(kept, ignore_index=True), overridden


@dataclass(frozen=True)
class LabelJoin:
    """Predictions with one label each, and what was left out on the way.

    Attributes:
        joined: The scored rows that have a label, with their `label`.
        label_rows: Label rows read.
        unmatched_rows: Label rows for row ids the batch does not have.
        unknown_ids: Those row ids, sorted, as text.
        duplicate_rows: Exact duplicate label rows (counted once).
        conflicting_ids: Row ids given different labels (quarantined).
        conflicting_rows: Label rows of those row ids.
        problems: One phrase per rule that applied (empty: every label row matched once).
    """

    joined: "pd.DataFrame"
    label_rows: int
    unmatched_rows: int
    unknown_ids: list[str]
    duplicate_rows: int
    conflicting_ids: list[str]
    conflicting_rows: int
    problems: list[str]


def join_labels(labels: "pd.DataFrame", predictions: "pd.DataFrame") -> LabelJoin:
    """Predictions with one label each.

    Labels for row ids the batch does not have are set aside first; the rest follow
    `one_label_per_row` (exact duplicates once, conflicting row ids quarantined), so the join
    gives each scored row at most one row.
    """
    from unified_ai.ml.validation import one_label_per_row

    known = labels[ROW_ID].isin(predictions[ROW_ID])
    unmatched = int((~known).sum())
    unknown_ids = sorted({str(i) for i in labels.loc[~known, ROW_ID]})
    once = one_label_per_row(labels[known], ROW_ID, "label")
    joined = predictions.merge(once.labels, on=ROW_ID, how="inner", validate="many_to_one")
    problems = []
    if unknown_ids:
        problems.append(
            f"{unmatched} label rows for {len(unknown_ids)} row ids the batch does "
            f"not have were left out (e.g. {unknown_ids[:5]})"
        )
    problems += once.describe()
    return LabelJoin(
        joined=joined,
        label_rows=len(labels),
        unmatched_rows=unmatched,
        unknown_ids=unknown_ids,
        duplicate_rows=once.duplicate_rows,
        conflicting_ids=once.conflicting_ids,
        conflicting_rows=once.conflicting_rows,
        problems=problems,
    )
