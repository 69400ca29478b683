"""The rollback job of a project, and the run request other automations use to launch it."""

import dagster as dg

from unified_ai.names import (
    ACTION_TAG,
    ACTOR_TAG,
    DEPLOYED_MODEL,
    FOLLOWS_DEPLOYMENT,
    INCIDENTS,
    ROLLBACK_ACTION,
    op_name,
    rollback_job,
)
from unified_ai.projects.schema import ProjectConfig
from unified_ai.stages.common import job_tags, key


def rollback_run_config(
    project: ProjectConfig, *, reason: str, trigger: str = "manual", to_version: str = ""
) -> dict:
    """Run config for the rollback job (what the UI launchpad shows, typed)."""
    config = {
        "action": ROLLBACK_ACTION,
        "to_version": to_version,
        "reason": reason,
        "trigger": trigger,
    }
    return {"ops": {op_name(project.name, DEPLOYED_MODEL): {"config": config}}}


def rollback_run_request(
    project: ProjectConfig,
    *,
    reason: str,
    trigger: str,
    to_version: str = "",
    run_key: str | None = None,
    tags: dict[str, str] | None = None,
) -> dg.RunRequest:
    """The Python API for automations (sensors): a request to roll `project` back."""
    return dg.RunRequest(
        run_key=run_key,
        job_name=rollback_job(project.name),
        run_config=rollback_run_config(
            project, reason=reason, trigger=trigger, to_version=to_version
        ),
        tags={ACTOR_TAG: trigger, **(tags or {})},
    )


def build_rollback_job(project: ProjectConfig):
    return dg.define_asset_job(
        rollback_job(project.name),
        selection=dg.AssetSelection.assets(
            *(key(project, name) for name in (DEPLOYED_MODEL, INCIDENTS, *FOLLOWS_DEPLOYMENT))
        ),
        description=f"{project.name}: restore an earlier deployment (no recompute), move the "
        "MLflow champion alias back and record an incident. Set `reason` (required) and "
        "optionally `to_version` in the config.",
        config=rollback_run_config(project, reason=""),
        tags=job_tags(project, **{ACTION_TAG: ROLLBACK_ACTION}),
    )


def build_rollback_job_defs(project: ProjectConfig) -> list:
    return [build_rollback_job(project)]
