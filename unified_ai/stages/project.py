"""The whole asset graph of one model project, assembled from the stage folders."""

import dagster as dg

from unified_ai import names
from unified_ai.projects.schema import ProjectConfig
from unified_ai.stages import run_failures
from unified_ai.stages.approval import assets as approval_assets
from unified_ai.stages.approval import jobs as approval_jobs
from unified_ai.stages.approval import sensors as approval_sensors
from unified_ai.stages.common import job_tags, key, project_spec
from unified_ai.stages.data import assets as data_assets
from unified_ai.stages.deployment import assets as deployment_assets
from unified_ai.stages.deployment import serving as deployment_serving
from unified_ai.stages.evaluation import assets as evaluation_assets
from unified_ai.stages.evaluation import checks as evaluation_checks
from unified_ai.stages.evaluation import sensors as evaluation_sensors
from unified_ai.stages.monitoring import assets as monitoring_assets
from unified_ai.stages.monitoring import inbox_sensors
from unified_ai.stages.monitoring import jobs as monitoring_jobs
from unified_ai.stages.monitoring import triggers as monitoring_triggers
from unified_ai.stages.review import assets as review_assets
from unified_ai.stages.review import jobs as review_jobs
from unified_ai.stages.review import sensors as review_sensors
from unified_ai.stages.rollback import assets as rollback_assets
from unified_ai.stages.rollback import jobs as rollback_jobs
from unified_ai.stages.training import assets as training_assets


def build_project(project: ProjectConfig) -> dg.Definitions:
    """Assets, checks, jobs and sensors of `project`."""
    built = [
        *data_assets.build_data_asset_defs(project),
        *training_assets.build_training_asset_defs(project),
        *evaluation_assets.build_evaluation_asset_defs(project),
        *approval_assets.build_approval_asset_defs(project),
        *deployment_assets.build_deployment_asset_defs(project),
        *deployment_serving.build_serving_asset_defs(project),
        *rollback_assets.build_rollback_asset_defs(project),
        *monitoring_assets.build_monitoring_asset_defs(project),
    ]
    # People review single predictions only in projects whose policy says which (`review`).
    reviewed = project.policy.review is not None
    if reviewed:
        built.extend(review_assets.build_review_asset_defs(project))
    # Group, owners, code version and description are the project's, given in one place; each
    # stage tags its own assets with the stage.
    assets = dg.map_asset_specs(lambda spec: project_spec(project, spec), built)
    loop = dg.define_asset_job(
        names.training_loop_job(project.name),
        selection=dg.AssetSelection.assets(
            *(key(project, name) for name in (*names.LOOP_ASSETS, *names.FOLLOWS_DEPLOYMENT))
        ),
        description=f"{project.name}: validate data → split → train → evaluate (gates) → deploy.",
        # Only training loops are limited (dagster.yaml / Helm): one per project at a time.
        tags=job_tags(project, **{names.TRAINING_LOOP_TAG: project.name}),
        # The loop does its part and stops before a deployment that still needs a person's
        # approval; the approval sensor deploys once it lands.
        config={
            "ops": {
                names.op_name(project.name, names.DEPLOYED_MODEL): {
                    "config": {"if_not_approved": "wait"}
                }
            }
        },
    )
    jobs = [
        loop,
        *approval_jobs.build_approval_job_defs(project),
        *rollback_jobs.build_rollback_job_defs(project),
        *monitoring_jobs.build_monitoring_job_defs(project),
        *(review_jobs.build_review_job_defs(project) if reviewed else []),
    ]
    return dg.Definitions(
        assets=assets,
        asset_checks=evaluation_checks.build_evaluation_check_defs(project),
        jobs=jobs,
        sensors=[
            *approval_sensors.build_approval_sensor_defs(project),
            *inbox_sensors.build_inbox_sensor_defs(project),
            *monitoring_triggers.build_trigger_sensor_defs(
                project, {job.name: job for job in jobs}
            ),
            *run_failures.build_run_failure_sensor_defs(project, jobs),
            *evaluation_sensors.build_evaluation_sensor_defs(project),
            *review_sensors.build_review_sensor_defs(project),
        ],
    )
