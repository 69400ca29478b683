"""Monitoring: labels that arrived later for a batch, joined to its predictions (`ground_truth`).

The rules (which labels count, once) are `unified_ai.ml.label_join`'s; this asset reads the
file, refuses it into labels/quarantine/ when the rules do, and reports what they left out.
With `policy.review`, the batch's answered reviews join too (`_origin: review`, the reviewer in
`_reviewed_by`); a label from the inbox wins over a review answer for the same row. A run
for new answers alone (the labels sensor asks for one) keeps the inbox labels the batch's
ground truth already holds.
"""

from typing import TYPE_CHECKING

import dagster as dg

from unified_ai.io.reader import StoreReader
from unified_ai.io.review_answers import answered_labels
from unified_ai.ml.data import target_classes
from unified_ai.ml.label_join import (
    join_labels,
    label_column,
    missing_label_columns,
    with_review_labels,
)
from unified_ai.names import (
    GROUND_TRUTH,
    LABEL_ORIGIN,
    ORIGIN,
    PARTITIONS,
    PREDICTIONS,
    REVIEW_ORIGIN,
    REVIEWER_COLUMN,
    ROW_ID,
    TRAIN_SPLIT,
)
from unified_ai.projects.schema import ProjectConfig
from unified_ai.projects.tasks import BINARY, MULTICLASS
from unified_ai.resources.inbox import Inbox
from unified_ai.resources.notifications import Notifier
from unified_ai.resources.storage import LineageStorage
from unified_ai.stages.common import (
    DATA_FRAME,
    DataFrame,
    asset_metadata,
    batches_partitions,
    key,
    stage_tags,
)
from unified_ai.stages.monitoring.prediction_reference import recorded_classes
from unified_ai.stages.placement import stage_op_tags

if TYPE_CHECKING:
    import pandas as pd

    from unified_ai.ml.label_join import LabelJoin

LABELS_CHECK = "labels_match_predictions"
#: Row ids listed by value in `ground_truth` metadata; the rest are counted.
LISTED_ROW_IDS = 20
GROUND_TRUTH_DESCRIPTION = (
    "Labels that arrived later for a batch, joined to its predictions: one "
    "label per scored row. Labels that are not the training classes (blanks, yes/no for "
    "0/1, ...) are refused and the file kept in labels/quarantine/. Labels for row ids the "
    "batch does not have are left out and listed; exact duplicates (same row id, same "
    "label) count once; a row id given different labels is quarantined (left out of "
    "ground truth and live metrics, listed in the metadata). With policy.review, answered "
    "reviews are labels too (`_origin: review`, who answered in `_reviewed_by`); an inbox "
    "label wins over a review answer for the same row."
)
LABELS_CHECK_DESCRIPTION = (
    "Every label row matches a scored row of the batch and gives "
    "it its one label (no duplicates, no conflicting labels)."
)


def build_ground_truth(project: ProjectConfig) -> dg.AssetsDefinition:
    asset_key = key(project, GROUND_TRUTH)

    @dg.asset(
        key=asset_key,
        ins={"predictions": dg.AssetIn(key=key(project, PREDICTIONS), dagster_type=DATA_FRAME)},
        partitions_def=batches_partitions(project),
        tags=stage_tags("monitoring"),
        description=GROUND_TRUTH_DESCRIPTION,
        metadata=asset_metadata(project),
        op_tags=stage_op_tags(project, "monitoring"),
        kinds={"pandas"},
        check_specs=[
            dg.AssetCheckSpec(
                LABELS_CHECK,
                asset=asset_key,
                description=LABELS_CHECK_DESCRIPTION,
            )
        ],
    )
    def ground_truth(
        context: dg.AssetExecutionContext,
        inbox: Inbox,
        notifier: Notifier,
        lineage: LineageStorage,
        predictions: DataFrame,
    ):
        """Labels of one batch, one per scored row, joined to its predictions.

        The rules are `unified_ai.ml.label_join`'s: a file whose labels are not the training
        classes is refused whole; label rows for unknown row ids are left out, exact duplicates
        count once, conflicting row ids are quarantined. `labels_match_predictions` warns with
        the counts whenever any rule applied.
        """
        from unified_ai.resources.inbox import PROCESSED

        batch = context.partition_key
        folder = inbox.labels_folder(project)
        path = inbox.locate(folder, batch)
        reader = lineage.reader(context)
        reviewed = _review_labels(reader, project, batch)
        # A batch may have reviewers' answers and no label file yet: they are its ground truth.
        has_file = not len(reviewed) or path.exists()
        labels = _read_label_file(context, project, inbox, notifier, path) if has_file else None
        classes = _label_classes(project, reader, predictions)
        checked = None if has_file else _earlier_inbox_labels(reader, project, batch)
        if labels is not None:
            checked, problem = label_column(project, labels, classes)
            if checked is None:
                raise _refuse(context, project, inbox, notifier, path, f"{path}: {problem}")
        combined, overridden = with_review_labels(checked, reviewed)
        join = join_labels(combined, predictions)
        metadata = {
            **_join_metadata(join),
            **_review_metadata(join, reviewed, overridden),
        }
        yield dg.Output(
            join.joined,
            metadata={
                "dagster/row_count": len(join.joined),
                **metadata,
                "classes": dg.MetadataValue.json(classes),
            },
        )
        if has_file:
            inbox.archive(folder, batch, PROCESSED)
        yield dg.AssetCheckResult(
            check_name=LABELS_CHECK,
            passed=not join.problems,
            severity=dg.AssetCheckSeverity.WARN,
            description=_check_description(batch, join),
            metadata=metadata,
        )

    return ground_truth


