"""Jobs of the monitoring loop: score a batch; take in its labels."""

import dagster as dg

from unified_ai.defs.keys import (
    DRIFT_REPORT,
    GROUND_TRUTH,
    LIVE_PERFORMANCE,
    PREDICTIONS,
    PRODUCTION_BATCH,
    key,
)
from unified_ai.projects.schema import ProjectConfig


def batch_job_name(project: ProjectConfig) -> str:
    return f"{project.name}__score_batch"


def labels_job_name(project: ProjectConfig) -> str:
    return f"{project.name}__ingest_labels"


def build(project: ProjectConfig) -> list:
    batch = dg.define_asset_job(
        batch_job_name(project),
        selection=dg.AssetSelection.assets(
            *(key(project, n) for n in (PRODUCTION_BATCH, PREDICTIONS, DRIFT_REPORT))
        ),
        description=f"{project.name}: validate a production batch, score it, measure drift.",
        tags={"unified_ai/project": project.name},
    )
    labels = dg.define_asset_job(
        labels_job_name(project),
        selection=dg.AssetSelection.assets(
            key(project, GROUND_TRUTH), key(project, LIVE_PERFORMANCE)
        ),
        description=f"{project.name}: join a batch's labels to its predictions and update the "
        "deployed model's live performance.",
        tags={"unified_ai/project": project.name},
    )
    return [batch, labels]
