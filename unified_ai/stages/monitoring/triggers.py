"""Triggers: sensors that act on what runs recorded.

Drift beyond the policy → retrain (`drift_trigger`); the deployed model below the live floor →
retrain, and a fresh deployment clearly worse than its predecessor on the same labeled rows →
roll back (`performance_trigger`); enough new labeled rows → retrain (`ground_truth_trigger`).
Each decision is the policy's (`unified_ai.policies.triggers`), explains its skips, records its
evidence in run tags and honours the policy's cooldown, unless the retrain that started it
ended without a deployment and enough evidence arrived after its data was cut
(`retrain_history` reads that; `retrain_request` asks for the retrain).
"""

import dagster as dg

from unified_ai import names
from unified_ai.names import training_loop_job
from unified_ai.projects.schema import ProjectConfig
from unified_ai.stages.monitoring.drift_trigger import build_drift_trigger
from unified_ai.stages.monitoring.ground_truth_trigger import build_ground_truth_trigger
from unified_ai.stages.monitoring.performance_trigger import build_performance_trigger
from unified_ai.stages.monitoring.retrain_history import last_retrain, new_labels

# The names these had when the triggers lived in this one module.
_last_retrain = last_retrain
_new_labels = new_labels

__all__ = [
    "build_drift_trigger",
    "build_ground_truth_trigger",
    "build_performance_trigger",
    "build_trigger_sensor_defs",
    "last_retrain",
    "new_labels",
]


def build_trigger_sensor_defs(project: ProjectConfig, jobs: dict) -> list[dg.SensorDefinition]:
    """Triggers of `project`; `jobs` are the project's job definitions by name."""
    return [
        build_drift_trigger(project),
        build_ground_truth_trigger(project),
        build_performance_trigger(
            project,
            [jobs[names.rollback_job(project.name)], jobs[training_loop_job(project.name)]],
        ),
    ]