def _label_classes(project: ProjectConfig, reader: StoreReader, predictions: DataFrame) -> list:
    """The classes a label may be: the training split's (binary), else the scoring model's."""
    if project.task == BINARY:
        train_path = key(project, TRAIN_SPLIT).path
        train_version = reader.require_current(train_path)
        return target_classes(project, reader.read_value(train_path, train_version))
    return _scoring_model_classes(project, reader, predictions)


def _review_labels(reader: StoreReader, project: ProjectConfig, batch: str) -> "pd.DataFrame":
    """The batch's answered reviews as labels (none without `policy.review`).

    Read through the step's reader, so the ground truth's manifest names the review queue and
    answer versions its review rows came from, and the next training's lineage names them.
    """
    import pandas as pd

    if project.policy.review is None:
        return pd.DataFrame(columns=[ROW_ID, "label", REVIEWER_COLUMN])
    return answered_labels(reader, project, batch)


def _earlier_inbox_labels(
    reader: StoreReader, project: ProjectConfig, batch: str
) -> "pd.DataFrame | None":
    """The inbox labels of the batch's current ground truth (`ROW_ID`, `label`), or None.

    A run without a label file (new review answers alone) keeps them: the file they came from
    was archived when it was taken in, and an inbox label still wins over a review answer.
    """
    path = [*key(project, GROUND_TRUTH).path, PARTITIONS, batch]
    version = reader.current_version(path)
    if version is None:
        return None
    earlier = reader.read_value(path, version)
    # Stored before reviews (no `_origin`): every label came from the inbox.
    inbox = earlier[earlier[ORIGIN] == LABEL_ORIGIN] if ORIGIN in earlier.columns else earlier
    return inbox[[ROW_ID, "label"]].reset_index(drop=True) if len(inbox) else None


def _review_metadata(join: "LabelJoin", reviewed: "pd.DataFrame", overridden: list[str]) -> dict:
    """How many ground-truth rows are reviewers' answers, by whom, and which an inbox label beat."""
    if not len(reviewed):
        return {}
    used = join.joined[join.joined[ORIGIN] == REVIEW_ORIGIN]
    return {
        "review_labels": len(used),
        "review_labels_overridden": len(overridden),
        "overridden_review_row_ids": dg.MetadataValue.json(overridden[:LISTED_ROW_IDS]),
        "reviewers": dg.MetadataValue.json(sorted(set(used[REVIEWER_COLUMN]))),
    }


def _scoring_model_classes(
    project: ProjectConfig, reader: StoreReader, predictions: "pd.DataFrame"
) -> list:
    """The class list of the model that scored the batch (multiclass); else no classes.

    Labels of a multiclass batch must be classes of the model whose predictions they judge.
    """
    if project.task != MULTICLASS or not len(predictions) or "model_version" not in predictions:
        return []
    version = str(predictions["model_version"].iloc[0])
    # From the model's card: checked like any stored file, without loading the model.
    classes = recorded_classes(reader, project, version)
    if not classes:
        raise dg.Failure(
            description=f"{project.name}/ground_truth[?]: model {version} that scored the "
            f"batch records no class list; {project.task} labels cannot be checked"
        )
    return classes


def _read_label_file(
    context: dg.AssetExecutionContext,
    project: ProjectConfig,
    inbox: Inbox,
    notifier: Notifier,
    path,
) -> "pd.DataFrame":
    """The batch's label file, with the row id and target columns; else refused (a Failure)."""
    from unified_ai.resources.inbox import InboxError

    try:
        labels = inbox.read(inbox.labels_folder(project), context.partition_key)
    except InboxError as exc:
        raise _refuse(context, project, inbox, notifier, path, str(exc)) from None
    missing = missing_label_columns(project, labels)
    if missing:
        reason = f"{path}: label file lacks columns {missing}"
        raise _refuse(context, project, inbox, notifier, path, reason)
    return labels


def _refuse(
    context: dg.AssetExecutionContext,
    project: ProjectConfig,
    inbox: Inbox,
    notifier: Notifier,
    path,
    reason: str,
) -> dg.Failure:
    """Keep the file in labels/quarantine/ (a fixed file can be delivered again)."""
    from unified_ai.resources.inbox import QUARANTINE

    batch = context.partition_key
    folder = inbox.labels_folder(project)
    if (folder / batch).exists():
        inbox.archive(folder, batch, QUARANTINE)
        reason = f"{reason}; the file is kept in {folder / QUARANTINE}"
        notifier.notify(
            project.policy.notifications,
            project=project.name,
            event="quarantine",
            summary=f"labels of batch {batch} were refused (no live metrics from them): {reason}",
            evidence={"batch": batch, "file": str(path)},
            run_id=context.run_id,
        )
    return dg.Failure(description=f"{project.name}/ground_truth[{batch}]: {reason}")


def _join_metadata(join: "LabelJoin") -> dict:
    """What the rules left out, as metadata of the asset and of its check."""
    return {
        "label_rows": join.label_rows,
        "unmatched_label_rows": join.unmatched_rows,
        "unmatched_row_ids": dg.MetadataValue.json(join.unknown_ids[:LISTED_ROW_IDS]),
        "duplicate_label_rows": join.duplicate_rows,
        "conflicting_row_ids_count": len(join.conflicting_ids),
        "conflicting_label_rows": join.conflicting_rows,
        "conflicting_row_ids": dg.MetadataValue.json(join.conflicting_ids[:LISTED_ROW_IDS]),
    }


def _check_description(batch: str, join: "LabelJoin") -> str:
    if join.problems:
        return (
            f"batch {batch}: {join.label_rows} label rows gave {len(join.joined)} scored rows "
            "one label each; " + "; ".join(join.problems)
        )
    return f"all {join.label_rows} label rows matched, one per scored row"
