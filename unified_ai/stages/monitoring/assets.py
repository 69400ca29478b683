"""Monitoring: production batches → predictions and drift; labels → ground truth → live metrics.

Batches are dynamic partitions (one per file in the project's inbox). A batch that breaks the
schema is stored and flagged as quarantined by a blocking check: never scored, never lost.
"""

from typing import TYPE_CHECKING

import dagster as dg

from unified_ai.io.reader import StoreReader
from unified_ai.names import (
    CANDIDATE_MODEL,
    DEPLOYED_MODEL,
    DEPLOYMENT_COLUMN,
    DRIFT_REPORT,
    EVALUATION_REPORT,
    GROUND_TRUTH,
    LIVE_PERFORMANCE,
    PREDICTIONS,
    PRODUCTION_BATCH,
    ROW_ID,
    SHADOW_CANDIDATE_MODEL,
    SHADOW_CANDIDATE_PROBA,
    SHADOW_PREVIOUS_DEPLOYMENT,
    SHADOW_PREVIOUS_PROBA,
    TRAIN_SPLIT,
)
from unified_ai.payloads import Deployment, DriftSummary, LiveSummary
from unified_ai.projects.schema import ProjectConfig
from unified_ai.queries import (
    NothingDeployedError,
    current_deployment,
    deployed_model_of,
    labeled_batches,
    read_deployment,
    rollback_target,
    waiting_candidate,
)
from unified_ai.resources.inbox import Inbox
from unified_ai.resources.mlflow_registry import MlflowRegistry
from unified_ai.resources.notifications import Notifier
from unified_ai.resources.storage import LineageStorage
from unified_ai.stages.common import asset_metadata, batches_partitions, key, stage_tags
from unified_ai.stages.placement import stage_op_tags

if TYPE_CHECKING:
    import pandas as pd

BATCH_CHECK = "batch_is_valid"
LABELS_CHECK = "labels_match_predictions"
DRIFT_HTML = "drift.html"
DRIFT_SHARE_PLOT = "drift_share.png"
#: How many of the newest labeled batches the live metric plot shows.
LIVE_PLOT_BATCHES = 30


def build_production_batch(project: ProjectConfig) -> dg.AssetsDefinition:
    asset_key = key(project, PRODUCTION_BATCH)

    @dg.asset(
        key=asset_key,
        partitions_def=batches_partitions(project),
        tags=stage_tags("monitoring"),
        description="One file of production rows from the project's inbox, validated before it "
        "is scored. A batch that fails validation is kept and quarantined.",
        metadata=asset_metadata(project),
        op_tags=stage_op_tags(project, "monitoring"),
        kinds={"pandas"},
        check_specs=[
            dg.AssetCheckSpec(
                BATCH_CHECK,
                asset=asset_key,
                blocking=True,
                description="The batch has the model's inputs with training types and declared "
                "values, and unique row ids.",
            )
        ],
    )
    def production_batch(context: dg.AssetExecutionContext, inbox: Inbox, notifier: Notifier):
        from unified_ai.ml.validation import validate_batch
        from unified_ai.resources.inbox import PROCESSED, QUARANTINE, InboxError

        batch = context.partition_key
        folder = inbox.folder(project)
        try:
            frame = inbox.read(folder, batch)
        except InboxError as exc:
            inbox.archive(folder, batch, QUARANTINE)
            notifier.notify(
                project.policy.notifications,
                project=project.name,
                event="quarantine",
                summary=f"batch {batch} is unreadable and was not scored: {exc}",
                evidence={"batch": batch},
                run_id=context.run_id,
            )
            yield dg.AssetCheckResult(
                check_name=BATCH_CHECK,
                passed=False,
                description=str(exc),
                severity=dg.AssetCheckSeverity.ERROR,
            )
            raise dg.Failure(
                description=f"{project.name}/production_batch[{batch}]: {exc}"
            ) from None
        outcome = validate_batch(project, frame)
        yield dg.Output(
            frame,
            metadata={
                "dagster/row_count": len(frame),
                "quarantined": not outcome.passed,
                "reason": outcome.describe()[:1000],
            },
        )
        # The rows are in the lineage store now: the file leaves the waiting list, kept.
        inbox.archive(folder, batch, PROCESSED if outcome.passed else QUARANTINE)
        if not outcome.passed:
            notifier.notify(
                project.policy.notifications,
                project=project.name,
                event="quarantine",
                summary=f"batch {batch} was quarantined (kept, not scored): {outcome.describe()}",
                evidence={"batch": batch, "rows": len(frame)},
                run_id=context.run_id,
            )
        yield dg.AssetCheckResult(
            check_name=BATCH_CHECK,
            passed=outcome.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            description=outcome.describe()[:2000],
            metadata={"failures": dg.MetadataValue.json(outcome.failures)},
        )

    return production_batch


