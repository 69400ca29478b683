"""Jobs of the monitoring loop: score a batch; take in its labels."""

import dagster as dg

from unified_ai.names import (
    DRIFT_REPORT,
    GROUND_TRUTH,
    LIVE_PERFORMANCE,
    PREDICTIONS,
    PRODUCTION_BATCH,
    REVIEW_QUEUE,
    ingest_labels_job,
    score_batch_job,
)
from unified_ai.projects.schema import ProjectConfig
from unified_ai.stages.common import job_tags, key


def build_monitoring_job_defs(project: ProjectConfig) -> list:
    scored = [PRODUCTION_BATCH, PREDICTIONS, DRIFT_REPORT]
    if project.policy.review is not None:
        scored.append(REVIEW_QUEUE)  # the batch's unsure rows are routed to people in the run
    batch = dg.define_asset_job(
        score_batch_job(project.name),
        selection=dg.AssetSelection.assets(*(key(project, n) for n in scored)),
        description=f"{project.name}: validate a production batch, score it, measure drift"
        + (", route rows to reviewers." if project.policy.review is not None else "."),
        tags=job_tags(project),
    )
    labels = dg.define_asset_job(
        ingest_labels_job(project.name),
        selection=dg.AssetSelection.assets(
            key(project, GROUND_TRUTH), key(project, LIVE_PERFORMANCE)
        ),
        description=f"{project.name}: join a batch's labels to its predictions and update the "
        "deployed model's live performance.",
        tags=job_tags(project),
    )
    return [batch, labels]
