"""The whole asset graph of one model project, assembled from the stage folders."""

import dagster as dg

from unified_ai.defs.approval import assets as approval_assets
from unified_ai.defs.approval import jobs as approval_jobs
from unified_ai.defs.approval import sensors as approval_sensors
from unified_ai.defs.data import assets as data_assets
from unified_ai.defs.deployment import assets as deployment_assets
from unified_ai.defs.evaluation import assets as evaluation_assets
from unified_ai.defs.evaluation import checks as evaluation_checks
from unified_ai.defs.keys import LOOP_ASSETS, key, training_loop_job_name
from unified_ai.defs.monitoring import assets as monitoring_assets
from unified_ai.defs.monitoring import jobs as monitoring_jobs
from unified_ai.defs.monitoring import sensors as monitoring_sensors
from unified_ai.defs.rollback import assets as rollback_assets
from unified_ai.defs.rollback import jobs as rollback_jobs
from unified_ai.defs.training import assets as training_assets
from unified_ai.projects.schema import ProjectConfig


def build_project(project: ProjectConfig) -> dg.Definitions:
    """Assets, checks, jobs and sensors of `project`."""
    assets = [
        *data_assets.build(project),
        *training_assets.build(project),
        *evaluation_assets.build(project),
        *approval_assets.build(project),
        *deployment_assets.build(project),
        *rollback_assets.build(project),
        *monitoring_assets.build(project),
    ]
    loop = dg.define_asset_job(
        training_loop_job_name(project),
        selection=dg.AssetSelection.assets(*(key(project, name) for name in LOOP_ASSETS)),
        description=f"{project.name}: validate data → split → train → evaluate (gates) → deploy.",
        # Only training loops are limited (dagster.yaml / Helm): one per project at a time.
        tags={"unified_ai/project": project.name, "unified_ai/training_loop": project.name},
    )
    jobs = [
        loop,
        *approval_jobs.build(project),
        *rollback_jobs.build(project),
        *monitoring_jobs.build(project),
    ]
    return dg.Definitions(
        assets=assets,
        asset_checks=evaluation_checks.build(project),
        jobs=jobs,
        sensors=[
            *approval_sensors.build(project),
            *monitoring_sensors.build(project, {job.name: job for job in jobs}),
        ],
    )