def build_predictions(project: ProjectConfig) -> dg.AssetsDefinition:
    @dg.asset(
        key=key(project, PREDICTIONS),
        ins={"production_batch": dg.AssetIn(key=key(project, PRODUCTION_BATCH))},
        partitions_def=batches_partitions(project),
        tags=stage_tags("monitoring"),
        description="The batch scored by the currently deployed model (its version recorded), "
        "and in the shadow by the deployment a rollback would restore and by a candidate "
        "waiting for approval, so models are compared on the same rows.",
        metadata=asset_metadata(project),
        op_tags=stage_op_tags(project, "monitoring"),
        kinds={"pandas", "scikitlearn"},
    )
    def predictions(context: dg.AssetExecutionContext, lineage: LineageStorage, production_batch):
        from unified_ai.ml.data import FeatureColumns
        from unified_ai.ml.training import predict_proba

        reader = lineage.reader(context)
        try:
            deployment, manifest, model = deployed_model_of(reader, project.name)
        except NothingDeployedError as exc:
            raise dg.Failure(description=f"{project.name}/predictions: {exc}") from None
        proba = predict_proba(model, production_batch, FeatureColumns(**model.card["features"]))
        _refuse_non_finite(project.name, manifest.model_version, production_batch, proba)
        keep = [ROW_ID, *[c for c in project.segments if c in production_batch.columns]]
        scored = production_batch[keep].copy()
        scored["proba"] = proba
        scored["prediction"] = (proba >= project.evaluation.threshold).astype(int)
        scored[DEPLOYMENT_COLUMN] = deployment
        scored["model_version"] = manifest.model_version
        shadows, shadow_notes = _shadow_scores(
            context, reader, project, manifest, deployment, production_batch, proba
        )
        scored = scored.assign(**shadows)
        return dg.Output(
            scored,
            metadata={
                "deployment_version": deployment,
                "model_version": manifest.model_version,
                "dagster/row_count": len(scored),
                "positive_rate": float(scored["prediction"].mean()),
                # Why a compiled scorer was not used (stored before its probe outputs were).
                **({"scorer": model.scorer_note} if model.scorer_note else {}),
                **shadow_notes,
            },
        )

    return predictions


def _refuse_non_finite(project: str, model_version: str, batch: "pd.DataFrame", proba) -> None:
    """Fail the run (nothing is stored, nothing becomes current) on a NaN or infinite score."""
    import numpy as np

    bad = ~np.isfinite(np.asarray(proba, dtype="float64"))
    if bad.any():
        first = batch[ROW_ID].iloc[int(np.flatnonzero(bad)[0])] if ROW_ID in batch else "?"
        raise dg.Failure(
            description=f"{project}/predictions: model {model_version} gave {int(bad.sum())} of "
            f"{len(bad)} rows a non-finite score (first: row {first}); refusing to store them"
        )


