"""Monitoring: production batches → predictions and drift; labels → ground truth → live metrics.

Each asset has its own module: `production_batch` (a batch validated), `scoring` (scored,
shadows included), `drift` (its drift report), `ground_truth` (its labels joined to its
predictions) and `live_performance` (the deployed model's live metrics). The names they
define are kept here too, where they were first defined.
"""

import dagster as dg

from unified_ai.projects.schema import ProjectConfig
from unified_ai.stages.monitoring.drift import (
    DRIFT_HISTORY_BATCHES,
    DRIFT_HTML,
    DRIFT_SHARE_PLOT,
    build_drift_report,
)
from unified_ai.stages.monitoring.ground_truth import (
    LABELS_CHECK,
    LISTED_ROW_IDS,
    build_ground_truth,
)
from unified_ai.stages.monitoring.live_performance import (
    LIVE_PLOT_BATCHES,
    build_live_performance,
)
from unified_ai.stages.monitoring.production_batch import BATCH_CHECK, build_production_batch
from unified_ai.stages.monitoring.scoring import build_predictions

__all__ = [
    "BATCH_CHECK",
    "DRIFT_HISTORY_BATCHES",
    "DRIFT_HTML",
    "DRIFT_SHARE_PLOT",
    "LABELS_CHECK",
    "LISTED_ROW_IDS",
    "LIVE_PLOT_BATCHES",
    "build_drift_report",
    "build_ground_truth",
    "build_live_performance",
    "build_monitoring_asset_defs",
    "build_predictions",
    "build_production_batch",
]


def build_monitoring_asset_defs(project: ProjectConfig) -> list[dg.AssetsDefinition]:
    # With policy.review, the step that scores a batch routes it too (`stages/review`).
    scored = [build_predictions(project)] if project.policy.review is None else []
    return [
        build_production_batch(project),
        *scored,
        build_drift_report(project),
        build_ground_truth(project),
        build_live_performance(project),
    ]