def _shadow_scores(
    context: dg.AssetExecutionContext,
    reader: StoreReader,
    project: ProjectConfig,
    manifest: Deployment,
    deployment: str,
    batch: "pd.DataFrame",
    live_proba,
) -> tuple[dict, dict[str, str]]:
    """The batch scored by the deployment a rollback would restore and by a waiting candidate.

    Returns the shadow columns of `predictions` (always all four, empty when there is no such
    model, so every batch's frame has one shape) and what its metadata says about them. A
    batch larger than `monitoring.shadow_rows` is shadow-scored on a random sample. Both
    models are read through the step's reader: allow-listed skops only, and their versions are
    in the lineage of these predictions. A shadow that is the live model itself (a redeployed
    version: versions are content hashes) reuses `live_proba` instead of loading it again.
    """
    import zlib

    import numpy as np

    from unified_ai.ml.data import FeatureColumns
    from unified_ai.ml.training import predict_proba

    columns: dict = {
        SHADOW_PREVIOUS_DEPLOYMENT: None,
        SHADOW_PREVIOUS_PROBA: np.nan,
        SHADOW_CANDIDATE_MODEL: None,
        SHADOW_CANDIDATE_PROBA: np.nan,
    }
    metadata = {"shadow_previous": "none", "shadow_candidate": "none"}

    # A shadow is compared on labeled rows; on a large batch a sample of them is as good and
    # saves scoring every row again per shadow model. The same rows for every shadow model.
    rows = np.arange(len(batch))
    if len(batch) > project.monitoring.shadow_rows:
        seed = zlib.crc32(context.partition_key.encode())
        rows = np.sort(
            np.random.default_rng(seed).choice(len(batch), project.monitoring.shadow_rows, False)
        )
        metadata["shadow_sample"] = (
            f"{len(rows):,} of {len(batch):,} (a random sample: monitoring.shadow_rows)"
        )

    def shadow(role: str, owner_column: str, proba_column: str, owner: str, model_version: str):
        columns[owner_column] = owner
        if model_version == manifest.model_version:
            columns[proba_column] = live_proba
            metadata[f"shadow_{role}"] = f"{owner} (the live model itself)"
            return
        try:
            model = reader.read_value(key(project, CANDIDATE_MODEL).path, model_version)
            features = FeatureColumns(**model.card["features"])
            scores = np.full(len(batch), np.nan)
            sample = batch if len(rows) == len(batch) else batch.iloc[rows]
            scores[rows] = predict_proba(model, sample, features)
            columns[proba_column] = scores
            metadata[f"shadow_{role}"] = owner
        except Exception as exc:
            # A shadow is evidence, not service: whatever stops it (a refused file, inputs
            # it does not know) must not stop the live scores. Its rows stay unpaired.
            reason = f"{owner}: not scored: {exc}"[:500]
            metadata[f"shadow_{role}"] = reason
            context.log.warning(f"{project.name}/predictions: shadow {role} {reason}")

    previous = rollback_target(reader, project.name, deployment)
    if previous is not None:
        version, previous_manifest = previous
        shadow(
            "previous",
            SHADOW_PREVIOUS_DEPLOYMENT,
            SHADOW_PREVIOUS_PROBA,
            version,
            previous_manifest.model_version,
        )
    candidate = _waiting_candidate(context, reader, project, manifest)
    if candidate is not None:
        shadow("candidate", SHADOW_CANDIDATE_MODEL, SHADOW_CANDIDATE_PROBA, candidate, candidate)
    return columns, metadata


def _waiting_candidate(
    context: dg.AssetExecutionContext,
    reader: StoreReader,
    project: ProjectConfig,
    deployed: Deployment,
) -> str | None:
    """The model version of a candidate waiting for approval (gates read from the instance)."""
    from unified_ai.policies.gates import GATES, gate_decision
    from unified_ai.stages.gate_records import gate_records

    report_key = key(project, EVALUATION_REPORT)

    def gates_passed(report_version: str) -> bool:
        records = gate_records(context.instance, report_key, GATES)
        return gate_decision(report_version, records, GATES).allowed

    waiting = waiting_candidate(reader, project.name, deployed, gates_passed)
    return None if waiting is None else str(waiting[1].model_version)


def build_drift_report(project: ProjectConfig) -> dg.AssetsDefinition:
    @dg.asset(
        key=key(project, DRIFT_REPORT),
        ins={"production_batch": dg.AssetIn(key=key(project, PRODUCTION_BATCH))},
        partitions_def=batches_partitions(project),
        tags=stage_tags("monitoring"),
        description="Per-column drift (PSI, KS) of the batch against the training reference, "
        "the share of drifted columns, and an Evidently page built from a sample.",
        metadata=asset_metadata(project),
        op_tags=stage_op_tags(project, "monitoring"),
        kinds={"evidently", "json"},
    )
    def drift_report(
        context: dg.AssetExecutionContext,
        lineage: LineageStorage,
        mlflow: MlflowRegistry,
        production_batch,
    ):
        from unified_ai.ml.artifacts import Report
        from unified_ai.ml.data import resolve_features
        from unified_ai.ml.drift import columns_markdown, drift_page, drift_scores, page_reason

        reader = lineage.reader(context)
        reference_path = key(project, TRAIN_SPLIT).path
        reference_version = reader.require_current(reference_path)
        reference = reader.read_value(reference_path, reference_version)
        features = resolve_features(project, reference)
        rule = project.policy.triggers.drift
        body = drift_scores(
            reference, production_batch, features.numeric, features.categorical, rule.psi_threshold
        )
        body.update({"batch": context.partition_key, "reference_version": reference_version})
        # The Evidently page costs seconds (its import alone) while the statistics cost
        # milliseconds: a clean batch gets none unless the project asks for every Nth one.
        why = page_reason(
            body["drifted_columns"],
            batch_number=_batch_number(context, project),
            every=project.monitoring.drift_page_every,
        )
        attachments = {}
        if why is not None:
            attachments[DRIFT_HTML] = drift_page(
                reference,
                production_batch,
                features.all,
                project.monitoring.drift_report_rows,
                seed=project.split.seed,
                psi_threshold=rule.psi_threshold,
                max_drifted_share=rule.max_drifted_share,
            )
        extra = {"columns": dg.MetadataValue.md(columns_markdown(body))}
        if why is not None:
            # Drawn with the page only: a clean batch imports nothing new.
            extra.update(_drift_evidence(context, project, body, attachments))
            extra.update(_drift_page_in_mlflow(context, project, lineage, mlflow, attachments))
        return dg.Output(
            Report(body=body, attachments=attachments),
            metadata={
                **extra,
                **DriftSummary(
                    drifted_share=body["drifted_share"],
                    drifted_columns=list(body["drifted_columns"]),
                    batch=context.partition_key,
                ).metadata(),
                "html_report": DRIFT_HTML if why else "none",
                "html_report_reason": why
                or "no column drifted (monitoring.drift_page_every renders every Nth batch)",
            },
        )

    return drift_report


#: How many earlier batches the drift share plot shows.
DRIFT_HISTORY_BATCHES = 30


def _drift_evidence(
    context: dg.AssetExecutionContext, project: ProjectConfig, body: dict, attachments: dict
) -> dict:
    """The drift share over recent batches as a plot (also stored), and the page in MLflow."""
    from unified_ai.ml.plots import markdown_image, series_plot

    records = context.instance.fetch_materializations(
        key(project, DRIFT_REPORT), limit=DRIFT_HISTORY_BATCHES
    ).records
    points = []
    for record in reversed(records):
        materialization = record.asset_materialization
        if materialization is None or materialization.partition == context.partition_key:
            continue
        values = {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}
        summary = DriftSummary.from_metadata(values, batch=materialization.partition or "?")
        points.append({"batch": summary.batch, "share": summary.drifted_share, "line": "batches"})
    points.append(
        {"batch": context.partition_key, "share": body["drifted_share"], "line": "batches"}
    )
    png = series_plot(
        points,
        value="share",
        group="line",
        title="Drifted share of columns",
        ylabel="share",
        threshold=project.policy.triggers.drift.max_drifted_share,
    )
    attachments[DRIFT_SHARE_PLOT] = png
    return {"drift_share_over_batches": dg.MetadataValue.md(markdown_image("drift share", png))}


def _drift_page_in_mlflow(
    context: dg.AssetExecutionContext,
    project: ProjectConfig,
    lineage: LineageStorage,
    mlflow: MlflowRegistry,
    attachments: dict,
) -> dict:
    """The drift page and plot in the deployed model's MLflow run, and a link to the page."""
    from unified_ai.io.reader import StoreReader

    # Read without recording: the deployment is where the page goes, not an input of the report.
    deployed = current_deployment(StoreReader(lineage.store()), project.name)
    if deployed is None or not deployed[1].mlflow_run_id:
        return {}
    urls = mlflow.log_report(
        deployed[1].mlflow_run_id,
        folder=f"{DRIFT_REPORT}/{context.partition_key}",
        files=attachments,
        tags={"unified_ai.last_drift_page_batch": context.partition_key},
    )
    return {"html_report_in_mlflow": dg.MetadataValue.url(urls[DRIFT_HTML])} if urls else {}


def _batch_number(context: dg.AssetExecutionContext, project: ProjectConfig) -> int | None:
    """1-based position of this batch among the project's batches (None when unknown)."""
    if not project.monitoring.drift_page_every:
        return None  # not needed: skip the partition listing
    batches = context.instance.get_dynamic_partitions(batches_partitions(project).name)
    return batches.index(context.partition_key) + 1 if context.partition_key in batches else None


def build_ground_truth(project: ProjectConfig) -> dg.AssetsDefinition:
    asset_key = key(project, GROUND_TRUTH)

    @dg.asset(
        key=asset_key,
        ins={"predictions": dg.AssetIn(key=key(project, PREDICTIONS))},
        partitions_def=batches_partitions(project),
        tags=stage_tags("monitoring"),
        description="Labels that arrived later for a batch, joined to its predictions: one "
        "label per scored row. Labels that are not the training classes (blanks, yes/no for "
        "0/1, ...) are refused and the file kept in labels/quarantine/. Labels for row ids the "
        "batch does not have are left out and listed; exact duplicates (same row id, same "
        "label) count once; a row id given different labels is quarantined (left out of "
        "ground truth and live metrics, listed in the metadata).",
        metadata=asset_metadata(project),
        op_tags=stage_op_tags(project, "monitoring"),
        kinds={"pandas"},
        check_specs=[
            dg.AssetCheckSpec(
                LABELS_CHECK,
                asset=asset_key,
                description="Every label row matches a scored row of the batch and gives "
                "it its one label (no duplicates, no conflicting labels).",
            )
        ],
    )
    def ground_truth(
        context: dg.AssetExecutionContext,
        inbox: Inbox,
        notifier: Notifier,
        lineage: LineageStorage,
        predictions,
    ):
        """Labels of one batch, one per scored row, joined to its predictions.

        The rule, in order: a file whose labels are not the training classes is refused whole;
        label rows for row ids the batch does not have are left out and listed; of the rest,
        exact duplicates (same row id, same label) count once, and a row id given different
        labels is quarantined (none of its labels kept, since none can be trusted). So a row
        weighs once in live metrics however often it is labeled, and `labels_match_predictions`
        warns with the counts whenever any rule applied.
        """
        from unified_ai.ml.data import binary_target, target_classes
        from unified_ai.ml.validation import check_labels
        from unified_ai.resources.inbox import PROCESSED, QUARANTINE, InboxError

        batch = context.partition_key
        folder = inbox.labels_folder(project)
        path = inbox.locate(folder, batch)

        def refuse(reason: str) -> dg.Failure:
            """Keep the file in labels/quarantine/ (a fixed file can be delivered again)."""
            if (folder / batch).exists():
                inbox.archive(folder, batch, QUARANTINE)
                reason = f"{reason}; the file is kept in {folder / QUARANTINE}"
                notifier.notify(
                    project.policy.notifications,
                    project=project.name,
                    event="quarantine",
                    summary=f"labels of batch {batch} were refused (no live metrics from them): "
                    f"{reason}",
                    evidence={"batch": batch, "file": str(path)},
                    run_id=context.run_id,
                )
            return dg.Failure(description=f"{project.name}/ground_truth[{batch}]: {reason}")

        try:
            labels = inbox.read(folder, batch)
        except InboxError as exc:
            raise refuse(str(exc)) from None
        missing = [c for c in (ROW_ID, project.target) if c not in labels.columns]
        if missing:
            raise refuse(f"{path}: label file lacks columns {missing}")
        # Labels must be the classes the model was trained on: a blank or `yes` taken as 0 would
        # skew the live metrics that decide rollbacks.
        reader = lineage.reader(context)
        train_path = key(project, TRAIN_SPLIT).path
        train_version = reader.require_current(train_path)
        classes = target_classes(project, reader.read_value(train_path, train_version))
        truth, problem = check_labels(labels[project.target], classes)
        if problem:
            raise refuse(f"{path}: column {project.target!r}: {problem}")
        labels = labels.assign(**{project.target: truth})
        labels = labels.assign(label=binary_target(project, labels))[[ROW_ID, "label"]]
        joined, metadata, problems = _one_label_per_row(labels, predictions)
        yield dg.Output(
            joined,
            metadata={
                "dagster/row_count": len(joined),
                **metadata,
                "classes": dg.MetadataValue.json(classes),
            },
        )
        inbox.archive(folder, batch, PROCESSED)
        yield dg.AssetCheckResult(
            check_name=LABELS_CHECK,
            passed=not problems,
            severity=dg.AssetCheckSeverity.WARN,
            description=(
                f"batch {batch}: {len(labels)} label rows gave {len(joined)} scored rows one "
                f"label each; " + "; ".join(problems)
                if problems
                else f"all {len(labels)} label rows matched, one per scored row"
            ),
            metadata=metadata,
        )

    return ground_truth


#: Row ids listed by value in `ground_truth` metadata; the rest are counted.
LISTED_ROW_IDS = 20


def _one_label_per_row(
    labels: "pd.DataFrame", predictions: "pd.DataFrame"
) -> tuple["pd.DataFrame", dict, list[str]]:
    """(predictions with one label each, metadata, one phrase per rule that applied).

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
    metadata = {
        "label_rows": len(labels),
        "unmatched_label_rows": unmatched,
        "unmatched_row_ids": dg.MetadataValue.json(unknown_ids[:LISTED_ROW_IDS]),
        "duplicate_label_rows": once.duplicate_rows,
        "conflicting_row_ids_count": len(once.conflicting_ids),
        "conflicting_label_rows": once.conflicting_rows,
        "conflicting_row_ids": dg.MetadataValue.json(once.conflicting_ids[:LISTED_ROW_IDS]),
    }
    return joined, metadata, problems


def build_live_performance(project: ProjectConfig) -> dg.AssetsDefinition:
    @dg.asset(
        key=key(project, LIVE_PERFORMANCE),
        deps=[key(project, GROUND_TRUTH)],
        tags=stage_tags("monitoring"),
        description="The deployed model's live metrics over the policy window of labeled "
        "batches, per segment; against its predecessor and a waiting candidate on the same "
        "rows (shadow scores, paired bootstrap interval). Read by the trigger sensors.",
        metadata=asset_metadata(project),
        op_tags=stage_op_tags(project, "monitoring"),
        kinds={"json"},
    )
    def live_performance(context: dg.AssetExecutionContext, lineage: LineageStorage):
        from unified_ai.ml.live import live_report
        from unified_ai.ml.plots import live_metric_markdown

        reader = lineage.reader(context)
        rule = project.policy.triggers.performance
        deployment = reader.require_current(key(project, DEPLOYED_MODEL).path)
        manifest = read_deployment(reader, project.name, deployment)
        batches = labeled_batches(reader, project.name)
        previous = rollback_target(reader, project.name, deployment)
        report = live_report(
            batches,
            deployment,
            metric=rule.metric,
            window=rule.window_batches,
            threshold=project.evaluation.threshold,
            segments=project.segments,
            min_segment_size=project.policy.fairness.min_segment_size,
            bootstrap_samples=project.evaluation.bootstrap_samples,
            confidence=project.evaluation.confidence,
            gap_metric=project.policy.fairness.metric,
            shadow_deployment=None if previous is None else previous[0],
            shadow_candidate=_waiting_candidate(context, reader, project, manifest),
            recent_paired=project.policy.triggers.rollback.recent_batches,
            recent_current=rule.recent_batches,
        )
        report["current"]["deployed_at"] = manifest.deployed_at
        summary = LiveSummary.from_report(report, deployed_at=manifest.deployed_at)
        plot = live_metric_markdown(
            batches,
            metric=rule.metric,
            threshold=project.evaluation.threshold,
            floor=rule.floor,
            last=LIVE_PLOT_BATCHES,
        )
        metadata = {**summary.metadata(), "metric_over_batches": dg.MetadataValue.md(plot)}
        return dg.Output(report, metadata=metadata)

    return live_performance


def build(project: ProjectConfig) -> list[dg.AssetsDefinition]:
    return [
        build_production_batch(project),
        build_predictions(project),
        build_drift_report(project),
        build_ground_truth(project),
        build_live_performance(project),
    ]
